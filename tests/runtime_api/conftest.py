from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from lambdad.runtime_api import Limits, RuntimeApiServer, RuntimeChannel
from lambdad.runtime_api.limits import SHARED_BUDGET, ConnectionBudget
from tests.runtimes.harness import listening_socket

T = TypeVar("T")
BASE = "/2018-06-01/runtime"


class Api:
    """A Runtime API server on 127.0.0.1 in its own event-loop thread; tests talk HTTP to it."""

    def __init__(self, limits: Limits | None = None, budget: ConnectionBudget = SHARED_BUDGET) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sock = listening_socket()
        self.port = self.sock.getsockname()[1]

        async def start() -> tuple[RuntimeChannel, RuntimeApiServer, asyncio.Task[None]]:
            channel = RuntimeChannel()
            server = RuntimeApiServer(channel, limits=limits, budget=budget)
            return channel, server, asyncio.create_task(server.serve(self.sock))

        self.channel, self.server, self.task = self.call(start())

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return self.submit(coro).result(timeout)

    def later(self, fn: Any, *args: Any) -> None:
        """Run a plain function on the server's loop and wait for it."""

        async def run() -> Any:
            return fn(*args)

        self.call(run())

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def close(self) -> None:
        async def stop() -> None:
            self.channel.close()
            self.server.close()
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        self.sock.close()


def request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn.request(method, BASE + path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.headers, response.read()


def error_of(body: bytes) -> tuple[str, str]:
    doc = json.loads(body)
    return doc["errorType"], doc["errorMessage"]


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    try:
        yield server
    finally:
        server.close()
