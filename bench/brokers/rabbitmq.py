"""RabbitMQ (the ``mq`` source) for the event-source benchmark: a durable queue of the bench's own."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import TracebackType

import aio_pika
import aio_pika.abc

from bench.brokers import body, mapping_spec, publish_and_drain
from lambdad.events.sources.rabbitmq import RABBITMQ
from lambdad.settings import DEFAULT_EVENT_SOURCES

BROKER_ARN = "arn:aws:mq:us-east-1:123456789012:broker:bench:b-00000000-0000-0000-0000-000000000000"
# Publishes in flight at once (each waits for its publisher confirm).
PUBLISH_WINDOW = 200


class BrokerBench:
    """A durable queue on the RabbitMQ at ``endpoint``, removed on exit."""

    service = "mq"

    def __init__(self, endpoint: str = DEFAULT_EVENT_SOURCES["mq"]) -> None:
        self.endpoint = endpoint
        self.queue = f"lambdad-bench-{uuid.uuid4().hex[:12]}"
        self.arn = BROKER_ARN
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None

    async def __aenter__(self) -> BrokerBench:
        self._connection = await aio_pika.connect(self.endpoint)
        self._channel = await self._connection.channel()
        await self._channel.declare_queue(self.queue, durable=True)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._channel is not None and self._connection is not None
        await self._channel.queue_delete(self.queue)
        await self._connection.close()

    async def publish_many(self, n: int) -> None:
        """Publish ``n`` persistent messages, confirmed by the broker."""
        assert self._channel is not None
        exchange = self._channel.default_exchange
        for start in range(0, n, PUBLISH_WINDOW):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(body(i), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key=self.queue,
                    )
                    for i in range(start, min(n, start + PUBLISH_WINDOW))
                )
            )

    async def raw_rate(self, n: int) -> float:
        """Events/s for publishing ``n`` messages and consuming them with acknowledgements (prefetch
        100), with aio-pika alone."""
        assert self._connection is not None
        started = time.perf_counter()
        await self.publish_many(n)
        async with self._connection.channel() as channel:
            await channel.set_qos(prefetch_count=100)
            queue = await channel.get_queue(self.queue)
            done = 0
            async with queue.iterator() as messages:
                async for message in messages:
                    await message.ack()
                    done += 1
                    if done == n:
                        break
        return n / (time.perf_counter() - started)

    async def source_rate(self, n: int, batch_size: int = 100) -> float:
        """Events/s publishing ``n`` messages and consuming them through lambdad's source."""
        spec = mapping_spec(self.arn, self.endpoint, batch_size, queues=(self.queue,))
        return await publish_and_drain(RABBITMQ, spec, n, self.publish_many)
