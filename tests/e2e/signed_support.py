"""Servers with ``--auth sigv4`` for end-to-end tests: a known root key (``LAMBDAD_ROOT_*``), boto3
clients signing with it or with keys made through the server's own IAM API, and roles Lambda may assume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import ACCOUNT, LAMBDA_TRUST, Server

__all__ = ["ACCOUNT", "ROOT_ENV", "ROOT_KEYS", "client", "lambda_role", "signed_server", "user_keys"]

ROOT_KEYS = {
    "aws_access_key_id": "AKIAW2ROOTKEY0000001",
    "aws_secret_access_key": "w2RootSecretKey0000000000000000000000000",
}
ROOT_ENV = {
    "LAMBDAD_ROOT_ACCESS_KEY_ID": ROOT_KEYS["aws_access_key_id"],
    "LAMBDAD_ROOT_SECRET_ACCESS_KEY": ROOT_KEYS["aws_secret_access_key"],
}


def signed_server(data_dir: Path, *extra_args: str) -> Server:
    """A ``lambdad serve --auth sigv4`` whose default account's root key is ``ROOT_KEYS`` (not started),
    whatever LAMBDAD_TEST_AUTH says."""
    return Server(data_dir, extra_args=list(extra_args), env=dict(ROOT_ENV), auth=True)


def client(server: Server, service: str, keys: dict[str, str] | None = None, **config: Any) -> Any:
    """A boto3 client of ``service`` on ``server`` signing with ``keys`` (default: its root key)."""
    return server.boto(service, keys=keys, **config)


def user_keys(iam: Any, name: str, *statements: dict[str, Any]) -> dict[str, str]:
    """An IAM user with an inline policy of ``statements`` (none: no policy at all), and its access key."""
    iam.create_user(UserName=name)
    if statements:
        document = {"Version": "2012-10-17", "Statement": list(statements)}
        iam.put_user_policy(UserName=name, PolicyName="given", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def lambda_role(iam: Any, name: str, *statements: dict[str, Any]) -> str:
    """A role that trusts Lambda, with an inline policy of ``statements`` (if any); its ARN."""
    arn = str(
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
    )
    if statements:
        document = {"Version": "2012-10-17", "Statement": list(statements)}
        iam.put_role_policy(RoleName=name, PolicyName="given", PolicyDocument=json.dumps(document))
    return arn
