"""Brokers for the event-source benchmark: one module per source kind, each with the same surface.

A broker bench is an async context manager that makes a queue or topic of its own (and, for SQS, the
server) and removes it afterwards::

    async with rabbitmq.BrokerBench() as broker:
        broker.arn, broker.endpoint, broker.service   # for CreateEventSourceMapping and LAMBDAD_EVENT_SOURCES
        await broker.publish_many(1000)                # messages {"n": 0}, {"n": 1}, ...
        await broker.raw_rate(5000)                    # events/s: the broker's own client, publish + consume
        await broker.source_rate(5000, batch_size=100) # events/s: through lambdad's source (receive + ack)

``raw_rate`` is the baseline for a mapping's figure: what the broker does with its own client and no
lambdad; ``source_rate`` times the same publish-then-consume work with lambdad's source as the consumer
(what the source costs before any function runs).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from lambdad.events.sources import Source, SourceKind, SourceSpec


class BrokerBench(Protocol):
    service: str
    arn: str
    endpoint: str

    async def publish_many(self, n: int) -> None: ...

    async def raw_rate(self, n: int) -> float: ...

    async def source_rate(self, n: int, batch_size: int = 100) -> float: ...


def body(index: int) -> bytes:
    """The ``index``-th benchmark message (small JSON, as most events are)."""
    return json.dumps({"n": index}).encode()


def mapping_spec(arn: str, endpoint: str, batch_size: int, **extra: Any) -> SourceSpec:
    """A mapping of the benchmark's own on ``arn``."""
    return SourceSpec(
        uuid=str(uuid.uuid4()),
        event_source_arn=arn,
        endpoint=endpoint,
        region="us-east-1",
        account="123456789012",
        batch_size=batch_size,
        **extra,
    )


class Drained:
    """How many messages went through a source so far (publishers may pace themselves on it)."""

    def __init__(self) -> None:
        self.count = 0


async def drain(
    source: Source, n: int, batch_size: int, drained: Drained | None = None, timeout: float = 120
) -> None:
    """Receive, shape into events and acknowledge ``n`` messages through an open ``source``."""
    drained = drained or Drained()
    deadline = time.perf_counter() + timeout
    while drained.count < n and time.perf_counter() < deadline:
        batch = await source.receive(batch_size, 1.0)
        if batch:
            source.event(batch)  # shaping the event is part of the cost
            await source.ack(batch)
            drained.count += len(batch)
    if drained.count < n:
        raise TimeoutError(f"only {drained.count} of {n} messages arrived through the source")


async def publish_and_drain(
    kind: SourceKind, spec: SourceSpec, n: int, publish_many: Callable[[int], Awaitable[None]]
) -> float:
    """Events/s for publishing ``n`` messages, then receiving and acknowledging them through
    ``kind``'s source (the same work ``raw_rate`` times, with lambdad's source as the consumer)."""
    source = kind.source(spec)
    await source.open()
    try:
        started = time.perf_counter()
        await publish_many(n)
        await drain(source, n, spec.batch_size)
        return n / (time.perf_counter() - started)
    finally:
        await source.close()
