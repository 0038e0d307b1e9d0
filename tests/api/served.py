"""An ASGI app served by a real uvicorn on a free loopback port, in a thread of the test process, so that
real boto3 clients talk HTTP to an ``AwsApi`` the test composed (its own tables, its own resolver)."""

from __future__ import annotations

import ipaddress
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import uvicorn
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp

from lambdad.api.http_server import HttpLimits, protocol_class
from tests.support import free_port

KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


class Served:
    """``with Served(app) as served: served.client("iam")``."""

    def __init__(self, app: ASGIApp, **config: Any) -> None:
        self.port = free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
                http=protocol_class(HttpLimits()),  # the API port's own protocol, as `lambdad serve` runs it
                **config,
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.scheme = "https" if "ssl_certfile" in config else "http"
        self.verify: str | bool | None = None  # an HTTPS server's certificate, for clients to trust

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        if self._thread.is_alive() and kind is None:
            raise RuntimeError("uvicorn did not stop within 10 s")

    def client(
        self, service: str, region: str = "us-east-1", keys: dict[str, str] | None = None, **config: Any
    ) -> Any:
        """A boto3 client of ``service`` here (``keys``: its credentials; ``config``: botocore's)."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            config=Config(retries={"max_attempts": 1}, **config),
            verify=self.verify,
            **(KEYS if keys is None else keys),
        )


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (valid a day) and its key, as PEM files in ``directory``; clients trust
    it with ``verify=<certificate path>``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path.write_bytes(private)
    key_path.chmod(0o600)
    return cert_path, key_path
