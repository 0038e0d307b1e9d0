"""NATS JetStream for the event-source benchmark (the functions ``bench.brokers`` describes).

A source is a stream ``bench-<hex>`` capturing ``<name>.>``; records go to ``<name>.events``. The raw
baseline is nats-py alone: JetStream publishes acknowledged in windows of 100, then a durable pull
consumer fetching 100 at a time with explicit acks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import nats

from bench.brokers import mapping_spec, rate_through_source
from lambdad.events.sources.nats_jetstream import NatsJetStreamKind, stream_name

ENDPOINT = "nats://127.0.0.1:4222"
WINDOW = 100
PAYLOAD = b'{"hello": "world"}'


def mapping_params(arn: str) -> dict[str, Any]:
    return {"EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON", "BatchSize": 100}


def endpoint() -> str:
    return ENDPOINT


def new_arn() -> str:
    """A fresh stream of the bench's own."""
    name = f"bench-{uuid.uuid4().hex[:10]}"
    asyncio.run(_with_jetstream(lambda js: js.add_stream(name=name, subjects=[f"{name}.>"])))
    return f"arn:aws:nats:us-east-1:000000000000:stream/{name}"


def remove(arn: str) -> None:
    asyncio.run(_with_jetstream(lambda js: js.delete_stream(stream_name(arn))))


def publish_many(arn: str, n: int) -> None:
    """Publish ``n`` records, each acknowledged by JetStream."""
    asyncio.run(_publish(stream_name(arn), n))


def raw_seconds(n: int) -> float:
    """Seconds nats-py alone takes to publish ``n`` records and consume and ack them all."""
    arn = new_arn()
    try:
        return asyncio.run(_publish_and_consume(stream_name(arn), n))
    finally:
        remove(arn)


def source_rate(n: int, batch_size: int = WINDOW) -> float:
    """Events per second through lambdad's NATS source (receive batches, ack each batch)."""
    arn = new_arn()
    try:
        spec = mapping_spec(NatsJetStreamKind(), arn, ENDPOINT, batch_size, starting_position="TRIM_HORIZON")
        return rate_through_source(NatsJetStreamKind(), spec, n, lambda count, _: publish_many(arn, count))
    finally:
        remove(arn)


async def _with_jetstream(action: Any) -> Any:
    connection = await nats.connect(ENDPOINT)
    try:
        return await action(connection.jetstream())
    finally:
        await connection.close()


async def _publish(stream: str, n: int) -> None:
    connection = await nats.connect(ENDPOINT)
    try:
        jetstream = connection.jetstream()
        for start in range(0, n, WINDOW):
            window = range(start, min(n, start + WINDOW))
            await asyncio.gather(*(jetstream.publish(f"{stream}.events", PAYLOAD) for _ in window))
    finally:
        await connection.close()


async def _publish_and_consume(stream: str, n: int) -> float:
    started = time.perf_counter()
    await _publish(stream, n)
    connection = await nats.connect(ENDPOINT)
    try:
        subscription = await connection.jetstream().pull_subscribe(f"{stream}.events", durable="raw")
        consumed = 0
        while consumed < n:
            messages = await subscription.fetch(WINDOW, timeout=5)
            for message in messages[:-1]:
                await message.ack()
            await messages[-1].ack_sync()
            consumed += len(messages)
        return time.perf_counter() - started
    finally:
        await connection.close()
