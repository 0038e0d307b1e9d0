"""Event invocations end to end: AWS's retries per qualifier's event invoke config, maximum event age,
throttles going back to the queue, reserved concurrency 0, and invocation records delivered to a Lambda
destination in AWS's shape (compared with AWS's recordings).

The servers here wait 1 s between retries (``LAMBDAD_ASYNC_RETRY_DELAYS``) instead of AWS's minutes.
A destination function prints each record it receives; the tests read them from its log.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.invoke_support import deploy_python, eventually, log_messages, start_server, unique
from tests.recordings import differences, recorded
from tests.support import Server

pytestmark = pytest.mark.e2e
DESTINATIONS = "test_lambda_destinations.snapshot.json"

FLAKY = """
import json, time


def handler(event, context):
    print("handled " + event.get("id", ""))
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise Exception("intentional failure")
    return {"echo": event}
"""
RECORDER = """
import json


def handler(event, context):
    print("RECORD " + json.dumps(event))
"""


def start(tmp_path: Path, retry_delays: str) -> Server:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAMBDAD_ASYNC_RETRY_DELAYS", retry_delays)
        env.setenv("LAMBDAD_ASYNC_THROTTLE_BACKOFF_MAX", "1")
        env.setenv("PYTHONUNBUFFERED", "1")  # the tests read the server's log as it is written
        return start_server(tmp_path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start(tmp_path_factory.mktemp("lambdad"), "1,1")
    yield running
    running.stop(timeout=60)


@pytest.fixture(scope="module")
def recorder(server: Server) -> str:
    """A destination function; returns its ARN."""
    return str(deploy_python(server.client(), unique("recorder"), RECORDER)["FunctionArn"])


def records(server: Server, recorder_arn: str) -> list[dict[str, Any]]:
    name = recorder_arn.rsplit(":", 1)[1]
    return [json.loads(m.split("RECORD ", 1)[1]) for m in log_messages(server, name) if "RECORD " in m]


def record_for(server: Server, recorder_arn: str, marker: str, timeout: float = 60) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for record in records(server, recorder_arn):
            payload = record.get("requestPayload")
            if isinstance(payload, dict) and payload.get("id") == marker:
                return record
        return None

    return eventually(find, timeout=timeout, interval=0.2)


def send(client: Any, name: str, event: dict[str, Any], **params: Any) -> str:
    answer = client.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event), **params)
    assert answer["StatusCode"] == 202
    return str(answer["ResponseMetadata"]["RequestId"])


def test_each_qualifiers_maximum_retry_attempts_sets_the_invoke_count(server: Server, recorder: str) -> None:
    client = server.client()
    name = unique("retries")
    deploy_python(client, name, FLAKY)
    version = client.publish_version(FunctionName=name)["Version"]
    for alias, retries in (("zero", 0), ("one", 1), ("two", 2)):
        client.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
        client.put_function_event_invoke_config(
            FunctionName=name,
            Qualifier=alias,
            MaximumRetryAttempts=retries,
            DestinationConfig={"OnFailure": {"Destination": recorder}},
        )
    markers = {alias: unique(alias) for alias in ("zero", "one", "two")}
    request_ids = {
        alias: send(client, name, {"id": marker, "fail": True}, Qualifier=alias)
        for alias, marker in markers.items()
    }

    function_arn = client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    for alias, retries in (("zero", 0), ("one", 1), ("two", 2)):
        record = record_for(server, recorder, markers[alias])
        assert record["requestContext"] == {
            "requestId": request_ids[alias],
            "functionArn": f"{function_arn}:{alias}",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": retries + 1,
        }
        assert record["responseContext"] == {
            "statusCode": 200,
            "executedVersion": version,
            "functionError": "Unhandled",
        }
        runs = [m for m in log_messages(server, name) if m.strip() == f"handled {markers[alias]}"]
        assert len(runs) == retries + 1


def test_a_failure_record_matches_awss(server: Server, recorder: str) -> None:
    client = server.client()
    name = unique("fails")
    deploy_python(client, name, FLAKY)
    client.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": recorder}}
    )
    marker = unique("default-retries")
    send(client, name, {"id": marker, "fail": True})

    record = record_for(server, recorder, marker)
    wanted = recorded(DESTINATIONS, "test_lambda_destination_default_retries", "receive_message_result")
    body = wanted["Messages"][0]["Body"]
    assert (
        differences(
            _without(record, "requestPayload", "responsePayload"),
            _without(body, "requestPayload", "responsePayload"),
        )
        == []
    )
    assert record["requestPayload"] == {"id": marker, "fail": True}
    assert record["responsePayload"]["errorMessage"] == "intentional failure"
    assert set(record["responsePayload"]) == set(body["responsePayload"])


def test_a_success_record_reaches_on_success_in_awss_shape(server: Server, recorder: str) -> None:
    client = server.client()
    name = unique("succeeds")
    deploy_python(client, name, FLAKY)
    client.put_function_event_invoke_config(
        FunctionName=name,
        DestinationConfig={"OnSuccess": {"Destination": recorder}, "OnFailure": {"Destination": recorder}},
    )
    marker = unique("success")
    request_id = send(client, name, {"id": marker})

    record = record_for(server, recorder, marker)
    wanted = recorded(
        DESTINATIONS, "test_assess_lambda_destination_invocation[Success-payload0]", "receive_message_result"
    )["Messages"][0]["Body"]
    assert (
        differences(
            _without(record, "requestPayload", "responsePayload"),
            _without(wanted, "requestPayload", "responsePayload"),
        )
        == []
    )
    assert record["requestContext"]["requestId"] == request_id
    assert record["responsePayload"] == {"echo": {"id": marker}}


def test_reserved_concurrency_zero_sends_events_to_on_failure_unrun(server: Server, recorder: str) -> None:
    client = server.client()
    name = unique("zero")
    deploy_python(client, name, FLAKY)
    client.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": recorder}}
    )
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    marker = unique("unrun")
    send(client, name, {"id": marker})

    record = record_for(server, recorder, marker)
    wanted = recorded("test_lambda.snapshot.json", "TestLambdaConcurrency::test_reserved_concurrency", "msg")[
        "Body"
    ]
    assert differences(_without(record, "requestPayload"), _without(wanted, "requestPayload")) == []
    assert not [m for m in log_messages(server, name) if marker in m], "the function never ran"


def test_throttled_events_go_back_to_the_queue_and_run_when_capacity_returns(
    server: Server, recorder: str
) -> None:
    client = server.client()
    name = unique("throttled")
    deploy_python(client, name, FLAKY)
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    client.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0, DestinationConfig={"OnSuccess": {"Destination": recorder}}
    )
    busy = threading.Thread(
        target=lambda: server.client(read_timeout=30).invoke(
            FunctionName=name, Payload=json.dumps({"sleep": 4})
        )
    )
    busy.start()

    def busy_now() -> bool:
        try:
            client.invoke(FunctionName=name, Payload=b"{}")
        except client.exceptions.TooManyRequestsException:
            return True
        return False

    eventually(busy_now, timeout=30)
    marker = unique("waits")
    request_id = send(client, name, {"id": marker})
    busy.join(timeout=30)

    record = record_for(server, recorder, marker)
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1, "throttles are not retries"
    server_log = compact_log(server)
    assert request_id in server_log and "TooManyRequestsException" in server_log


def test_an_event_older_than_its_maximum_age_is_dropped_with_event_age_exceeded(tmp_path: Path) -> None:
    # Retries 1 s then 90 s later: with MaximumEventAgeInSeconds 60 the second retry would come too late.
    server = start(tmp_path, "1,90")
    try:
        client = server.client()
        recorder_arn = deploy_python(client, unique("age-recorder"), RECORDER)["FunctionArn"]
        name = unique("ages")
        deploy_python(client, name, FLAKY)
        client.put_function_event_invoke_config(
            FunctionName=name,
            MaximumEventAgeInSeconds=60,
            DestinationConfig={"OnFailure": {"Destination": recorder_arn}},
        )
        marker = unique("old")
        send(client, name, {"id": marker, "fail": True})
        record = record_for(server, recorder_arn, marker)
    finally:
        server.stop(timeout=60)
    wanted = recorded(
        DESTINATIONS, "TestLambdaDestinationSqs::test_maxeventage", "single_retry_failure_message"
    )
    body = wanted["Body"]
    assert (
        differences(
            _without(record, "requestPayload", "responsePayload"),
            _without(body, "requestPayload", "responsePayload"),
        )
        == []
    )
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_a_dead_letter_queue_no_source_serves_is_reported_in_the_log(server: Server) -> None:
    client = server.client()
    name = unique("dlq")
    queue = f"arn:aws:sqs:us-east-1:000000000000:dlq-{uuid.uuid4().hex[:6]}"
    deploy_python(client, name, FLAKY, DeadLetterConfig={"TargetArn": queue})
    client.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    request_id = send(client, name, {"id": unique("lost"), "fail": True})

    def reported() -> bool:
        lines = compact_log(server)
        return request_id in lines and "RetriesExhausted" in lines and queue in lines

    eventually(reported, timeout=30)


def compact_log(server: Server) -> str:
    """The server's log without whitespace (its console wraps long lines anywhere)."""
    return "".join(server.log_path.read_text().split())


def _without(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in keys}
