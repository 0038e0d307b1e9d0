"""Placement and forwarding on three real nodes: an invoke arriving at any node runs in an idle warm
environment on any node, else on the least-loaded node, and every invoke feature works through a node
that forwards (the target's answer passes through unchanged, streamed bodies chunk by chunk).

Each function says where it ran: a module-level id names its environment, and the function logs it, so
the node whose log files hold it is the node that ran it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.cluster_support import Cluster, cluster
from tests.e2e.invoke_support import deploy, deploy_python, invoke, log_messages, tail, unique
from tests.support import CREDENTIALS

pytestmark = pytest.mark.timeout(600)

WHERE = """
import json, time, uuid
ENVIRONMENT = uuid.uuid4().hex
def handler(event, context):
    print("running in", ENVIRONMENT)
    time.sleep(float(event.get("sleep") or (event.get("queryStringParameters") or {}).get("sleep") or 0))
    if event.get("fail"):
        raise ValueError(f"failed in {ENVIRONMENT}")
    if "requestContext" in event:
        return {"statusCode": 207, "headers": {"x-where": ENVIRONMENT}, "body": json.dumps(event)}
    return {"environment": ENVIRONMENT}
"""

STREAM = """
const ENVIRONMENT = require("crypto").randomUUID().replaceAll("-", "");
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  console.log(`running in ${ENVIRONMENT}`);
  const stream = event.requestContext
    ? awslambda.HttpResponseStream.from(responseStream, {
        statusCode: 201,
        headers: { "content-type": "text/plain", "x-streamed": "yes" },
      })
    : responseStream;
  stream.write(`first ${ENVIRONMENT};`);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  stream.write("second;");
  stream.end();
});
"""


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with cluster(tmp_path_factory.mktemp("forwarding"), "--spares", "0", nodes=3) as c:
        yield c


def node_of(c: Cluster, name: str, environment: str) -> str:
    """The node that ran ``environment`` of function ``name``: the one whose logs name it."""
    found: list[str] = []

    def logged() -> bool:
        found[:] = [
            node
            for node, server in c.nodes.items()
            if any(f"running in {environment}" in message for message in log_messages(server, name))
        ]
        return bool(found)

    wait_for(logged, what=f"a node to log {environment}")
    assert len(found) == 1, found
    return found[0]


def wait_for(condition: Any, timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def seen_warm(c: Cluster, observer: str, node: str) -> int:
    """What ``observer`` knows (from ``node``'s heartbeats) of ``node``'s warm environments."""
    return next(n["WarmEnvironments"] for n in c.view(observer) if n["NodeId"] == node)


def running(c: Cluster) -> list[str]:
    return [node for node, server in c.nodes.items() if server.process and server.process.poll() is None]


def warm(c: Cluster, name: str, **params: Any) -> tuple[str, dict[str, Any]]:
    """Run ``name`` once (no warm environment anywhere: a new one on the least-loaded node) and wait
    until every node heard of the warm environment; the node it is on, and what the function returned."""
    response, where = invoke(c[running(c)[0]].client(), name, {}, **params)
    assert response["StatusCode"] == 200 and "FunctionError" not in response, where
    node = node_of(c, name, where["environment"])
    wait_heard(c, node)
    return node, dict(where)


def wait_heard(c: Cluster, node: str) -> None:
    for observer in running(c):
        wait_for(lambda o=observer: seen_warm(c, o, node) >= 1, what=f"{observer} to see {node} warm")
    time.sleep(0.3)  # the heartbeat naming the idle environment follows its release by ~50 ms


def other(c: Cluster, *nodes: str) -> str:
    """A running node that is none of ``nodes``."""
    return next(node for node in running(c) if node not in nodes)


def test_an_invoke_through_any_node_runs_in_the_warm_environment_of_another(region: Cluster) -> None:
    c = region
    name = unique("warm-first")
    deploy_python(c["n1"].client(), name, WHERE)
    warm_node, first = warm(c, name)
    for node in [node for node in c.nodes if node != warm_node] * 2:
        response, where = invoke(c[node].client(), name, {})
        assert response["StatusCode"] == 200, where
        ran_on = node_of(c, name, where["environment"])
        assert where == first, f"through {node}: ran on {ran_on}, not in {warm_node}'s warm environment"
    # Past uvicorn's keep-alive timeout (5 s) the target has closed the forwarding node's idle connection:
    # the next forward opens another, unseen by the client.
    time.sleep(6)
    response, where = invoke(c[other(c, warm_node)].client(), name, {})
    assert response["StatusCode"] == 200 and where == first, where


def test_with_no_warm_environment_a_new_one_starts_on_the_least_loaded_node(region: Cluster) -> None:
    c = region
    name = unique("least-loaded")
    deploy_python(c["n1"].client(), name, WHERE)
    slow: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: slow.update(invoke(c["n1"].client(read_timeout=60), name, {"sleep": 6})[1])
    )
    runner.start()
    try:
        wait_for(
            lambda: (
                sum(next(n["BusyEnvironments"] for n in c.view(k) if n["NodeId"] == k) for k in c.nodes) >= 1
            ),
            what="the slow invocation to run",
        )
        _, quick = invoke(c["n1"].client(), name, {})
    finally:
        runner.join()
    # The node running the slow invocation is busier than the others: the new one ran elsewhere.
    assert node_of(c, name, quick["environment"]) != node_of(c, name, slow["environment"]), (quick, slow)


def test_every_invoke_feature_works_through_a_forwarding_node(region: Cluster) -> None:
    c = region
    name = unique("features")
    deploy_python(c["n1"].client(), name, WHERE)
    version = c["n1"].client().publish_version(FunctionName=name)["Version"]
    latest_on, _ = warm(c, name)
    version_on, _ = warm(c, name, Qualifier=version)
    client = c[other(c, latest_on, version_on)].client()

    # LogType Tail: the log of the run on the warm node.
    response, where = invoke(client, name, {}, LogType="Tail")
    assert node_of(c, name, where["environment"]) == latest_on
    assert f"running in {where['environment']}" in tail(response)
    assert response["ExecutedVersion"] == "$LATEST"
    # A qualifier: X-Amz-Executed-Version of the published version, run in its own warm environment.
    response, where = invoke(client, name, {}, Qualifier=version)
    assert (response["ExecutedVersion"], node_of(c, name, where["environment"])) == (version, version_on)
    # A function error: Unhandled, the error document as the payload.
    response, error = invoke(client, name, {"fail": True}, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "ValueError", error
    assert node_of(c, name, error["errorMessage"].removeprefix("failed in ")) == latest_on
    assert "ValueError" in tail(response)
    # Payload limits: AWS's 413 for a request past 6 MB.
    with pytest.raises(ClientError) as refused:
        client.invoke(FunctionName=name, Payload=b'"' + b"x" * 6_291_456 + b'"')
    assert refused.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    # A missing function: 404.
    with pytest.raises(ClientError) as missing:
        client.invoke(FunctionName=unique("missing"), Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # A client cannot pose as a forwarding node: a header that does not verify is dropped and the
    # invocation placed as any other (in the warm environment, not a new one where it arrived).
    # (Signed as root: it is the forwarding header that must not pass, not the caller.)
    entry = c[other(c, latest_on, version_on)]
    path = f"/2015-03-31/functions/{name}/invocations"
    forged = httpx.post(
        entry.endpoint + path,
        content=b"{}",
        headers={
            **entry.signed_headers("POST", path, body=b"{}"),
            "x-lambdad-forwarded": "127.0.0.1;80;http;" + "0" * 64,
        },
        timeout=60,
    )
    assert forged.status_code == 200, forged.text
    assert node_of(c, name, forged.json()["environment"]) == latest_on
    # DryRun and Event.
    assert client.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    assert client.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["StatusCode"] == 202


def _public_url(client: Any, name: str, mode: str) -> tuple[str, str]:
    config = client.create_function_url_config(FunctionName=name, AuthType="NONE", InvokeMode=mode)
    client.add_permission(
        FunctionName=name,
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    url_id = str(config["FunctionUrl"]).split("//", 1)[1].split(".", 1)[0]
    return url_id, f"{url_id}.lambda-url.us-east-1.localhost"


def test_buffered_urls_in_both_forms_through_a_forwarding_node(region: Cluster) -> None:
    c = region
    name = unique("url-buffered")
    deploy_python(c["n1"].client(), name, WHERE)
    url_id, host = _public_url(c["n1"].client(), name, "BUFFERED")
    warm_node, _ = warm(c, name)
    through = c[other(c, warm_node)].endpoint
    for answer in (
        httpx.post(f"{through}/_lambdad/urls/{url_id}/x", json={}, timeout=60),
        httpx.post(f"{through}/x", headers={"host": host}, json={}, timeout=60),
    ):
        assert answer.status_code == 207, answer.text
        assert node_of(c, name, answer.headers["x-where"]) == warm_node
        assert json.loads(answer.text)["rawPath"] == "/x"


def test_an_invoke_url_payload_reaches_the_function_through_a_forwarding_node(region: Cluster) -> None:
    c = region
    name = unique("url-event")
    deploy_python(c["n1"].client(), name, WHERE)
    url_id, _ = _public_url(c["n1"].client(), name, "BUFFERED")
    warm_node, _ = warm(c, name)
    through = other(c, warm_node)
    answer = httpx.post(
        f"{c[through].endpoint}/_lambdad/urls/{url_id}/path?a=1",
        content=b"hello",
        timeout=60,
        headers={"content-type": "text/plain"},
    )
    assert answer.status_code == 207, answer.text
    event = answer.json()
    assert node_of(c, name, answer.headers["x-where"]) == warm_node
    assert (event["rawPath"], event["rawQueryString"], event["body"]) == ("/path", "a=1", "hello")
    # The function sees the client's request as it reached the first node, not the hop between nodes.
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["headers"]["x-forwarded-port"] == str(c[through].port)
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert "x-lambdad-forwarded" not in event["headers"]


def _arrivals(stream: Any) -> list[tuple[float, bytes]]:
    started = time.monotonic()
    return [(time.monotonic() - started, chunk) for chunk in stream]


def test_response_streams_through_a_forwarding_node_arrive_as_written(region: Cluster) -> None:
    c = region
    name = unique("stream")
    deploy(c["n1"].client(), name, {"index.js": STREAM}, Runtime="nodejs20.x", Handler="index.handler")
    url_id, host = _public_url(c["n1"].client(), name, "RESPONSE_STREAM")
    events = list(
        c["n1"].client(read_timeout=120).invoke_with_response_stream(FunctionName=name)["EventStream"]
    )
    first = b"".join(event["PayloadChunk"]["Payload"] for event in events if "PayloadChunk" in event)
    warm_node = node_of(c, name, first.decode()[6:-8])
    wait_heard(c, warm_node)
    through = other(c, warm_node)
    client = c[through].client(read_timeout=120)

    response = client.invoke_with_response_stream(FunctionName=name, Payload=b"{}", LogType="Tail")
    assert response["ExecutedVersion"] == "$LATEST"
    events = _arrivals(response["EventStream"])
    chunks = [(at, event["PayloadChunk"]["Payload"]) for at, event in events if "PayloadChunk" in event]
    body = b"".join(chunk for _, chunk in chunks).decode()
    assert body.endswith(";second;") and node_of(c, name, body[6:-8]) == warm_node, body
    # The first chunk arrived well before the last (the function waits 1.5 s between them).
    assert chunks[-1][0] - chunks[0][0] >= 1.0, [at for at, _ in chunks]
    complete = events[-1][1]["InvokeComplete"]
    assert "ErrorCode" not in complete and "REPORT RequestId" in tail(complete)

    for url, headers in (
        (f"{c[through].endpoint}/_lambdad/urls/{url_id}/s", {}),
        (f"{c[through].endpoint}/s", {"host": host}),
    ):
        with httpx.stream("GET", url, headers=headers, timeout=60) as answer:
            assert answer.status_code == 201
            assert answer.headers["x-streamed"] == "yes" and answer.headers["content-type"] == "text/plain"
            arrivals = _arrivals(answer.iter_raw())
        text = b"".join(chunk for _, chunk in arrivals).decode()
        assert text.endswith(";second;") and node_of(c, name, text[6:-8]) == warm_node, text
        assert arrivals[-1][0] - arrivals[0][0] >= 1.0, [at for at, _ in arrivals]


def test_a_node_killed_while_running_a_forwarded_invoke_answers_a_service_fault(region: Cluster) -> None:
    """Kills a node: the last tests of this module."""
    c = region
    name = unique("killed-busy")
    deploy_python(c[running(c)[0]].client(), name, WHERE)
    warm_node, _ = warm(c, name)
    through = other(c, warm_node)
    answers: list[Any] = []
    # Not retried: botocore retries a 500, which would run the invocation again elsewhere.
    once = boto3.client(
        "lambda",
        endpoint_url=c[through].endpoint,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=120),
        **CREDENTIALS,
    )

    def slow() -> None:
        started = time.monotonic()
        try:
            invoke(once, name, {"sleep": 60})
        except ClientError as error:
            answers.append((error.response, time.monotonic() - started))

    caller = threading.Thread(target=slow)
    caller.start()
    wait_for(
        lambda: next(n["BusyEnvironments"] for n in c.view(warm_node) if n["NodeId"] == warm_node) >= 1,
        what="the forwarded invocation to run",
    )
    c.kill(warm_node)
    caller.join(timeout=30)
    assert not caller.is_alive(), "the forwarding node never answered"
    [(response, took)] = answers
    assert response["Error"]["Code"] == "ServiceException", response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert took < 30


def test_a_node_killed_while_running_a_forwarded_url_request_answers_502(tmp_path: Path) -> None:
    with cluster(tmp_path, "--spares", "0", nodes=2) as c:
        name = unique("killed-url")
        deploy_python(c["n1"].client(), name, WHERE)
        url_id, _ = _public_url(c["n1"].client(), name, "BUFFERED")
        warm_node, _ = warm(c, name)
        through = other(c, warm_node)
        answers: list[tuple[httpx.Response, float]] = []

        def slow() -> None:
            started = time.monotonic()
            answer = httpx.get(f"{c[through].endpoint}/_lambdad/urls/{url_id}/?sleep=60", timeout=120)
            answers.append((answer, time.monotonic() - started))

        caller = threading.Thread(target=slow)
        caller.start()
        wait_for(
            lambda: next(n["BusyEnvironments"] for n in c.view(warm_node) if n["NodeId"] == warm_node) >= 1,
            what="the forwarded request to run",
        )
        c.kill(warm_node)
        caller.join(timeout=30)
        assert not caller.is_alive(), "the forwarding node never answered"
        [(answer, took)] = answers
        assert (answer.status_code, answer.text) == (502, "Internal Server Error")
        assert took < 30


def test_a_killed_node_with_an_idle_environment_does_not_fail_invokes(region: Cluster) -> None:
    c = region
    name = unique("killed")
    deploy_python(c[running(c)[0]].client(), name, WHERE)
    warm_node, _ = warm(c, name)
    c.kill(warm_node)
    survivors = running(c)
    for node in survivors * 2:
        response, where = invoke(c[node].client(), name, {})
        assert response["StatusCode"] == 200 and "FunctionError" not in response, where
        assert node_of(c, name, where["environment"]) in survivors
