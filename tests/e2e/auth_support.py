"""What the end-to-end tests of authentication and authorization share: a signed server with a
function, users made through its IAM API, and AWS's words for refusals (as botocore and the AWS CLI
report them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.invoke_support import deploy_python, unique
from tests.support import ACCOUNT, Server

REGION = "us-east-1"
MISSING = "Missing Authentication Token"
INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A module's server with ``--auth sigv4`` (whatever LAMBDAD_TEST_AUTH says)."""
    running = Server(tmp_path_factory.mktemp("lambdad") / "data", auth=True).start(timeout=60)
    yield running
    running.stop(timeout=60)


def guarded_function(server: Server) -> str:
    """A function echoing its event, made as root."""
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
