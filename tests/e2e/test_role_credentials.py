"""Role credentials inside functions, end to end, once the server has its IAM and STS APIs (issue 12): each
environment sees temporary credentials of its own execution role (``ASIA...``, a session token), a
spare-specialised one too; two roles get two sessions; the credentials appear neither in the function's
log nor in the server's, nor under the data directory. Skipped on a server without the IAM API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.parsers
import pytest
from botocore.config import Config

from lambdad.runtimes.environment import PLACEHOLDER_CREDENTIALS
from tests.e2e.invoke_support import deploy_python, invoke, log_messages, unique
from tests.support import CREDENTIALS, Server

SHOW = """
import os

def handler(event, context):
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    return [os.environ.get(name) for name in names]
"""
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("lambdad") / "data", extra_args=["--spares", "1"])
    running.start(timeout=60)
    yield running
    running.stop(timeout=60)


def role(server: Server, name: str) -> str:
    """A role Lambda may assume, made through the server's IAM API (skips the test without one)."""
    iam = boto3.client(
        "iam",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **CREDENTIALS,
    )
    try:
        made = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    except botocore.parsers.ResponseParserError:  # lambdad's "No operation serves POST /"
        pytest.skip("this server has no IAM API yet")
    except botocore.exceptions.ClientError as error:
        if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            pytest.skip("this server has no IAM API yet")
        raise
    return str(made["Role"]["Arn"])


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


def test_each_environment_sees_its_roles_credentials_and_nobody_else_does(server: Server) -> None:
    client = server.client()
    roles = [role(server, unique("reader")), role(server, unique("writer"))]
    names = [unique("creds"), unique("creds")]
    seen: list[Any] = []
    for name, arn in zip(names, roles, strict=True):  # the second cold start takes the spare
        deploy_python(client, name, SHOW, Role=arn)
        access_key, secret, token = invoke(client, name)[1]
        assert access_key.startswith("ASIA") and (access_key, secret, token) != PLACEHOLDER_CREDENTIALS
        assert token and secret
        assert invoke(client, name)[1] == [access_key, secret, token]  # warm: the same session
        seen.append((access_key, secret, token))
    assert seen[0][0] != seen[1][0]  # two roles, two sessions
    for _, secret, token in seen:
        for needle in (secret.encode(), token.encode()):
            assert files_holding(server.data_dir, needle) == []
            assert needle not in server.log_path.read_bytes()
        for name in names:
            assert not any(secret in line or token in line for line in log_messages(server, name))
