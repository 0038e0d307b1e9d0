"""Authentication and authorization end to end, against a real ``lambdad serve --auth sigv4``: every way a
request fails authentication, through boto3 and through the AWS CLI, answered with AWS's error codes,
HTTP status and messages (botocore raises the ClientError it raises against AWS); the root key printed
once; a user allowed one action on one function; a function acting with its execution role's policies;
a role assumed through STS.

The clients' own clocks are moved where a test needs a skewed or expired signature (botocore's
``get_current_datetime``, in process for boto3 and through ``sitecustomize`` for the AWS CLI's own
botocore): time is the edge the server cannot be asked about.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore
import botocore.auth
import pytest
from botocore.exceptions import ClientError

from tests.e2e.invoke_support import deploy_python, invoke, unique
from tests.support import ACCOUNT, CREDENTIALS, ROLE, Server, cli_credentials

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
MISSING = "Missing Authentication Token"
INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
# Run inside the AWS CLI (through ``sitecustomize``): moves its clock by CLOCK_SHIFT_S seconds, or
# replaces the body of every request after it is signed by TAMPERED_BODY. The CLI carries its own
# botocore, imported as ``botocore`` once ``awscli`` is (its import alias).
SITECUSTOMIZE = """
import datetime, os
import awscli
import botocore.auth as auth
import botocore.session

if "CLOCK_SHIFT_S" in os.environ:
    _now, _shift = auth.get_current_datetime, datetime.timedelta(seconds=int(os.environ["CLOCK_SHIFT_S"]))
    auth.get_current_datetime = lambda *args, **kwargs: _now(*args, **kwargs) + _shift

if "TAMPERED_BODY" in os.environ:
    def _tamper(request, **_):
        request.body = os.environ["TAMPERED_BODY"].encode()
        request.headers["Content-Length"] = str(len(request.body))

    _init = botocore.session.Session.__init__

    def _init_tampering(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        self.register("before-send", _tamper)

    botocore.session.Session.__init__ = _init_tampering
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("lambdad") / "data", auth=True).start(timeout=60)
    yield running
    running.stop(timeout=60)


@pytest.fixture(scope="module")
def function(server: Server) -> str:
    name = unique("guarded")
    deploy_python(server.client(), name, "def handler(event, context):\n    return {'got': event}\n")
    return name


def arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def keys_of(credentials: dict[str, Any]) -> dict[str, str]:
    """boto3's keyword credentials from IAM's AccessKey or STS's Credentials."""
    keys = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
    }
    if "SessionToken" in credentials:
        keys["aws_session_token"] = credentials["SessionToken"]
    return keys


def user_with_keys(server: Server, *statements: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """A new IAM user whose inline policy holds ``statements`` (none: no policy), and its access key."""
    iam = server.boto("iam")
    name = unique("user")
    user_arn = iam.create_user(UserName=name)["User"]["Arn"]
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=policy(*statements))
    return user_arn, keys_of(iam.create_access_key(UserName=name)["AccessKey"])


def refusal(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
    """(HTTP status, error code, message) of the ClientError ``call`` raises."""
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    error = raised.value.response
    return error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"], error["Error"]["Message"]


def cli_refusal(server: Server, *args: str, env: dict[str, str] | None = None) -> str:
    """The AWS CLI's one-line report of the error ``aws lambda ARGS`` got (it exits non-zero)."""
    done = server.aws_cli(*args, check=False, env=env)
    assert done.returncode != 0, done.stdout
    return done.stderr.strip()


def said(code: str, operation: str, message: str) -> str:
    """How the AWS CLI reports a service error."""
    return f"An error occurred ({code}) when calling the {operation} operation: {message}"


def denied(who: str, action: str, resource: str) -> str:
    return (
        f"User: {who} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


def shifted_clock(monkeypatch: pytest.MonkeyPatch, shift: timedelta) -> None:
    """boto3's clock (botocore's signer reads it) moved by ``shift``."""
    now = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now(*a, **k) + shift)


def cli_clock(tmp_path: Path, shift: timedelta) -> dict[str, str]:
    """The environment giving the AWS CLI a clock moved by ``shift``."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"PYTHONPATH": str(tmp_path), "CLOCK_SHIFT_S": str(int(shift.total_seconds()))}


def cli_tampering(tmp_path: Path, body: str) -> dict[str, str]:
    """The environment making the AWS CLI send ``body`` in place of the body it signed."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"PYTHONPATH": str(tmp_path), "TAMPERED_BODY": body}


def starts(server: Server, function: str) -> int:
    """How many invocations of ``function`` began (START lines in its log group)."""
    events = server.own(f"/_lambdad/logs?group=/aws/lambda/{function}")["Events"]
    return sum(event["message"].startswith("START RequestId") for event in events)


# --- every authentication failure, boto3 and the AWS CLI ---------------------------------------------------


def test_an_unsigned_request_is_missing_its_token(server: Server) -> None:
    client = server.boto("lambda", signature_version=botocore.UNSIGNED)
    assert refusal(client.list_functions) == (403, "MissingAuthenticationTokenException", MISSING)
    assert cli_refusal(server, "list-functions", "--no-sign-request") == said(
        "MissingAuthenticationTokenException", "ListFunctions", MISSING
    )


def test_an_unknown_key_is_unrecognized(server: Server) -> None:
    stranger = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "x" * 40}
    client = server.boto("lambda", keys=stranger)
    assert refusal(client.list_functions) == (403, "UnrecognizedClientException", INVALID_TOKEN)
    assert cli_refusal(server, "list-functions", env=cli_credentials(stranger)) == said(
        "UnrecognizedClientException", "ListFunctions", INVALID_TOKEN
    )


def test_a_wrong_secret_does_not_match(server: Server) -> None:
    wrong = {**CREDENTIALS, "aws_secret_access_key": "W" * 40}
    client = server.boto("lambda", keys=wrong)
    assert refusal(client.list_functions) == (403, "InvalidSignatureException", MISMATCH)
    assert cli_refusal(server, "list-functions", env=cli_credentials(wrong)) == said(
        "InvalidSignatureException", "ListFunctions", MISMATCH
    )


def test_a_request_altered_after_signing_does_not_match(
    server: Server, function: str, tmp_path: Path
) -> None:
    """The body changed on the way (after the client signed it): refused, and the function never runs."""
    client = server.client()

    def tamper(request: Any, **_: Any) -> None:
        request.body = b'{"amount": 1000000}'
        request.headers["Content-Length"] = str(len(request.body))

    before = starts(server, function)
    client.meta.events.register("before-send.lambda.Invoke", tamper)
    assert refusal(client.invoke, FunctionName=function, Payload=b'{"amount": 1}') == (
        403,
        "InvalidSignatureException",
        MISMATCH,
    )
    printed = cli_refusal(
        server,
        "invoke",
        "--function-name",
        function,
        "--payload",
        '{"amount": 1}',
        str(tmp_path / "out.json"),
        env=cli_tampering(tmp_path, '{"amount": 1000000}'),
    )
    assert printed == said("InvalidSignatureException", "Invoke", MISMATCH)
    assert not (tmp_path / "out.json").exists() or "1000000" not in (tmp_path / "out.json").read_text()
    invoke(server.client(), function, {"amount": 1})  # the log has caught up with every invocation
    assert starts(server, function) == before + 1


@pytest.mark.parametrize(
    ("shift", "words"),
    [(timedelta(minutes=-10), "Signature expired"), (timedelta(minutes=10), "Signature not yet current")],
)
def test_a_skewed_clock_is_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shift: timedelta, words: str
) -> None:
    """More than 5 minutes between the client's clock and the server's, either way (Lambda's bound)."""
    shifted_clock(monkeypatch, shift)
    status, code, message = refusal(server.client().list_functions)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith(f"{words}: ")
    bound = "- 5 min.)" if shift < timedelta() else "+ 5 min.)"
    assert message.endswith(bound), message
    printed = cli_refusal(server, "list-functions", env=cli_clock(tmp_path, shift))
    assert printed.startswith(f"{said('InvalidSignatureException', 'ListFunctions', words)}: ")
    assert printed.endswith(bound)
    # Within the bound, a clock a little off is fine (as on AWS).
    monkeypatch.undo()
    shifted_clock(monkeypatch, shift / 5)
    assert server.client().list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_an_inactive_key_is_unrecognized_until_made_active_again(server: Server) -> None:
    iam = server.boto("iam")
    user_arn, keys = user_with_keys(
        server, {"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}
    )
    name = user_arn.rsplit("/", 1)[1]
    client = server.boto("lambda", keys=keys)
    assert "Functions" in client.list_functions()
    iam.update_access_key(UserName=name, AccessKeyId=keys["aws_access_key_id"], Status="Inactive")
    assert refusal(client.list_functions) == (403, "UnrecognizedClientException", INVALID_TOKEN)
    assert cli_refusal(server, "list-functions", env=cli_credentials(keys)) == said(
        "UnrecognizedClientException", "ListFunctions", INVALID_TOKEN
    )
    iam.update_access_key(UserName=name, AccessKeyId=keys["aws_access_key_id"], Status="Active")
    assert "Functions" in client.list_functions()
    iam.delete_access_key(UserName=name, AccessKeyId=keys["aws_access_key_id"])
    assert refusal(client.list_functions) == (403, "UnrecognizedClientException", INVALID_TOKEN)


def test_an_expired_session_token_is_expired(server: Server) -> None:
    """A role session past its expiry. STS issues 15 minutes at least, so the session's expiry is moved
    into the past in the server's store (the one clock the test cannot move otherwise)."""
    iam = server.boto("iam")
    name = unique("brief")
    trust = {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
    role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="list",
        PolicyDocument=policy({"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}),
    )
    session = server.boto("sts").assume_role(RoleArn=role_arn, RoleSessionName="s1", DurationSeconds=900)
    keys = keys_of(session["Credentials"])
    client = server.boto("lambda", keys=keys)
    assert "Functions" in client.list_functions()  # valid until it expires

    with sqlite3.connect(server.data_dir / "lambdad.db") as database:
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(sep=" ")
        moved = database.execute(
            "UPDATE sts_sessions SET expires_at = ? WHERE access_key_id = ?",
            (past, keys["aws_access_key_id"]),
        ).rowcount
    assert moved == 1

    assert refusal(client.list_functions) == (403, "ExpiredTokenException", EXPIRED_TOKEN)
    assert cli_refusal(server, "list-functions", env=cli_credentials(keys)) == said(
        "ExpiredTokenException", "ListFunctions", EXPIRED_TOKEN
    )
    # The key without its token, or the token of another session, is no key at all.
    tokenless = {k: v for k, v in keys.items() if k != "aws_session_token"}
    assert refusal(server.boto("lambda", keys=tokenless).list_functions)[1] == "UnrecognizedClientException"


def test_an_expired_presigned_url_is_refused(server: Server) -> None:
    """A presigned GET (boto3's generate_presigned_url) works within its X-Amz-Expires, then not."""
    client = server.client()
    url = client.generate_presigned_url("list_functions", ExpiresIn=2)
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert "Functions" in json.load(answer)
    time.sleep(3)
    with pytest.raises(urllib.error.HTTPError) as expired:
        urllib.request.urlopen(url, timeout=10)
    assert expired.value.code == 403
    assert expired.value.headers["x-amzn-ErrorType"].split(":")[0] == "InvalidSignatureException"
    message = json.loads(expired.value.read())["message"]
    assert message.startswith("Signature expired: ") and message.endswith(" - 2 sec.)"), message
    # Its signature still names its date: the same URL with another expiry is another signature.
    longer = url.replace("X-Amz-Expires=2", "X-Amz-Expires=3600")
    with pytest.raises(urllib.error.HTTPError) as altered:
        urllib.request.urlopen(longer, timeout=10)
    assert altered.value.code == 403
    assert json.loads(altered.value.read())["message"] == MISMATCH


# --- the root key ---------------------------------------------------------------------------------------


def test_the_root_key_is_printed_once_at_the_first_start(tmp_path: Path) -> None:
    """Without LAMBDAD_ROOT_*, the first start makes the root key and prints it; later starts do not, and
    the key works."""
    fresh = Server(tmp_path / "data", auth=False, env={"LAMBDAD_AUTH": "sigv4"})
    fresh.start(timeout=60)
    try:
        first = fresh.log_path.read_text()
        lines = dict(
            line.strip().split("=", 1) for line in first.splitlines() if line.strip().startswith("AWS_")
        )
        key, secret = lines["AWS_ACCESS_KEY_ID"], lines["AWS_SECRET_ACCESS_KEY"]
        assert key.startswith("AKIA") and len(key) == 20 and len(secret) == 40
        assert "shown this once" in first
        fresh.stop()
        fresh.start(timeout=60)
        later = fresh.log_path.read_text()[len(first) :]
        assert "lambdad serving account" in later or "Application startup complete" in later
        assert key not in later and secret not in later
        root = {"aws_access_key_id": key, "aws_secret_access_key": secret}
        identity = fresh.boto("sts", keys=root).get_caller_identity()
        assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
        assert "Functions" in fresh.boto("lambda", keys=root).list_functions()
        # Nothing under the data directory holds the secret in plain text.
        assert not [p for p in fresh.data_dir.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    finally:
        fresh.stop()


# --- authorization --------------------------------------------------------------------------------------


def test_a_user_allowed_only_to_invoke_one_function(server: Server, function: str, tmp_path: Path) -> None:
    user_arn, keys = user_with_keys(
        server, {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn(function)}
    )
    other = unique("other")
    deploy_python(server.client(), other, "def handler(event, context):\n    return 'other'\n")
    as_user = server.boto("lambda", keys=keys)

    assert invoke(as_user, function, {"n": 1})[1] == {"got": {"n": 1}}
    out = tmp_path / "out.json"
    done = server.aws_cli(
        "invoke",
        "--function-name",
        function,
        "--payload",
        '{"n": 2}',
        str(out),
        env=cli_credentials(keys),
    )
    assert json.loads(out.read_text()) == {"got": {"n": 2}}, done.stderr

    refused = {
        "invoke another": (as_user.invoke, {"FunctionName": other}, "lambda:InvokeFunction", arn(other)),
        "list": (as_user.list_functions, {}, "lambda:ListFunctions", "*"),
        "read": (as_user.get_function, {"FunctionName": function}, "lambda:GetFunction", arn(function)),
        "delete": (
            as_user.delete_function,
            {"FunctionName": function},
            "lambda:DeleteFunction",
            arn(function),
        ),
        "reconfigure": (
            as_user.update_function_configuration,
            {"FunctionName": function, "Timeout": 9},
            "lambda:UpdateFunctionConfiguration",
            arn(function),
        ),
        "create": (
            as_user.create_function,
            {
                "FunctionName": "planted",
                "Runtime": "python3.12",
                "Role": ROLE,
                "Handler": "handler.handler",
                "Code": {"ZipFile": b"PK"},
            },
            "lambda:CreateFunction",
            arn("planted"),
        ),
        "open to all": (
            as_user.add_permission,
            {
                "FunctionName": function,
                "StatementId": "s",
                "Action": "lambda:InvokeFunction",
                "Principal": "*",
            },
            "lambda:AddPermission",
            arn(function),
        ),
    }
    for what, (call, args, action, resource) in refused.items():
        assert refusal(call, **args) == (403, "AccessDeniedException", denied(user_arn, action, resource)), (
            what
        )

    iam_status, iam_code, iam_message = refusal(server.boto("iam", keys=keys).list_users)
    assert (iam_status, iam_code) == (403, "AccessDenied")
    assert iam_message == denied(user_arn, "iam:ListUsers", f"arn:aws:iam::{ACCOUNT}:user/")
    assert refusal(server.boto("scheduler", keys=keys).list_schedules) == (
        403,
        "AccessDeniedException",
        denied(user_arn, "scheduler:ListSchedules", "*"),
    )

    assert cli_refusal(server, "list-functions", env=cli_credentials(keys)) == said(
        "AccessDeniedException", "ListFunctions", denied(user_arn, "lambda:ListFunctions", "*")
    )
    assert cli_refusal(
        server, "delete-function", "--function-name", function, env=cli_credentials(keys)
    ) == said(
        "AccessDeniedException", "DeleteFunction", denied(user_arn, "lambda:DeleteFunction", arn(function))
    )
    assert server.client().get_function(FunctionName=function)["Configuration"]["Timeout"] != 9


def test_a_users_denials_on_lambdads_own_endpoints(server: Server, function: str) -> None:
    """``/_lambdad/...`` answer as the AWS APIs giving the same information would: signed, and allowed
    the same IAM action. ``/health`` stays open."""
    user_arn, keys = user_with_keys(
        server,
        {
            "Effect": "Allow",
            "Action": "logs:FilterLogEvents",
            "Resource": f"arn:aws:logs:*:*:log-group:/aws/lambda/{function}:*",
        },
    )
    with urllib.request.urlopen(f"{server.endpoint}/health", timeout=5) as answer:
        assert json.load(answer)["status"] == "ok"
    for path in ("/_lambdad/nodes", "/_lambdad/logs?group=x"):
        with pytest.raises(urllib.error.HTTPError) as unsigned:
            urllib.request.urlopen(server.endpoint + path, timeout=5)
        assert unsigned.value.code == 403
        assert (
            unsigned.value.headers["x-amzn-ErrorType"].split(":")[0] == "MissingAuthenticationTokenException"
        )

    invoke(server.client(), function, {"n": 0})
    events = server.own(f"/_lambdad/logs?group=/aws/lambda/{function}", keys=keys)["Events"]
    assert any(e["message"].startswith("START RequestId") for e in events)
    group = f"/aws/lambda/{unique('elsewhere')}"
    refused = {
        f"/_lambdad/logs?group={group}": (
            "logs:FilterLogEvents",
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:",
        ),
        "/_lambdad/nodes": ("lambda:GetAccountSettings", "*"),
        "/_lambdad/event-source-mappings": ("lambda:ListEventSourceMappings", "*"),
        "/_lambdad/schedules": ("scheduler:ListSchedules", "*"),
    }
    for path, (action, resource) in refused.items():
        with pytest.raises(urllib.error.HTTPError) as answer:
            server.own(path, keys=keys)
        assert answer.value.code == 403, path
        assert answer.value.headers["x-amzn-ErrorType"].split(":")[0] == "AccessDeniedException"
        assert json.loads(answer.value.read())["Message"] == denied(user_arn, action, resource)


def test_lambdad_commands_sign_with_the_default_credentials(server: Server, function: str) -> None:
    from tests.support import LAMBDAD

    invoke(server.client(), function, {"n": 3})
    as_root = subprocess.run(
        [str(LAMBDAD), "logs", function, "--endpoint", server.endpoint],
        env=server.cli_env(COLUMNS="300"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert as_root.returncode == 0, as_root.stderr
    assert "START RequestId" in as_root.stdout
    _, keys = user_with_keys(server)
    as_user = subprocess.run(
        [str(LAMBDAD), "nodes", "--endpoint", server.endpoint],
        env={**server.cli_env(COLUMNS="300"), **cli_credentials(keys)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert as_user.returncode == 1
    assert "AccessDeniedException" in as_user.stderr and "lambda:GetAccountSettings" in " ".join(
        as_user.stderr.split()
    )


def test_a_function_acts_with_its_execution_roles_policies(server: Server, function: str) -> None:
    """boto3 inside the function signs with the role session's credentials lambdad gave it; the role's
    policy allows lambda:ListFunctions and nothing lets it delete."""
    iam = server.boto("iam")
    role_name = unique("lister")
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=policy(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role_name,
        PolicyName="list",
        PolicyDocument=policy({"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}),
    )
    source = """
import os, boto3, botocore.exceptions

def handler(event, context):
    client = boto3.client("lambda")
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    try:
        client.delete_function(FunctionName=event["victim"])
        deleted = None
    except botocore.exceptions.ClientError as error:
        deleted = [error.response["Error"]["Code"], error.response["Error"]["Message"]]
    return {"key": os.environ["AWS_ACCESS_KEY_ID"][:4], "names": names, "delete": deleted}
"""
    name = unique("lister")
    deploy_python(server.client(), name, source, Role=role_arn)
    answer = invoke(server.client(read_timeout=60), name, {"victim": function})[1]
    assert answer["key"] == "ASIA"  # a session of its role
    assert {name, function} <= set(answer["names"])
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name}"
    assert answer["delete"] == [
        "AccessDeniedException",
        denied(session, "lambda:DeleteFunction", arn(function)),
    ]
    assert server.client().get_function(FunctionName=function)


def test_assume_role_then_call_as_the_role(server: Server, function: str) -> None:
    """A user allowed sts:AssumeRole on a role the role trusts it for; the session acts with the role's
    policies, not the user's."""
    iam = server.boto("iam")
    user_arn, keys = user_with_keys(server)
    role_name = unique("operator")
    trust = {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=policy(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role_name,
        PolicyName="read",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": ["lambda:ListFunctions", "lambda:GetFunction"], "Resource": "*"}
        ),
    )
    # The user's own policy does not let it list; the role trusts it by name, which is enough in one account.
    assert refusal(server.boto("lambda", keys=keys).list_functions)[1] == "AccessDeniedException"
    session = server.boto("sts", keys=keys).assume_role(RoleArn=role_arn, RoleSessionName="ops")
    as_role = keys_of(session["Credentials"])
    assert as_role["aws_access_key_id"].startswith("ASIA")
    who = server.boto("sts", keys=as_role).get_caller_identity()
    assumed = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/ops"
    assert who["Arn"] == assumed
    client = server.boto("lambda", keys=as_role)
    assert function in {f["FunctionName"] for f in client.list_functions()["Functions"]}
    assert client.get_function(FunctionName=function)["Configuration"]["FunctionName"] == function
    assert refusal(client.delete_function, FunctionName=function) == (
        403,
        "AccessDeniedException",
        denied(assumed, "lambda:DeleteFunction", arn(function)),
    )
    listed = server.aws_cli("list-functions", env=cli_credentials(as_role))
    assert function in listed.stdout
    # Someone the role does not trust may not assume it.
    stranger_arn, stranger = user_with_keys(
        server, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
    )
    status, code, message = refusal(
        server.boto("sts", keys=stranger).assume_role, RoleArn=role_arn, RoleSessionName="xx"
    )
    assert (status, code) == (403, "AccessDenied")
    assert message.startswith(
        f"User: {stranger_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )


def test_another_accounts_root_sees_none_of_this_accounts_schedules(server: Server, function: str) -> None:
    """``/_lambdad/schedules`` and ``event-source-mappings`` list the signer's account's only."""
    from tests.support import LAMBDAD

    made = subprocess.run(
        [
            str(LAMBDAD),
            "accounts",
            "create",
            "--name",
            unique("team"),
            "--json",
            "--data-dir",
            str(server.data_dir),
        ],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    team = json.loads(made.stdout)
    team_root = {"aws_access_key_id": team["AccessKeyId"], "aws_secret_access_key": team["SecretAccessKey"]}
    name = unique("nightly")
    server.boto("scheduler").create_schedule(
        Name=name,
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": arn(function), "RoleArn": ROLE},
    )
    try:
        assert name in {s["Name"] for s in server.own("/_lambdad/schedules")["Schedules"]}
        assert server.own("/_lambdad/schedules", keys=team_root)["Schedules"] == []
        assert server.own("/_lambdad/event-source-mappings", keys=team_root)["EventSourceMappings"] == []
    finally:
        server.boto("scheduler").delete_schedule(Name=name)
