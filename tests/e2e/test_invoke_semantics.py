"""Invoke's semantics as AWS documents and answers them: invocation types, qualifier, executed version,
log tail, function errors, payload limits, missing functions, the legacy InvokeAsync."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.invoke_support import (
    deploy_python,
    eventually,
    invoke,
    log_messages,
    report_fields,
    request_id,
    server_fixture,
    tail,
    unique,
)
from tests.support import Server

server = server_fixture()

ECHO_AND_PRINT = """
def handler(event, context):
    print("handled", event.get("marker"))
    return event
"""


@pytest.fixture(scope="module")
def echo(server: Server) -> str:
    name = unique("echo")
    deploy_python(server.client(), name, ECHO_AND_PRINT)
    return name


def test_event_invocation_answers_202_and_runs_the_function(server: Server, client: Any, echo: str) -> None:
    marker = unique("event-marker")

    response, payload = invoke(client, echo, {"marker": marker}, InvocationType="Event")

    assert response["StatusCode"] == 202
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert payload is None
    eventually(lambda: any(f"handled {marker}" in m for m in log_messages(server, echo)), timeout=60)


def test_event_invocation_of_a_missing_function_is_not_found(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName=unique("missing"), InvocationType="Event", Payload=b"{}")


def test_dry_run_answers_204_and_does_not_run_the_function(server: Server, client: Any, echo: str) -> None:
    marker = unique("dry-run-marker")

    response, payload = invoke(client, echo, {"marker": marker}, InvocationType="DryRun")

    assert response["StatusCode"] == 204
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert payload is None
    invoke(client, echo, {"marker": "after-dry-run"})  # a later sync invoke flushes the log
    assert not any(marker in m for m in log_messages(server, echo))


def test_dry_run_of_a_missing_function_is_not_found(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName=unique("missing"), InvocationType="DryRun")


def test_qualifier_latest_runs_latest_and_reports_the_executed_version(client: Any, echo: str) -> None:
    response, payload = invoke(client, echo, {"q": 1}, Qualifier="$LATEST")

    assert payload == {"q": 1}
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"] == "$LATEST"


def test_unqualified_invoke_reports_executed_version_latest(client: Any, echo: str) -> None:
    response, _ = invoke(client, echo, {})

    assert response["ExecutedVersion"] == "$LATEST"


def test_function_arn_works_as_function_name(client: Any, echo: str) -> None:
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{echo}"

    _, payload = invoke(client, arn, {"by": "arn"})

    assert payload == {"by": "arn"}


def test_log_tail_has_start_output_end_report_and_init_duration_only_when_cold(client: Any) -> None:
    name = unique("tail")
    deploy_python(client, name, ECHO_AND_PRINT)

    cold, _ = invoke(client, name, {"marker": "first"}, LogType="Tail")
    warm, _ = invoke(client, name, {"marker": "second"}, LogType="Tail")

    cold_log, warm_log = tail(cold), tail(warm)
    rid = request_id(cold)
    lines = cold_log.splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert "handled first" in cold_log
    assert f"END RequestId: {rid}" in lines
    assert lines[-1].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert lines[-1].endswith("\t")
    cold_report = report_fields(cold_log)
    assert cold_report["Memory Size"] == "128 MB"
    assert float(cold_report["Duration"].removesuffix(" ms")) > 0
    assert int(cold_report["Billed Duration"].removesuffix(" ms")) >= 1
    assert int(cold_report["Max Memory Used"].removesuffix(" MB")) > 0
    assert float(cold_report["Init Duration"].removesuffix(" ms")) > 0
    assert "handled second" in warm_log
    assert "handled first" not in warm_log
    assert "Init Duration" not in report_fields(warm_log)


def test_log_tail_is_the_last_4_kb(client: Any) -> None:
    name = unique("tail-4kb")
    source = "def handler(event, context):\n    for i in range(2000):\n        print('line %04d' % i)\n"
    deploy_python(client, name, source)

    response, _ = invoke(client, name, {}, LogType="Tail")

    log = tail(response)
    assert len(log.encode()) <= 4096
    assert len(log.encode()) > 3500
    assert "line 1999" in log
    assert "line 0000" not in log
    assert log.rstrip("\n").splitlines()[-1].startswith(f"REPORT RequestId: {request_id(response)}")


def test_without_log_type_there_is_no_log_result(client: Any, echo: str) -> None:
    response, _ = invoke(client, echo, {})

    assert "LogResult" not in response


HANDLER_EXCEPTION = """
def handler(event, context):
    raise ValueError("Handler fails: " + event["why"])
"""


def test_handler_exception_is_unhandled_function_error_with_type_message_and_stack(client: Any) -> None:
    name = unique("raises")
    deploy_python(client, name, HANDLER_EXCEPTION)

    response, payload = invoke(client, name, {"why": "on purpose"})

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amz-function-error"] == "Unhandled"
    assert response["ExecutedVersion"] == "$LATEST"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "Handler fails: on purpose"
    assert payload["requestId"] == request_id(response)
    assert payload["stackTrace"] == [
        '  File "/var/task/handler.py", line 3, in handler\n'
        '    raise ValueError("Handler fails: " + event["why"])\n'
    ]
    # The environment survives a handler exception: the next invoke answers normally.
    _, again_payload = invoke(client, name, {"why": "again"})
    assert again_payload["errorMessage"] == "Handler fails: again"


def test_a_payload_that_is_not_json_is_invalid_request_content(client: Any, echo: str) -> None:
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName=echo, Payload=b"{not json")

    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidRequestContentException"
    assert error["Error"]["Message"].startswith(
        "Could not parse request body into json: Could not parse payload into json: "
    )


def test_a_request_over_6_mb_is_request_too_large(client: Any, echo: str) -> None:
    payload = json.dumps({"data": "x" * 6_291_456}).encode()

    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName=echo, Payload=payload)

    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestTooLargeException"
    assert (
        error["Error"]["Message"]
        == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    )


def test_a_request_just_under_6_mb_is_accepted(client: Any) -> None:
    name = unique("big-request")
    deploy_python(client, name, "def handler(event, context):\n    return len(event['data'])\n")
    data = "y" * (6_291_456 - 20)

    response, payload = invoke(client, name, {"data": data})

    assert "FunctionError" not in response, payload
    assert payload == len(data)


@pytest.mark.parametrize(
    "size",
    [
        6_291_556,  # with its two quotes, the JSON string is just over AWS's 6,291,556-byte limit
        7 * 1024 * 1024,
    ],
    ids=["just-over", "7mb"],
)
def test_a_response_over_6_mb_is_function_response_size_too_large(client: Any, size: int) -> None:
    name = unique("big-response")
    deploy_python(client, name, f"def handler(event, context):\n    return 'z' * {size}\n")

    response, payload = invoke(client, name, {})

    assert response["StatusCode"] == 200
    assert response.get("FunctionError") == "Unhandled"
    assert payload == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


def test_a_response_of_6_mb_is_returned_whole(client: Any) -> None:
    name = unique("six-mb-response")
    deploy_python(client, name, "def handler(event, context):\n    return 'z' * (6 * 1024 * 1024 - 2)\n")

    response, _ = invoke(client, name, {})

    assert "FunctionError" not in response
    assert len(response["RawPayload"]) == 6 * 1024 * 1024


def test_invoking_a_missing_function_names_its_latest_arn(client: Any) -> None:
    name = unique("doesnotexist")

    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.invoke(FunctionName=name, Payload=b"{}")

    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Message"] == (
        f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}:$LATEST"
    )


def test_an_event_payload_over_1_mb_is_request_too_large(client: Any, echo: str) -> None:
    payload = json.dumps({"data": "x" * 1_048_576}).encode()

    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName=echo, Payload=payload, InvocationType="Event")

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert caught.value.response["Error"]["Code"] == "RequestTooLargeException"


def test_legacy_invoke_async_answers_202_and_runs_the_function(
    server: Server, client: Any, echo: str
) -> None:
    marker = unique("invoke-async-marker")

    response = client.invoke_async(FunctionName=echo, InvokeArgs=json.dumps({"marker": marker}).encode())

    assert response["Status"] == 202
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    eventually(lambda: any(f"handled {marker}" in m for m in log_messages(server, echo)), timeout=60)
