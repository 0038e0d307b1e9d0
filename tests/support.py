"""Helpers the tests share: zips, a real lambdad server process, AWS clients."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

LAMBDAD = Path(sys.executable).parent / "lambdad"
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"
# The root key of account 000000000000 every test server starts with (auth sigv4 by default), given as
# LAMBDAD_ROOT_ACCESS_KEY_ID/..._SECRET_ACCESS_KEY so the tests know it; shaped as AWS shapes keys.
ROOT_ACCESS_KEY_ID = "AKIALAMBDADTESTR00T1"
ROOT_SECRET_ACCESS_KEY = "lambdadTestRootSecretKey/0123456789+abcd"
CREDENTIALS: dict[str, Any] = {
    "aws_access_key_id": ROOT_ACCESS_KEY_ID,
    "aws_secret_access_key": ROOT_SECRET_ACCESS_KEY,
}
# What an execution role made by ``Server.make_role`` may do: lambdad's behaviour before identities
# (tests/e2e/test_function_identity.py): invoke functions (AWS's managed AWSLambdaRole), poll SQS queues
# (AWSLambdaSQSQueueExecutionRole), queue legacy InvokeAsync events, read the account's limits and deliver
# to destinations and dead-letter targets (no managed policy covers those); nothing else.
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
ROLE_POLICIES = (
    "arn:aws:iam::aws:policy/service-role/AWSLambdaRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
)
ROLE_EXTRAS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "lambda:InvokeAsync",
                "lambda:GetAccountSettings",
                "sqs:SendMessage",
                "sns:Publish",
                "events:PutEvents",
                "s3:PutObject",
                "mq:DescribeBroker",
            ],
            "Resource": "*",
        }
    ],
}


def make_zip(files: dict[str, str | bytes] | None = None) -> bytes:
    """A zip holding ``files`` (a Python handler by default); the same files always give the same bytes."""
    files = files or {"handler.py": "def handler(event, context):\n    return event\n"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answer(sock: socket.socket) -> bytes:
    """Everything a server writes on a raw connection until it closes it (a reset ends it too)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    """The status code of a raw HTTP/1.1 response."""
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


@dataclass
class Server:
    """A real ``lambdad serve`` process on a free loopback port."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    # Environment variables the server gets on top of the test process's own.
    env: dict[str, str] = field(default_factory=dict)
    # SigV4 on every request, with the fixed root key (CREDENTIALS); False: ``--auth none``, for tests
    # whose point is unrelated to identities and that cannot sign (they say why). The default follows
    # LAMBDAD_TEST_AUTH (``none``: run the suite's servers without authentication, as issue 12 asks the
    # suite to pass both ways); tests about identities say auth=True.
    auth: bool = field(default_factory=lambda: os.environ.get("LAMBDAD_TEST_AUTH", "sigv4") != "none")
    # Whether the execution role ROLE exists yet (made once, at the first start with auth on).
    _role_made: bool = field(default=False, init=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def start(self, timeout: float = 30) -> Server:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = self._spawn(log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lambdad exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise TimeoutError("lambdad did not answer /health in time")
        if self.auth and not self._role_made:
            self.make_role(ROLE.rsplit("/", 1)[1])
            self._role_made = True
        return self

    def make_role(self, name: str) -> str:
        """An execution role ``name`` Lambda may assume, with ROLE's permissions (four IAM calls, 20-50 ms
        measured); its ARN. With auth off a role is a name only: nothing to make. A role that exists (a
        cluster's nodes share one store) is left as it is."""
        arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
        if not self.auth:
            return arn
        # Retried when throttled: a server with a low --api-rate-limit answers the fourth call at once.
        iam = self.boto("iam", retries={"max_attempts": 10, "mode": "standard"})
        try:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
        except iam.exceptions.EntityAlreadyExistsException:
            return arn
        for policy_arn in ROLE_POLICIES:
            iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        iam.put_role_policy(
            RoleName=name, PolicyName="lambdad-defaults", PolicyDocument=json.dumps(ROLE_EXTRAS)
        )
        return arn

    @property
    def root_keys(self) -> dict[str, Any]:
        """The root key the server starts with: CREDENTIALS, unless ``env`` gives another."""
        env = self.server_env
        if "LAMBDAD_ROOT_ACCESS_KEY_ID" not in env:
            return CREDENTIALS
        return {
            "aws_access_key_id": env["LAMBDAD_ROOT_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["LAMBDAD_ROOT_SECRET_ACCESS_KEY"],
        }

    @property
    def server_env(self) -> dict[str, str]:
        """What the server process's environment adds to the test process's."""
        auth = {
            "LAMBDAD_AUTH": "sigv4",
            "LAMBDAD_ROOT_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID,
            "LAMBDAD_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY,
        }
        return {**(auth if self.auth else {"LAMBDAD_AUTH": "none"}), **self.env}

    def _spawn(self, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                str(LAMBDAD),
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.server_env},
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def client(self, region: str = "us-east-1", **config: Any) -> Any:
        """A Lambda client signing as the root user."""
        return self.boto("lambda", region, **config)

    def boto(
        self, service: str, region: str = "us-east-1", keys: dict[str, Any] | None = None, **config: Any
    ) -> Any:
        """A boto3 client of ``service`` for this server, signing with ``keys`` (the root key's by
        default)."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=region,
            config=Config(**{"retries": {"max_attempts": 1}, **config}),
            **(keys or self.root_keys),
        )

    def aws_cli(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None, service: str = "lambda"
    ) -> subprocess.CompletedProcess[str]:
        """Run the AWS CLI against this server (as root, unless ``env`` says otherwise)."""
        variables = {
            **os.environ,
            **cli_credentials(self.root_keys),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_PAGER": "",
            **(env or {}),
        }
        command = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", self.endpoint, service, *args]
        return subprocess.run(command, env=variables, capture_output=True, text=True, check=check, timeout=60)

    def cli_env(self, **extra: str) -> dict[str, str]:
        """The environment of a command (``lambdad logs --endpoint``, ``lambdad sign``...) run as root
        against this server: the test process's, with the root key in the AWS variables."""
        return {**os.environ, **cli_credentials(self.root_keys), "AWS_DEFAULT_REGION": "us-east-1", **extra}

    def own(self, path: str, keys: dict[str, Any] | None = None, timeout: float = 10) -> Any:
        """``GET path`` of lambdad's own endpoints (``/_lambdad/...``) as JSON, signed as the ``lambdad``
        CLI signs it (SigV4, service ``lambda``; unsigned with auth off)."""
        path, _, query = path.partition("?")
        if query:  # encoded as SigV4 encodes it, so that the signed query is the one sent
            path += "?" + urlencode(parse_qsl(query), quote_via=quote)
        request = urllib.request.Request(self.endpoint + path, headers=self.signed_headers("GET", path, keys))
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.load(answer)

    def raw_head(self, method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
        """The head of a raw HTTP/1.1 request (request line, headers, blank line) signed as root for
        ``body`` (the caller sends the body, or not); ``headers`` are added unsigned."""
        fields = {"Host": f"127.0.0.1:{self.port}", **self.signed_headers(method, path, body=body), **headers}
        if body:
            fields["Content-Length"] = str(len(body))
        lines = [f"{method} {path} HTTP/1.1", *(f"{name}: {value}" for name, value in fields.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def signed_headers(
        self,
        method: str,
        path: str,
        keys: dict[str, Any] | None = None,
        body: bytes = b"",
        service: str = "lambda",
    ) -> dict[str, str]:
        """The headers that sign a raw request (botocore's SigV4Auth) to this server; none with auth off."""
        if not self.auth:
            return {}
        keys = keys or self.root_keys
        credentials = Credentials(
            keys["aws_access_key_id"], keys["aws_secret_access_key"], keys.get("aws_session_token")
        )
        request = AWSRequest(method=method, url=self.endpoint + path, data=body)
        SigV4Auth(credentials, service, "us-east-1").add_auth(request)
        return dict(request.headers.items())


def cli_credentials(keys: dict[str, Any]) -> dict[str, str]:
    """boto3 keyword credentials as the AWS CLI's (and any SDK's) environment variables."""
    names = {
        "aws_access_key_id": "AWS_ACCESS_KEY_ID",
        "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
        "aws_session_token": "AWS_SESSION_TOKEN",
    }
    return {names[key]: value for key, value in keys.items()}


def create_function(client: Any, name: str, wait: bool = True, **overrides: Any) -> dict[str, Any]:
    """CreateFunction with working defaults, waiting until Active."""
    params: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "handler.handler",
        "Code": {"ZipFile": make_zip()},
    }
    params.update(overrides)
    response = client.create_function(**params)
    if wait:
        client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    return dict(response)
