"""What a function sees, as on AWS: its event, the context object, Lambda's environment variables plus its
own, and boto3."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.e2e.invoke_support import (
    REQUEST_ID,
    STREAM_NAME,
    deploy_python,
    invoke,
    request_id,
    server_fixture,
    tail,
    unique,
)

server = server_fixture()

INTROSPECT = """
import os

def handler(event, context):
    client_context = context.client_context
    return {
        "event": event,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "client_context": None if client_context is None else {
            "custom": client_context.custom,
            "env": client_context.env,
            "client": None if client_context.client is None else {
                "installation_id": client_context.client.installation_id,
                "app_title": client_context.client.app_title,
            },
        },
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
    }
"""


@pytest.fixture(scope="module")
def introspect(client_module: Any) -> str:
    name = unique("introspect")
    deploy_python(
        client_module,
        name,
        INTROSPECT,
        MemorySize=256,
        Timeout=7,
        Environment={"Variables": {"GREETING": "hello", "TZ_NOT_OVERRIDDEN": "x"}},
    )
    return name


@pytest.fixture(scope="module")
def client_module(server: Any) -> Any:
    return server.client()


def test_the_event_arrives_as_sent(client: Any, introspect: str) -> None:
    event = {"text": "héllo", "n": 3, "nested": {"list": [1, None, True]}}

    _, payload = invoke(client, introspect, event)

    assert payload["event"] == event


def test_no_payload_is_an_empty_event(client: Any, introspect: str) -> None:
    response, payload = invoke(client, introspect)

    assert response["StatusCode"] == 200
    assert payload["event"] == {}


def test_request_id_is_the_same_in_context_header_and_log_lines(client: Any, introspect: str) -> None:
    response, payload = invoke(client, introspect, {}, LogType="Tail")

    rid = request_id(response)
    assert REQUEST_ID.match(rid)
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == rid
    assert payload["aws_request_id"] == rid
    log = tail(response)
    assert f"START RequestId: {rid} Version: $LATEST" in log
    assert f"END RequestId: {rid}" in log
    assert f"REPORT RequestId: {rid}\t" in log


def test_context_describes_the_function(client: Any, introspect: str) -> None:
    _, payload = invoke(client, introspect, {})

    assert payload["function_name"] == introspect
    assert payload["function_version"] == "$LATEST"
    assert payload["memory_limit_in_mb"] == "256"
    assert payload["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{introspect}"
    assert payload["log_group_name"] == f"/aws/lambda/{introspect}"
    assert STREAM_NAME.match(payload["log_stream_name"]), payload["log_stream_name"]
    # Timeout is 7 s: the deadline lies ahead, and no further than the timeout.
    assert 5000 < payload["remaining_ms"] <= 7000


def test_invoked_function_arn_carries_the_qualifier_when_one_is_given(client: Any, introspect: str) -> None:
    response, payload = invoke(client, introspect, {}, Qualifier="$LATEST")

    assert response["ExecutedVersion"] == "$LATEST"
    assert payload["invoked_function_arn"] == (
        f"arn:aws:lambda:us-east-1:000000000000:function:{introspect}:$LATEST"
    )


def test_client_context_reaches_the_function(client: Any, introspect: str) -> None:
    sent = {
        "custom": {"tenant": "blue"},
        "env": {"locale": "en-GB"},
        "client": {"installation_id": "inst-1", "app_title": "demo", "app_version_name": "1.0"},
    }

    response, payload = invoke(
        client, introspect, {}, ClientContext=base64.b64encode(json.dumps(sent).encode()).decode()
    )

    assert "FunctionError" not in response, payload
    received = payload["client_context"]
    assert received["custom"] == {"tenant": "blue"}
    assert received["env"] == {"locale": "en-GB"}
    assert received["client"]["installation_id"] == "inst-1"
    assert received["client"]["app_title"] == "demo"


def test_without_client_context_the_context_has_none(client: Any, introspect: str) -> None:
    _, payload = invoke(client, introspect, {})

    assert payload["client_context"] is None


def test_aws_environment_variables_are_set(client: Any, introspect: str) -> None:
    _, payload = invoke(client, introspect, {})

    environ = payload["environ"]
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == introspect
    assert environ["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert environ["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{introspect}"
    assert environ["AWS_LAMBDA_LOG_STREAM_NAME"] == payload["log_stream_name"]
    assert environ["AWS_REGION"] == "us-east-1"
    assert environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert environ["_HANDLER"] == "handler.handler"
    assert environ["LAMBDA_TASK_ROOT"] == "/var/task"
    assert environ["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert environ["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert environ["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert environ["TZ"] == ":UTC"
    assert environ["AWS_LAMBDA_RUNTIME_API"]
    assert environ["AWS_ACCESS_KEY_ID"] and environ["AWS_SECRET_ACCESS_KEY"] and environ["AWS_SESSION_TOKEN"]
    assert environ["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert payload["cwd"] == "/var/task"


def test_the_functions_own_variables_are_set(client: Any, introspect: str) -> None:
    _, payload = invoke(client, introspect, {})

    assert payload["environ"]["GREETING"] == "hello"
    assert payload["environ"]["TZ_NOT_OVERRIDDEN"] == "x"


def test_the_host_environment_does_not_leak_into_the_function(client: Any, introspect: str) -> None:
    _, payload = invoke(client, introspect, {})

    # The server runs with LAMBDAD_RUNTIMES_DIR (and the test runner's own variables) set.
    leaked = sorted(
        key for key in payload["environ"] if key.startswith(("LAMBDAD_", "PYTEST_", "VIRTUAL_ENV"))
    )
    assert leaked == []


def test_boto3_is_importable_in_a_python_function(client: Any) -> None:
    name = unique("boto3")
    source = "import boto3, botocore\n\ndef handler(event, context):\n    return boto3.__version__\n"
    deploy_python(client, name, source)

    response, payload = invoke(client, name, {})

    assert "FunctionError" not in response, payload
    assert isinstance(payload, str) and payload[0].isdigit()


CALLER = """
import json
import boto3

def handler(event, context):
    answer = boto3.client("lambda").invoke(FunctionName=event["target"], Payload=b'{"via": "boto3"}')
    return json.loads(answer["Payload"].read())
"""


def test_a_function_can_invoke_another_through_aws_endpoint_url_lambda(client: Any) -> None:
    target = unique("callee")
    deploy_python(client, target, "def handler(event, context):\n    return {'got': event}\n")
    caller = unique("caller")
    deploy_python(client, caller, CALLER, Timeout=10)

    response, payload = invoke(client, caller, {"target": target})

    assert "FunctionError" not in response, payload
    assert payload == {"got": {"via": "boto3"}}
