"""What the source tests share: an event loop runner, mappings' SourceSpecs and moto's SQS server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from lambdad.events.sources import SourceSpec
from tests.brokers import moto_server

T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T], timeout: float = 60) -> T:
    """Run an async test body on a fresh event loop, bounded by ``timeout``."""
    return asyncio.run(asyncio.wait_for(scenario, timeout))


def source_spec(arn: str, endpoint: str, **fields: Any) -> SourceSpec:
    """A new mapping's SourceSpec on ``arn`` (its region and account from the ARN), BatchSize 10;
    ``fields`` set or override the rest."""
    _, _, _, region, account, _ = arn.split(":", 5)
    values: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "event_source_arn": arn,
        "endpoint": endpoint,
        "region": region,
        "account": account,
        "batch_size": 10,
    }
    values.update(fields)
    return SourceSpec(**values)


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """One moto server for every SQS test (each test makes its own queues)."""
    server = moto_server().start()
    yield f"http://127.0.0.1:{server.port}"
    server.cleanup()
