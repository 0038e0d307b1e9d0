"""NATS JetStream for the event-source benchmark.

``NatsStream`` is a stream of the bench's own (deleted afterwards) with the ARN a mapping reads;
``raw_rate`` is JetStream's own publish+consume rate with nats-py (async publishes, pull-consumer
fetches of 100 with explicit acks), and ``source_rate`` the same records read through lambdad's source.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import nats

from lambdad.events.sources import SourceSpec
from lambdad.events.sources.nats_jetstream import NatsJetStreamKind

ENDPOINT = "nats://127.0.0.1:4222"
FETCH = 100
PAYLOAD = b'{"hello": "world"}'


@dataclass(frozen=True)
class NatsStream:
    """A JetStream stream capturing ``<name>.>``; records go to ``<name>.events``."""

    name: str
    endpoint: str = ENDPOINT

    @property
    def arn(self) -> str:
        return f"arn:aws:nats:us-east-1:000000000000:stream/{self.name}"

    @property
    def subject(self) -> str:
        return f"{self.name}.events"

    def publish_many(self, n: int, payload: bytes = PAYLOAD) -> float:
        """Publish ``n`` records (each acknowledged by JetStream); the seconds it took."""
        return asyncio.run(_publish(self, n, payload))


@contextmanager
def stream(endpoint: str = ENDPOINT) -> Iterator[NatsStream]:
    """A stream of the bench's own, deleted afterwards."""
    target = NatsStream(f"bench-{uuid.uuid4().hex[:10]}", endpoint)
    asyncio.run(_manage(target, create=True))
    try:
        yield target
    finally:
        asyncio.run(_manage(target, create=False))


def raw_rate(n: int = 5000, endpoint: str = ENDPOINT) -> float:
    """Events per second JetStream itself moves: publish ``n`` then consume and ack them all."""
    with stream(endpoint) as target:
        return n / asyncio.run(_publish_and_consume(target, n))


def source_rate(n: int = 5000, endpoint: str = ENDPOINT) -> float:
    """Events per second through lambdad's NATS source (receive batches of 100, ack each batch)."""
    with stream(endpoint) as target:
        return n / asyncio.run(_through_source(target, n))


async def _manage(target: NatsStream, create: bool) -> None:
    connection = await nats.connect(target.endpoint)
    try:
        jetstream = connection.jetstream()
        if create:
            await jetstream.add_stream(name=target.name, subjects=[f"{target.name}.>"])
        else:
            await jetstream.delete_stream(target.name)
    finally:
        await connection.close()


async def _publish(target: NatsStream, n: int, payload: bytes) -> float:
    connection = await nats.connect(target.endpoint)
    try:
        jetstream = connection.jetstream()
        started = time.perf_counter()
        # Publish acknowledgements awaited in windows, as a fast producer would.
        for start in range(0, n, FETCH):
            window = range(start, min(n, start + FETCH))
            await asyncio.gather(*(jetstream.publish(target.subject, payload) for _ in window))
        return time.perf_counter() - started
    finally:
        await connection.close()


async def _publish_and_consume(target: NatsStream, n: int) -> float:
    started = time.perf_counter()
    await _publish(target, n, PAYLOAD)
    connection = await nats.connect(target.endpoint)
    try:
        subscription = await connection.jetstream().pull_subscribe(target.subject, durable="bench-raw")
        consumed = 0
        while consumed < n:
            messages = await subscription.fetch(FETCH, timeout=5)
            for message in messages[:-1]:
                await message.ack()
            await messages[-1].ack_sync()
            consumed += len(messages)
        return time.perf_counter() - started
    finally:
        await connection.close()


async def _through_source(target: NatsStream, n: int) -> float:
    spec = SourceSpec(
        uuid=str(uuid.uuid4()),
        event_source_arn=target.arn,
        endpoint=target.endpoint,
        region="us-east-1",
        account="000000000000",
        batch_size=FETCH,
        starting_position="TRIM_HORIZON",
    )
    started = time.perf_counter()
    await _publish(target, n, PAYLOAD)
    source = NatsJetStreamKind().source(spec)
    await source.open()
    try:
        consumed = 0
        while consumed < n:
            batch = await source.receive(FETCH, 5)
            source.event(batch)
            await source.ack(batch)
            consumed += len(batch)
        return time.perf_counter() - started
    finally:
        await source.close()
