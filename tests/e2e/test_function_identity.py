"""A function's calls to the Lambda API (``AWS_ENDPOINT_URL_LAMBDA``, answered in its own sandbox) act as
the function with its execution role: it may invoke functions, and nothing else reaches another
function's configuration, code or the server. The role comes from the environment the request arrived on,
never from what the function sends."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest

from tests.e2e.attack_support import Victim, assert_unaffected
from tests.e2e.invoke_support import deploy_python, eventually, health, invoke, server_fixture, unique
from tests.support import ROLE, Server, make_zip

pytestmark = pytest.mark.e2e

server = server_fixture()

ACCOUNT = "000000000000"
REGION = "us-east-1"

# Calls what the event names with boto3 (or sends a raw HTTP request), as an attacker's code would, and
# reports the answer or the error without raising: the test judges.
ATTACKER = """
import base64, json, os, urllib.error, urllib.request
import boto3, botocore.exceptions

def handler(event, context):
    if "flood" in event:  # denied calls back to back on one connection, until the count or time runs out
        import http.client, time
        host, port = os.environ["AWS_ENDPOINT_URL_LAMBDA"].split("//", 1)[1].split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        statuses, deadline = {}, time.monotonic() + event["seconds"]
        for _ in range(event["flood"]):
            if time.monotonic() > deadline:
                break
            connection.request("GET", "/2015-03-31/functions/")
            answer = connection.getresponse()
            answer.read()
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
        return {"statuses": statuses}
    if "raw" in event:
        raw = event["raw"]
        body = json.dumps(raw["body"]).encode() if "body" in raw else None
        request = urllib.request.Request(
            os.environ["AWS_ENDPOINT_URL_LAMBDA"] + raw["path"], method=raw.get("method", "GET"),
            headers=raw.get("headers", {}), data=body,
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return {"status": answer.status, "body": answer.read().decode(errors="replace")}
        except urllib.error.HTTPError as error:
            return {"status": error.code, "body": error.read().decode(errors="replace")}
    args = event.get("args", {})
    for path in event.get("binary", []):  # "Code.ZipFile": base64 in the event, bytes for boto3
        *parents, last = path.split(".")
        holder = args
        for parent in parents:
            holder = holder[parent]
        holder[last] = base64.b64decode(holder[last])
    try:
        answer = getattr(boto3.client("lambda"), event["call"])(**args)
    except botocore.exceptions.ClientError as error:
        return {
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
            "code": error.response["Error"]["Code"],
            "message": error.response["Error"]["Message"],
        }
    answer.pop("ResponseMetadata", None)
    if "Payload" in answer:
        answer["Payload"] = answer["Payload"].read().decode()
    if "EventStream" in answer:
        parts = answer["EventStream"]
        answer["EventStream"] = [p["PayloadChunk"]["Payload"].decode() for p in parts if "PayloadChunk" in p]
    return {"status": 200, "answer": json.loads(json.dumps(answer, default=str))}
"""

SECRET = "hunter2-do-not-leak"


@pytest.fixture(scope="module")
def client(server: Any) -> Any:
    return server.client(read_timeout=60)


@pytest.fixture(scope="module")
def victim(client: Any) -> str:
    """Another tenant's function, with a secret in its environment."""
    name = unique("victim")
    deploy_python(
        client,
        name,
        "def handler(event, context):\n    return {'victim': event}\n",
        Environment={"Variables": {"SECRET": SECRET}},
    )
    return name


@pytest.fixture(scope="module")
def attacker(client: Any) -> str:
    name = unique("attacker")
    deploy_python(client, name, ATTACKER, Timeout=20)
    return name


def run(client: Any, attacker: str, event: dict[str, Any]) -> dict[str, Any]:
    response, payload = invoke(client, attacker, event)
    assert "FunctionError" not in response, payload
    assert isinstance(payload, dict)
    return payload


def denied(function: str, action: str, resource: str, role: str = ROLE) -> str:
    """AWS's wording when no identity-based policy allows ``action`` to a function's role."""
    role_name = role.rsplit("/", 1)[-1]
    return (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{function} is not authorized to perform: "
        f"{action} on resource: {resource} because no identity-based policy allows the {action} action"
    )


def arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"


ZIP = base64.b64encode(make_zip({"handler.py": "def handler(e, c):\n    return 'taken over'\n"})).decode()

# (boto3 call, its arguments with VICTIM for the victim's name, binary arguments, IAM action, resource).
ATTACKS = [
    ("list_functions", {}, [], "lambda:ListFunctions", "*"),
    ("get_function_configuration", {"FunctionName": "VICTIM"}, [], "lambda:GetFunctionConfiguration", "ARN"),
    ("get_function", {"FunctionName": "VICTIM"}, [], "lambda:GetFunction", "ARN"),
    ("list_versions_by_function", {"FunctionName": "VICTIM"}, [], "lambda:ListVersionsByFunction", "ARN"),
    ("get_policy", {"FunctionName": "VICTIM"}, [], "lambda:GetPolicy", "ARN"),
    (
        "update_function_code",
        {"FunctionName": "VICTIM", "ZipFile": ZIP},
        ["ZipFile"],
        "lambda:UpdateFunctionCode",
        "ARN",
    ),
    (
        "update_function_configuration",
        {"FunctionName": "VICTIM", "Environment": {"Variables": {"SECRET": "changed"}}},
        [],
        "lambda:UpdateFunctionConfiguration",
        "ARN",
    ),
    (
        "add_permission",
        {
            "FunctionName": "VICTIM",
            "StatementId": "open",
            "Action": "lambda:InvokeFunction",
            "Principal": "*",
        },
        [],
        "lambda:AddPermission",
        "ARN",
    ),
    ("delete_function", {"FunctionName": "VICTIM"}, [], "lambda:DeleteFunction", "ARN"),
    (
        "tag_resource",
        {"Resource": "VICTIM_ARN", "Tags": {"lambdad:network": "host"}},
        [],
        "lambda:TagResource",
        "ARN",
    ),
    (
        "create_function",
        {
            "FunctionName": "NEW",
            "Runtime": "python3.12",
            "Role": ROLE,
            "Handler": "handler.handler",
            "Code": {"ZipFile": ZIP},
            "Tags": {"lambdad:network": "host"},
        },
        ["Code.ZipFile"],
        "lambda:CreateFunction",
        "NEW_ARN",
    ),
    (
        "create_function_url_config",
        {"FunctionName": "VICTIM", "AuthType": "NONE"},
        [],
        "lambda:CreateFunctionUrlConfig",
        "ARN",
    ),
]


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return names.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize(
    ("call", "args", "binary", "action", "resource"), ATTACKS, ids=[a[0] for a in ATTACKS]
)
def test_a_function_cannot_read_or_change_other_functions(
    client: Any,
    attacker: str,
    victim: str,
    call: str,
    args: dict[str, Any],
    binary: list[str],
    action: str,
    resource: str,
) -> None:
    new = unique("planted")
    names = {"VICTIM": victim, "VICTIM_ARN": arn(victim), "NEW": new, "ARN": arn(victim), "NEW_ARN": arn(new)}
    before = client.get_function(FunctionName=victim)["Configuration"]

    answer = run(client, attacker, {"call": call, "args": _fill(args, names), "binary": binary})

    assert answer == {
        "status": 403,
        "code": "AccessDeniedException",
        "message": denied(attacker, action, names.get(resource, resource)),
    }
    assert SECRET not in str(answer)
    after = client.get_function(FunctionName=victim)["Configuration"]
    assert after["CodeSha256"] == before["CodeSha256"]
    assert after["Environment"] == {"Variables": {"SECRET": SECRET}}
    assert after["RevisionId"] == before["RevisionId"]
    assert client.list_tags(Resource=arn(victim))["Tags"] == {}
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName=new)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_policy(FunctionName=victim)


def test_a_function_can_invoke_other_functions(client: Any, attacker: str, victim: str) -> None:
    sync = run(client, attacker, {"call": "invoke", "args": {"FunctionName": victim, "Payload": '{"a": 1}'}})
    assert sync["status"] == 200 and sync["answer"]["Payload"] == '{"victim": {"a": 1}}'

    queued = run(
        client,
        attacker,
        {"call": "invoke", "args": {"FunctionName": victim, "InvocationType": "Event", "Payload": "{}"}},
    )
    assert queued["status"] == 200 and queued["answer"]["StatusCode"] == 202

    legacy = run(
        client, attacker, {"call": "invoke_async", "args": {"FunctionName": victim, "InvokeArgs": "{}"}}
    )
    assert legacy["status"] == 200 and legacy["answer"]["Status"] == 202

    streamed = run(
        client,
        attacker,
        {"call": "invoke_with_response_stream", "args": {"FunctionName": victim, "Payload": '{"b": 2}'}},
    )
    assert streamed["status"] == 200 and "".join(streamed["answer"]["EventStream"]) == '{"victim": {"b": 2}}'


def test_a_function_can_read_the_account_limits(client: Any, attacker: str) -> None:
    answer = run(client, attacker, {"call": "get_account_settings"})
    assert answer["status"] == 200
    assert set(answer["answer"]) == {"AccountLimit", "AccountUsage"}


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/_lambdad/event-source-mappings",
        "/_lambdad/schedules",
        "/_lambdad/code/0123456789abcdef.zip",
        "/_lambdad/urls/URL_ID/",
    ],
)
def test_lambdad_own_endpoints_are_not_reachable_from_a_function(
    client: Any, attacker: str, victim: str, path: str
) -> None:
    url_id = client.create_function_url_config(FunctionName=victim, AuthType="NONE")["FunctionUrl"]
    url_id = url_id.split("//", 1)[1].split(".", 1)[0]
    try:
        answer = run(client, attacker, {"raw": {"path": path.replace("URL_ID", url_id)}})
    finally:
        client.delete_function_url_config(FunctionName=victim)
    assert answer["status"] == 404, answer
    assert "UnknownOperationException" in answer["body"] or "No operation" in answer["body"]


def test_a_function_url_by_host_name_is_not_reachable_from_a_function(
    client: Any, attacker: str, victim: str
) -> None:
    url = client.create_function_url_config(FunctionName=victim, AuthType="NONE")["FunctionUrl"]
    host = url.split("//", 1)[1].rstrip("/")
    client.add_permission(
        FunctionName=victim,
        StatementId="public-url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    try:
        answer = run(client, attacker, {"raw": {"path": "/", "headers": {"Host": host}}})
    finally:
        client.remove_permission(FunctionName=victim, StatementId="public-url")
        client.delete_function_url_config(FunctionName=victim)
    assert answer["status"] == 404, answer
    assert "victim" not in answer["body"]


def test_the_identity_is_each_environments_own(server: Server, client: Any) -> None:
    """Two functions with different roles, the second started from a spare (the runtime's spare, made once
    the first used the runtime, is ready before its cold start): each is refused under its own role and
    name, whatever it claims in its request."""
    for role_name in ("role-one", "role-two"):
        name = unique(role_name)
        role = server.make_role(role_name)
        deploy_python(client, name, ATTACKER, Timeout=20, Role=role)
        if role_name == "role-two":
            eventually(lambda: health(server)["spares"] >= 1)
        forged = {
            "raw": {
                "path": "/2015-03-31/functions/",
                "headers": {
                    "Authorization": f"AWS4-HMAC-SHA256 Credential=AKIDADMIN/20260101/{REGION}/lambda/x",
                    "X-Amz-Security-Token": "admin",
                },
            }
        }
        answer = run(client, name, forged)
        assert answer["status"] == 403
        assert denied(name, "lambda:ListFunctions", "*", role) in answer["body"]


def test_denied_calls_from_a_function_do_not_slow_other_functions(
    server: Server, client: Any, record_property: Any
) -> None:
    """An attacker function with a whole vCPU (1,769 MB) sending denied calls back to back while a victim
    is invoked warm: the victim's p99 stays within 2x of idle."""
    attacker = unique("flooder")
    deploy_python(client, attacker, ATTACKER, Timeout=30, MemorySize=1769)
    run(client, attacker, {"call": "get_account_settings"})  # warm: the cold start is not the attack
    victim = Victim(server)
    victim.baseline()
    result: list[dict[str, Any]] = []
    with victim.measuring() as samples:
        flood = threading.Thread(
            target=lambda: result.append(run(client, attacker, {"flood": 20_000, "seconds": 10})), daemon=True
        )
        flood.start()
        flood.join(60)
    statuses = result[0]["statuses"]
    assert set(statuses) == {"403"}, statuses
    record_property("summary_denied_calls", f"{statuses['403']} denied calls in 10 s")
    assert_unaffected(victim, samples, record_property)


def test_a_function_cannot_create_schedules(client: Any, attacker: str, victim: str) -> None:
    """The scheduler is served on the same port: a schedule would invoke any function with any role."""
    name = unique("planted")
    document = {
        "ScheduleExpression": "rate(1 minute)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": arn(victim), "RoleArn": ROLE},
    }
    answer = run(
        client, attacker, {"raw": {"path": f"/schedules/{name}", "method": "POST", "body": document}}
    )
    assert answer["status"] == 403
    assert json.loads(answer["body"]) == {
        "Message": denied(
            attacker,
            "scheduler:CreateSchedule",
            f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{name}",
        )
    }
