"""RabbitMQ (the ``mq`` source) for the event-source benchmark: durable queues of the bench's own."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aio_pika

from bench.brokers import body, mapping_spec, rate_through_source
from lambdad.events.sources.rabbitmq import RABBITMQ, BrokerArn
from lambdad.settings import DEFAULT_EVENT_SOURCES

ENDPOINT = DEFAULT_EVENT_SOURCES["mq"]
BROKER_ARN = "arn:aws:mq:us-east-1:000000000000:broker:bench:b-00000000-0000-4000-8000-000000000000"
# Publishes in flight at once (each waits for its publisher confirm).
PUBLISH_WINDOW = 200
PREFETCH = 100


def _queue(arn: str) -> str:
    return BrokerArn.parse(arn).queue


def new_arn() -> str:
    """A fresh durable queue, as ``BROKER_ARN/QUEUE``."""
    queue = f"lambdad-bench-{uuid.uuid4().hex[:12]}"

    async def declare() -> None:
        async with await aio_pika.connect(ENDPOINT) as connection:
            await (await connection.channel()).declare_queue(queue, durable=True)

    asyncio.run(declare())
    return f"{BROKER_ARN}/{queue}"


def mapping_params(arn: str) -> dict[str, Any]:
    return {"EventSourceArn": BROKER_ARN, "Queues": [_queue(arn)], "BatchSize": PREFETCH}


def remove(arn: str) -> None:
    async def delete() -> None:
        async with await aio_pika.connect(ENDPOINT) as connection:
            await (await connection.channel()).queue_delete(_queue(arn))

    asyncio.run(delete())


async def _publish(channel: aio_pika.abc.AbstractChannel, queue: str, n: int) -> None:
    exchange = channel.default_exchange
    for start in range(0, n, PUBLISH_WINDOW):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(body(i), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue,
                )
                for i in range(start, min(n, start + PUBLISH_WINDOW))
            )
        )


def publish_many(arn: str, n: int) -> None:
    """Publish ``n`` persistent messages, each confirmed by the broker."""

    async def publish() -> None:
        async with await aio_pika.connect(ENDPOINT) as connection:
            await _publish(await connection.channel(), _queue(arn), n)

    asyncio.run(publish())


def raw_seconds(n: int) -> float:
    """aio-pika alone: publish ``n`` confirmed messages, then consume and acknowledge them (prefetch 100)."""
    arn = new_arn()

    async def publish_and_consume() -> float:
        started = time.perf_counter()
        async with await aio_pika.connect(ENDPOINT) as connection:
            channel = await connection.channel()
            await _publish(channel, _queue(arn), n)
            await channel.set_qos(prefetch_count=PREFETCH)
            done = 0
            async with (await channel.get_queue(_queue(arn))).iterator() as messages:
                async for message in messages:
                    await message.ack()
                    done += 1
                    if done == n:
                        break
        return time.perf_counter() - started

    try:
        return asyncio.run(publish_and_consume())
    finally:
        remove(arn)


def source_rate(n: int, batch_size: int = PREFETCH) -> float:
    """Events/s: publish ``n`` messages, consume them through lambdad's RabbitMQ source."""
    arn = new_arn()
    try:
        spec = mapping_spec(RABBITMQ, BROKER_ARN, ENDPOINT, batch_size, queues=(_queue(arn),))
        return rate_through_source(RABBITMQ, spec, n, lambda count, _: publish_many(arn, count))
    finally:
        remove(arn)
