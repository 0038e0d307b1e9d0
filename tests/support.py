"""Helpers the tests share: zips, a real lambdad server process, AWS clients."""

from __future__ import annotations

import contextlib
import io
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

import boto3
from botocore.config import Config

LAMBDAD = Path(sys.executable).parent / "lambdad"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
CREDENTIALS: dict[str, Any] = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


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
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("lambdad did not answer /health in time")

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
            env={**os.environ, **self.env} if self.env else None,
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
        return boto3.client(
            "lambda",
            endpoint_url=self.endpoint,
            region_name=region,
            config=Config(retries={"max_attempts": 1}, **config),
            **CREDENTIALS,
        )

    def aws_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the AWS CLI against this server."""
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_PAGER": "",
        }
        command = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", self.endpoint, "lambda", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=check, timeout=60)


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
