"""``lambdad serve``'s security flags, on real server processes: no unauthenticated server on a network
address unless the operator says ``--insecure``, and the API over HTTPS with ``--tls-cert``/``--tls-key``."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from tests.api.served import self_signed_certificate
from tests.support import CREDENTIALS, LAMBDAD, Server, free_port

pytestmark = pytest.mark.e2e


def serve(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``lambdad serve`` that is expected to refuse to start."""
    command = [str(LAMBDAD), "serve", "--port", str(free_port()), "--data-dir", str(data_dir), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=30, env={**os.environ, **(env or {})}
    )


def test_auth_none_on_a_network_address_is_refused(tmp_path: Path) -> None:
    refused = serve(tmp_path / "data", "--host", "0.0.0.0")
    assert refused.returncode == 1
    lines = [line for line in (refused.stdout + refused.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("lambdad: refusing to listen on 0.0.0.0 with --auth none")
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_bad_auth_setting_is_refused(tmp_path: Path) -> None:
    assert serve(tmp_path / "data", env={"LAMBDAD_AUTH": "sigv2"}).returncode == 2
    assert serve(tmp_path / "data", "--tls-cert", "cert.pem").returncode == 2  # no key


def test_insecure_listens_on_a_network_address_anyway(tmp_path: Path) -> None:
    # Auth off: --insecure is what lets an unauthenticated server on a network address.
    server = Server(tmp_path / "data", extra_args=["--host", "0.0.0.0", "--insecure"], auth=False).start()
    try:
        with urllib.request.urlopen(f"{server.endpoint}/health", timeout=5) as answer:
            assert answer.status == 200
    finally:
        server.stop()


class TlsServer(Server):
    """A server on HTTPS: started, and its health polled, over TLS."""

    cert: Path = Path()

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Server:
        with open(self.log_path, "ab") as log:
            self.process = self._spawn(log)
        context = ssl.create_default_context(cafile=str(self.cert))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lambdad exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/health", timeout=1, context=context):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("lambdad did not answer /health over HTTPS in time")


def test_the_api_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    server = TlsServer(tmp_path / "data", extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    server.cert = cert
    server.start()
    try:
        client = boto3.client(
            "lambda",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            verify=str(cert),
            config=Config(retries={"max_attempts": 1}),
            **CREDENTIALS,
        )
        assert client.list_functions()["Functions"] == []
        with pytest.raises(OSError):  # plain HTTP is not served
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=5)
    finally:
        server.stop()
