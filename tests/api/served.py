"""An ASGI app served by a real uvicorn on a free loopback port, in a thread of the test process, so that
real boto3 clients talk HTTP to an ``AwsApi`` the test composed (its own tables, its own resolver)."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import boto3
import uvicorn
from botocore.config import Config
from starlette.types import ASGIApp

from tests.support import free_port

KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


class Served:
    """``with Served(app) as served: served.client("iam")``."""

    def __init__(self, app: ASGIApp, **config: Any) -> None:
        self.port = free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", **config
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
