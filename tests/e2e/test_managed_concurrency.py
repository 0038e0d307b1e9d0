"""Several invocations at once in one execution environment (Lambda Managed Instances), end to end: a
real node of a capacity provider, a Python function with PerExecutionEnvironmentMaxConcurrency, its
runtime's workers (awslambdaric forks one per unit of concurrency) and boto3 invoking concurrently."""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any

import pytest

from tests.e2e.invoke_support import eventually, log_group_dir, server_fixture, tail, unique
from tests.support import Server, create_function, make_zip

server = server_fixture("--spares", "0", "--capacity-provider", "multi")

VPC = {"SubnetIds": ["subnet-0a1b2c"], "SecurityGroupIds": ["sg-0a1b2c"]}
PERMISSIONS = {"CapacityProviderOperatorRoleArn": "arn:aws:iam::000000000000:role/operator"}
CONCURRENCY = 4

# Each invocation says when it ran, in which worker process, and writes a marker of its own: printed
# (print writes the text and the newline apart: workers sharing one pipe would interleave them), and
# through the logging module.
HANDLER = """
import logging, os, time

logging.getLogger().setLevel(logging.INFO)

def handler(event, context):
    started = time.time()
    print("print", event["marker"])
    logging.info("logged %s", event["marker"])
    time.sleep(event.get("sleep", 0))
    if event.get("exit"):
        os._exit(3)  # this worker process dies; the others go on
    if event.get("fail"):
        raise ValueError("failed " + event["marker"])
    return {
        "marker": event["marker"],
        "pid": os.getpid(),
        "concurrency": os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY"),
        "started": started,
        "ended": time.time(),
    }
"""


@pytest.fixture(scope="module")
def provider(server: Server) -> tuple[Any, str]:
    client = server.client(read_timeout=120)
    client.create_capacity_provider(
        CapacityProviderName="multi", VpcConfig=VPC, PermissionsConfig=PERMISSIONS
    )

    def active() -> str | None:
        provider = client.get_capacity_provider(CapacityProviderName="multi")["CapacityProvider"]
        return str(provider["CapacityProviderArn"]) if provider["State"] == "Active" else None

    return client, eventually(active)


def deploy(client: Any, provider_arn: str, concurrency: int = CONCURRENCY, timeout: int = 30) -> str:
    name = unique("multi")
    create_function(
        client,
        name,
        Code={"ZipFile": make_zip({"handler.py": HANDLER})},
        Timeout=timeout,
        CapacityProviderConfig={
            "LambdaManagedInstancesCapacityProviderConfig": {
                "CapacityProviderArn": provider_arn,
                "PerExecutionEnvironmentMaxConcurrency": concurrency,
            }
        },
    )
    client.publish_version(FunctionName=name)
    return name


def invoke(client: Any, name: str, **event: Any) -> tuple[dict[str, Any], Any]:
    response = dict(
        client.invoke(FunctionName=name, Qualifier="1", LogType="Tail", Payload=json.dumps(event).encode())
    )
    return response, json.loads(response["Payload"].read())


def node(server: Server) -> dict[str, Any]:
    return dict(server.own("/_lambdad/nodes", timeout=5)["Nodes"][0])


def starts_per_stream(server: Server, name: str) -> list[int]:
    """How many START lines each of the function's log streams (one per environment) holds."""
    counts = []
    for path in log_group_dir(server, name).iterdir():
        messages = [json.loads(line)["message"] for line in path.read_text().splitlines() if line]
        counts.append(sum(1 for message in messages if message.startswith("START RequestId: ")))
    return sorted(counts)


def run_together(client: Any, name: str, events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    with concurrent.futures.ThreadPoolExecutor(len(events)) as workers:
        return list(workers.map(lambda event: invoke(client, name, **event), events))


def test_four_invocations_run_at_once_in_one_environment(provider: tuple[Any, str], server: Server) -> None:
    client, arn = provider
    name = deploy(client, arn)
    invoke(client, name, marker="warm")  # the environment exists and is idle
    before = node(server)["WarmEnvironments"]
    results = run_together(client, name, [{"marker": f"m{i}", "sleep": 2} for i in range(CONCURRENCY)])
    answers = [answer for _, answer in results]
    assert all(response["StatusCode"] == 200 and "FunctionError" not in response for response, _ in results)
    assert {answer["marker"] for answer in answers} == {f"m{i}" for i in range(CONCURRENCY)}
    assert {answer["concurrency"] for answer in answers} == {str(CONCURRENCY)}
    # They ran at the same time (every one started before any ended), each in a worker of its own...
    assert max(answer["started"] for answer in answers) < min(answer["ended"] for answer in answers)
    assert len({answer["pid"] for answer in answers}) == CONCURRENCY
    # ... of one environment: no new one was made, and its log stream has every START.
    assert node(server)["WarmEnvironments"] == before
    assert starts_per_stream(server, name) == [CONCURRENCY + 1]
    # Each invocation's log tail is its own: its START/END/REPORT and its own output only.
    for response, answer in results:
        own = tail(response)
        request_id = response["ResponseMetadata"]["RequestId"]
        assert f"START RequestId: {request_id}" in own
        assert f"REPORT RequestId: {request_id}" in own
        assert f"logged {answer['marker']}" in own
        assert f"print {answer['marker']}\n" in own
        others = {f"m{i}" for i in range(CONCURRENCY)} - {answer["marker"]}
        assert not any(f"logged {marker}" in own or f"print {marker}" in own for marker in others)


def test_a_fifth_invocation_gets_a_second_environment(provider: tuple[Any, str], server: Server) -> None:
    client, arn = provider
    name = deploy(client, arn)
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as workers:
        busy = [workers.submit(invoke, client, name, marker=f"b{i}", sleep=3) for i in range(CONCURRENCY)]
        eventually(lambda: node(server)["RunningInvocations"] == CONCURRENCY)
        assert node(server)["BusyEnvironments"] == 1
        response, answer = invoke(client, name, marker="fifth")
        assert response["StatusCode"] == 200 and answer["marker"] == "fifth"
        assert all(future.result()[0]["StatusCode"] == 200 for future in busy)
    assert starts_per_stream(server, name) == [1, CONCURRENCY]


def test_the_scaling_maximum_throttles_a_fifth(provider: tuple[Any, str], server: Server) -> None:
    client, arn = provider
    name = deploy(client, arn)
    client.put_function_scaling_config(
        FunctionName=name, Qualifier="1", FunctionScalingConfig={"MaxExecutionEnvironments": 1}
    )
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as workers:
        busy = [workers.submit(invoke, client, name, marker=f"t{i}", sleep=3) for i in range(CONCURRENCY)]
        eventually(lambda: node(server)["RunningInvocations"] == CONCURRENCY)
        with pytest.raises(client.exceptions.TooManyRequestsException):
            client.invoke(FunctionName=name, Qualifier="1", Payload=b'{"marker": "x"}')
        assert all(future.result()[0]["StatusCode"] == 200 for future in busy)
    assert starts_per_stream(server, name) == [CONCURRENCY]


def test_an_error_in_one_invocation_leaves_the_others(provider: tuple[Any, str], server: Server) -> None:
    client, arn = provider
    name = deploy(client, arn)
    events = [{"marker": f"e{i}", "sleep": 1, "fail": i == 0} for i in range(CONCURRENCY)]
    results = run_together(client, name, events)
    failed, *fine = results
    assert failed[0]["FunctionError"] == "Unhandled"
    assert failed[1]["errorType"] == "ValueError" and failed[1]["errorMessage"] == "failed e0"
    assert "failed e0" in tail(failed[0])  # the runtime's error record, which names no request id
    for response, _ in fine:
        assert "FunctionError" not in response
        assert "failed e0" not in tail(response)
    # The environment lives on and takes the next invocations.
    assert invoke(client, name, marker="after")[1]["marker"] == "after"
    assert starts_per_stream(server, name) == [CONCURRENCY + 1]


def test_a_timeout_ends_one_invocation_not_the_environment(provider: tuple[Any, str], server: Server) -> None:
    client, arn = provider
    name = deploy(client, arn, timeout=2)
    events = [{"marker": "slow", "sleep": 6}, *({"marker": f"q{i}", "sleep": 0.5} for i in range(3))]
    results = run_together(client, name, events)
    (slow, slow_answer), *quick = results
    assert slow["FunctionError"] == "Unhandled"
    assert slow_answer["errorType"] == "Sandbox.Timedout"
    assert "Status: timeout" in tail(slow)
    for response, answer in quick:
        assert "FunctionError" not in response and answer["marker"].startswith("q")
    # The environment goes on (AWS does not stop the code of a timed-out invocation either): the next
    # invocations run in it, and the worker's late answer is dropped.
    assert invoke(client, name, marker="next")[1]["marker"] == "next"
    assert len(starts_per_stream(server, name)) == 1


def test_a_worker_that_dies_fails_its_invocation_only(provider: tuple[Any, str], server: Server) -> None:
    client, arn = provider
    name = deploy(client, arn)
    events = [
        {"marker": "dies", "sleep": 0.5, "exit": True},
        *({"marker": f"w{i}", "sleep": 1} for i in range(3)),
    ]
    results = run_together(client, name, events)
    (died, died_answer), *others = results
    assert died["FunctionError"] == "Unhandled"
    assert died_answer["errorType"] == "Runtime.ExitError"
    for response, answer in others:
        assert "FunctionError" not in response and answer["marker"].startswith("w")
    # The other workers serve the next invocations in the same environment.
    assert invoke(client, name, marker="after")[1]["marker"] == "after"
    assert len(starts_per_stream(server, name)) == 1


def test_a_warm_minimum_environment_takes_several_at_once(provider: tuple[Any, str], server: Server) -> None:
    client, arn = provider
    name = deploy(client, arn)
    before = node(server)["WarmEnvironments"]
    client.put_function_scaling_config(
        FunctionName=name, Qualifier="1", FunctionScalingConfig={"MinExecutionEnvironments": 1}
    )
    eventually(lambda: node(server)["WarmEnvironments"] == before + 1, timeout=60)  # initialised
    results = run_together(client, name, [{"marker": f"p{i}", "sleep": 1} for i in range(CONCURRENCY)])
    assert all("FunctionError" not in response for response, _ in results)
    assert starts_per_stream(server, name) == [CONCURRENCY]
    client.put_function_scaling_config(
        FunctionName=name, Qualifier="1", FunctionScalingConfig={"MinExecutionEnvironments": 0}
    )


def test_an_init_error_fails_every_invocation_once(provider: tuple[Any, str], server: Server) -> None:
    client, arn = provider
    name = unique("multi")
    create_function(
        client,
        name,
        Code={"ZipFile": make_zip({"handler.py": "raise RuntimeError('no init')\n"})},
        CapacityProviderConfig={
            "LambdaManagedInstancesCapacityProviderConfig": {
                "CapacityProviderArn": arn,
                "PerExecutionEnvironmentMaxConcurrency": CONCURRENCY,
            }
        },
    )
    client.publish_version(FunctionName=name)
    # Every worker fails its init and posts init/error: the first counts, the others are refused (403),
    # which the runtime ignores; each invocation answers the init error.
    results = run_together(client, name, [{"marker": f"i{i}"} for i in range(2)])
    for response, answer in results:
        assert response["FunctionError"] == "Unhandled"
        assert answer["errorMessage"] == "no init" and answer["errorType"] == "RuntimeError"


def test_a_concurrency_of_one_keeps_the_ordinary_path(provider: tuple[Any, str], server: Server) -> None:
    client, arn = provider
    name = deploy(client, arn, concurrency=1)
    response, answer = invoke(client, name, marker="one")
    assert "FunctionError" not in response and answer["concurrency"] is None  # one process, no workers


def test_streamed_invocations_share_the_environment_too(provider: tuple[Any, str], server: Server) -> None:
    client, arn = provider
    name = deploy(client, arn)

    def stream(marker: str) -> tuple[bytes, dict[str, Any]]:
        response = client.invoke_with_response_stream(
            FunctionName=name,
            Qualifier="1",
            LogType="Tail",
            Payload=json.dumps({"marker": marker, "sleep": 1}),
        )
        events = list(response["EventStream"])
        body = b"".join(event["PayloadChunk"]["Payload"] for event in events if "PayloadChunk" in event)
        return body, dict(events[-1]["InvokeComplete"])

    with concurrent.futures.ThreadPoolExecutor(2) as workers:
        results = list(workers.map(stream, ["s0", "s1"]))
    answers = [json.loads(body) for body, _ in results]
    assert sorted(answer["marker"] for answer in answers) == ["s0", "s1"]
    assert max(a["started"] for a in answers) < min(a["ended"] for a in answers)
    assert all("ErrorCode" not in complete for _, complete in results)
    assert starts_per_stream(server, name) == [2]
