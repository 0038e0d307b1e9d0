"""Fixtures for the source tests: an event loop runner and moto's SQS server."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from tests.brokers import moto_server

T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T], timeout: float = 60) -> T:
    """Run an async test body on a fresh event loop, bounded by ``timeout``."""
    return asyncio.run(asyncio.wait_for(scenario, timeout))


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """One moto server for every SQS test (each test makes its own queues)."""
    server = moto_server().start()
    yield f"http://127.0.0.1:{server.port}"
    server.cleanup()
