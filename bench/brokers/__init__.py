"""Brokers for the event-source benchmark (``bench/event_sources.py``): one module per source kind, each
with the same plain functions, so that a ``SourceCase`` is a few lines:

- ``ENDPOINT`` or ``endpoint()``: the broker's URL (``LAMBDAD_EVENT_SOURCES``); SQS starts moto's
  server for it, PostgreSQL creates the bench's database.
- ``new_arn()``: a fresh queue or topic, named by an ARN (for Amazon MQ, ``BROKER_ARN/QUEUE``);
  ``remove(arn)`` removes it; ``mapping_params(arn)``: CreateEventSourceMapping's parameters for it.
- ``publish_many(arn, n)``: publish ``n`` small JSON messages ``{"n": i}``.
- ``raw_seconds(n)``: the baseline: seconds for the broker's own client to publish ``n`` messages to a
  fresh queue and consume (acknowledge) them all.
- ``source_rate(n, batch_size)``: events/s for the same work with lambdad's source as the consumer
  (receive, shape the event, acknowledge; no function): what the source adds before any invoke.
  ``rate_through_source`` does that measurement for every module but MQTT's (which paces its
  publisher instead).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

from lambdad.events.sources import Source, SourceKind, SourceSpec


def body(index: int) -> bytes:
    """The ``index``-th benchmark message (small JSON, as most events are)."""
    return json.dumps({"n": index}).encode()


def mapping_spec(kind: SourceKind, arn: str, endpoint: str, batch_size: int, **extra: object) -> SourceSpec:
    """A mapping of the benchmark's own on ``arn``, checked by its kind."""
    spec = SourceSpec(
        uuid=str(uuid.uuid4()),
        event_source_arn=arn,
        endpoint=endpoint,
        region="us-east-1",
        account="000000000000",
        batch_size=batch_size,
        **extra,  # type: ignore[arg-type]
    )
    kind.validate(spec)
    return spec


async def drain(source: Source, n: int, batch_size: int, timeout: float = 120) -> None:
    """Receive, shape into events and acknowledge ``n`` messages through an open ``source``."""
    done = 0
    deadline = time.perf_counter() + timeout
    while done < n and time.perf_counter() < deadline:
        batch = await source.receive(batch_size, 1.0)
        if batch:
            source.event(batch)  # shaping the event is part of the cost
            await source.ack(batch)
            done += len(batch)
    if done < n:
        raise TimeoutError(f"only {done} of {n} messages arrived through the source")


def rate_through_source(
    kind: SourceKind, spec: SourceSpec, n: int, publish: Callable[[int, int], None], rounds: int = 0
) -> float:
    """Events/s through lambdad's source for ``spec``: open it, publish ``n`` messages with
    ``publish(count, first)`` and drain them (in rounds of ``rounds`` messages, each drained before the
    next is published, when given), close it. Opened first, so that no message waits for the source."""

    async def measure() -> float:
        source = kind.source(spec)
        await source.open()
        try:
            started = time.perf_counter()
            step = rounds or n
            for first in range(0, n, step):
                count = min(step, n - first)
                await asyncio.to_thread(publish, count, first)
                await drain(source, count, spec.batch_size)
            return n / (time.perf_counter() - started)
        finally:
            await source.close()

    return asyncio.run(measure())
