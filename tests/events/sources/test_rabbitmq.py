"""The RabbitMQ (Amazon MQ-style) source against the real RabbitMQ on 127.0.0.1:5672 and a private node."""

from __future__ import annotations

import asyncio
import base64
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources import SOURCE_KINDS, SourceMessage, SourceSpec, SourceUnavailable, kind_for
from lambdad.events.sources.rabbitmq import RABBITMQ, RabbitMqSource
from tests.brokers import private_rabbitmq
from tests.events.sources.conftest import run, source_spec

BROKER = "amqp://guest:guest@127.0.0.1:5672/"
BROKER_ARN = "arn:aws:mq:us-east-1:123456789012:broker:main:b-0f5e7c3a-1111-2222-3333-444455556666"
# The basicProperties AWS's example RabbitMQ event carries, in its order.
AWS_BASIC_PROPERTIES = [
    "contentType",
    "contentEncoding",
    "headers",
    "deliveryMode",
    "priority",
    "correlationId",
    "replyTo",
    "expiration",
    "messageId",
    "timestamp",
    "type",
    "userId",
    "appId",
    "clusterId",
    "bodySize",
]


def spec(queue: str, endpoint: str = BROKER, **overrides: Any) -> SourceSpec:
    return source_spec(BROKER_ARN, endpoint, **{"queues": (queue,), **overrides})


@asynccontextmanager
async def a_queue(
    endpoint: str = BROKER, **arguments: Any
) -> AsyncIterator[tuple[str, aio_pika.abc.AbstractChannel]]:
    """A durable queue of the test's own, removed afterwards, and a channel to publish on."""
    name = f"lambdad-test-{uuid.uuid4().hex[:12]}"
    connection = await aio_pika.connect(endpoint)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=True, arguments=arguments or None)
        try:
            yield name, channel
        finally:
            await queue.delete(if_unused=False, if_empty=False)


async def send(channel: aio_pika.abc.AbstractChannel, queue: str, *bodies: bytes, **properties: Any) -> None:
    for body in bodies:
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **properties)
        await channel.default_exchange.publish(message, routing_key=queue)


@asynccontextmanager
async def opened(mapping: SourceSpec) -> AsyncIterator[RabbitMqSource]:
    source = RABBITMQ.source(mapping)
    await source.open()
    try:
        yield source
    finally:
        await source.close()


def bodies(messages: list[SourceMessage]) -> list[bytes]:
    return [base64.b64decode(m.record["data"]) for m in messages]


def test_the_mq_kind_serves_amazon_mq_broker_arns() -> None:
    assert SOURCE_KINDS["mq"] is RABBITMQ
    assert kind_for(BROKER_ARN) is RABBITMQ


def test_the_event_has_the_shape_of_aws_rabbitmq_events() -> None:
    sent_at = datetime(2026, 3, 4, 15, 6, 7, tzinfo=UTC)

    async def scenario() -> tuple[list[SourceMessage], dict[str, Any]]:
        async with a_queue() as (name, channel):
            await send(
                channel,
                name,
                b'{"order": 7}',
                content_type="application/json",
                headers={"header1": "value1", "numberInHeader": 10},
                priority=3,
                expiration=60,
                message_id="m-1",
                correlation_id="c-1",
                timestamp=sent_at,
                app_id="shop",
            )
            async with opened(spec(name)) as source:
                messages = await source.receive(10, 5)
                return messages, source.event(messages)

    messages, event = run(scenario())
    (queue_key,) = event["rmqMessagesByQueue"]
    assert queue_key.endswith("::/")
    assert event["eventSource"] == "aws:rmq"
    assert event["eventSourceArn"] == BROKER_ARN
    (record,) = event["rmqMessagesByQueue"][queue_key]
    assert list(record) == ["basicProperties", "redelivered", "data"]
    properties = record["basicProperties"]
    assert list(properties) == AWS_BASIC_PROPERTIES
    assert properties["contentType"] == "application/json"
    assert properties["headers"] == {"header1": {"bytes": list(b"value1")}, "numberInHeader": 10}
    assert properties["deliveryMode"] == 2
    assert properties["priority"] == 3
    assert properties["expiration"] == "60000"
    assert properties["messageId"] == "m-1"
    assert properties["correlationId"] == "c-1"
    assert properties["timestamp"] == "Mar 4, 2026, 3:06:07 PM"
    assert properties["appId"] == "shop"
    assert properties["bodySize"] == len(b'{"order": 7}')
    assert record["redelivered"] is False
    assert base64.b64decode(record["data"]) == b'{"order": 7}'
    (message,) = messages
    assert message.filter_view["data"] == {"order": 7}
    assert message.delivery_count == 1
    assert message.sent_at == sent_at.timestamp()


def test_a_batch_holds_at_most_batch_size_messages_and_the_rest_follow_after_the_ack() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        async with a_queue() as (name, channel):
            await send(channel, name, *(f"m{i}".encode() for i in range(5)))
            async with opened(spec(name, batch_size=3)) as source:
                await asyncio.sleep(0.3)  # let the broker push what the prefetch allows
                first = await source.receive(10, 5)
                await source.ack(first)
                second = await source.receive(10, 5)
                await source.ack(second)
                return bodies(first), bodies(second)

    first, second = run(scenario())
    assert first == [b"m0", b"m1", b"m2"]
    assert second == [b"m3", b"m4"]


def test_receive_on_an_empty_queue_returns_nothing_after_max_wait() -> None:
    async def scenario() -> list[SourceMessage]:
        async with a_queue() as (name, _), opened(spec(name)) as source:
            return await source.receive(10, 0.3)

    assert run(scenario()) == []


def test_acknowledged_messages_never_come_back() -> None:
    async def scenario() -> tuple[int, list[SourceMessage], int | None]:
        async with a_queue() as (name, channel):
            await send(channel, name, b"a", b"b")
            mapping = spec(name)
            async with opened(mapping) as source:
                taken = await source.receive(10, 5)
                while len(taken) < 2:
                    taken += await source.receive(10, 5)
                await source.ack(taken)
            async with opened(mapping) as source:
                return len(taken), await source.receive(10, 0.5), await source.lag()

    taken, again, lag = run(scenario())
    assert taken == 2
    assert again == []
    assert lag == 0


def test_a_released_message_is_delivered_again_marked_redelivered() -> None:
    async def scenario() -> tuple[SourceMessage, SourceMessage]:
        async with a_queue() as (name, channel):
            await send(channel, name, b"retry me")
            async with opened(spec(name)) as source:
                (first,) = await source.receive(10, 5)
                await source.release([first])
                (second,) = await source.receive(10, 5)
                await source.ack([second])
                return first, second

    first, second = run(scenario())
    assert (first.delivery_count, second.delivery_count) == (1, 2)
    assert (first.record["redelivered"], second.record["redelivered"]) == (False, True)
    assert base64.b64decode(second.record["data"]) == b"retry me"


async def delivery_counts_when_released(releases: int, **queue_arguments: Any) -> list[int]:
    """One message on a new queue, released ``releases`` times: its delivery count each time."""
    async with a_queue(**queue_arguments) as (name, channel):
        await send(channel, name, b"again and again")
        counts = []
        async with opened(spec(name)) as source:
            for _ in range(releases):
                (message,) = await source.receive(10, 5)
                counts.append(message.delivery_count)
                await source.release([message])
            (last,) = await source.receive(10, 5)
            await source.ack([last])
        return counts


def test_a_classic_queue_message_released_again_and_again_is_counted_by_the_source() -> None:
    assert run(delivery_counts_when_released(4)) == [1, 2, 3, 4]


def test_a_quorum_queue_counts_every_delivery() -> None:
    assert run(delivery_counts_when_released(3, **{"x-queue-type": "quorum"})) == [1, 2, 3]


def test_unacknowledged_messages_reach_a_new_source_after_the_old_one_closed() -> None:
    async def scenario() -> tuple[list[bytes], list[SourceMessage]]:
        async with a_queue() as (name, channel):
            await send(channel, name, b"survivor")
            mapping = spec(name)
            async with opened(mapping) as old:
                taken = await old.receive(10, 5)
            async with opened(mapping) as new:
                again = await new.receive(10, 5)
                await new.ack(again)
            return bodies(taken), again

    taken, again = run(scenario())
    assert taken == [b"survivor"]
    assert bodies(again) == [b"survivor"]
    assert again[0].record["redelivered"] is True


def test_a_closed_source_can_be_opened_again() -> None:
    async def scenario() -> list[bytes]:
        async with a_queue() as (name, channel):
            source = RABBITMQ.source(spec(name))
            await source.open()
            await source.close()
            await send(channel, name, b"again")
            await source.open()
            try:
                messages = await source.receive(10, 5)
                await source.ack(messages)
                return bodies(messages)
            finally:
                await source.close()

    assert run(scenario()) == [b"again"]


def test_lag_counts_the_messages_waiting() -> None:
    async def scenario() -> int | None:
        async with a_queue() as (name, channel):
            await send(channel, name, b"1", b"2", b"3")
            async with opened(spec(name, batch_size=1)) as source:
                await asyncio.sleep(0.3)
                return await source.lag()  # one is prefetched by the consumer, not waiting

    assert run(scenario()) == 2


def test_a_missing_queue_is_unavailable() -> None:
    async def scenario() -> None:
        async with opened(spec(f"missing-{uuid.uuid4().hex[:8]}")):
            pass

    with pytest.raises(SourceUnavailable, match="missing-"):
        run(scenario())


def test_a_queue_deleted_under_the_source_makes_it_unavailable() -> None:
    async def scenario() -> None:
        async with a_queue() as (name, channel), opened(spec(name)) as source:
            await channel.queue_delete(name)
            await source.receive(10, 5)

    with pytest.raises(SourceUnavailable, match="cancelled the consumer"):
        run(scenario())


def test_an_unreachable_broker_is_unavailable() -> None:
    async def scenario() -> None:
        async with opened(spec("q", endpoint="amqp://guest:guest@127.0.0.1:1/")):
            pass

    with pytest.raises(SourceUnavailable):
        run(scenario())


def test_the_virtual_host_is_the_urls_unless_the_mapping_names_one() -> None:
    from_url = RABBITMQ.source(spec("q", endpoint="amqp://guest:guest@127.0.0.1:5672/orders"))
    assert from_url.virtual_host == "orders"
    named = RABBITMQ.source(
        spec(
            "q",
            endpoint="amqp://guest:guest@127.0.0.1:5672/orders",
            source_access_configurations=(("VIRTUAL_HOST", "/"),),
        )
    )
    assert named.virtual_host == "/"

    async def scenario() -> dict[str, Any]:
        # The URL names a virtual host that does not exist; the mapping's VIRTUAL_HOST "/" wins.
        async with a_queue() as (name, channel):
            await send(channel, name, b"x")
            mapping = spec(
                name,
                endpoint="amqp://guest:guest@127.0.0.1:5672/no-such-vhost",
                source_access_configurations=(("VIRTUAL_HOST", "/"),),
            )
            async with opened(mapping) as source:
                messages = await source.receive(10, 5)
                await source.ack(messages)
                return source.event(messages)

    event = run(scenario())
    (queue_key,) = event["rmqMessagesByQueue"]
    assert queue_key.endswith("::/")


def test_publish_sends_the_body_with_attributes_as_headers() -> None:
    async def scenario() -> aio_pika.abc.AbstractIncomingMessage | None:
        async with a_queue() as (name, channel):
            attributes = {"RequestID": "r-1", "ErrorCode": "200", "ErrorMessage": "boom"}
            await RABBITMQ.publish(f"{BROKER_ARN}/{name}", BROKER, b'{"failed": true}', attributes)
            queue = await channel.get_queue(name)
            message = await queue.get(timeout=5, fail=False)
            if message is not None:
                await message.ack()
            return message

    message = run(scenario())
    assert message is not None
    assert message.body == b'{"failed": true}'
    headers = {
        key: value.decode() if isinstance(value, bytes) else value for key, value in message.headers.items()
    }
    assert headers == {"RequestID": "r-1", "ErrorCode": "200", "ErrorMessage": "boom"}
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


def test_publish_to_a_queue_that_does_not_exist_is_unavailable() -> None:
    with pytest.raises(SourceUnavailable):
        run(RABBITMQ.publish(f"{BROKER_ARN}/missing-{uuid.uuid4().hex[:8]}", BROKER, b"x"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"queues": ()}, "Queues must contain exactly one queue name."),
        ({"queues": ("a", "b")}, "Queues must contain exactly one queue name."),
        (
            {"event_source_arn": "arn:aws:mq:us-east-1:123456789012:configuration:c-1"},
            "Invalid Amazon MQ broker ARN",
        ),
    ],
)
def test_validate_refuses_mappings_amazon_mq_cannot_serve(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterValueException, match=message):
        RABBITMQ.validate(spec("q", **overrides))


async def queue_recovered(endpoint: str, name: str, timeout: float = 30) -> None:
    """Wait until a restarted broker serves queue ``name`` again: a node accepts connections before it
    has finished recovering its durable queues."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = await aio_pika.connect(endpoint)
            async with connection:
                channel = await connection.channel()
                await channel.declare_queue(name, passive=True)
                return
        except aio_pika.exceptions.AMQPError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def test_a_broker_that_dies_is_unavailable_and_unacknowledged_messages_survive_its_restart(
    tmp_path: Path,
) -> None:
    broker = private_rabbitmq(tmp_path).start()
    endpoint = f"amqp://guest:guest@127.0.0.1:{broker.port}/"
    try:
        name = f"lambdad-test-{uuid.uuid4().hex[:12]}"

        async def declare() -> None:
            connection = await aio_pika.connect(endpoint)
            async with connection:
                channel = await connection.channel()
                await channel.declare_queue(name, durable=True)
                await send(channel, name, b"keep me")

        run(declare())
        # A node killed right after a declaration can lose the queue itself (its metadata store is
        # flushed lazily); a clean restart settles the queue and its message before the crash under test.
        broker.stop(signal.SIGTERM)
        broker.start()

        async def before_the_crash() -> list[bytes]:
            await queue_recovered(endpoint, name)
            source = RABBITMQ.source(spec(name, endpoint=endpoint))
            await source.open()
            taken = await source.receive(10, 5)
            broker.stop()
            with pytest.raises(SourceUnavailable):
                await source.receive(10, 5)
            await source.close()
            return bodies(taken)

        taken = run(before_the_crash())
        assert taken == [b"keep me"]
        broker.start()

        async def after_the_restart() -> list[bytes]:
            await queue_recovered(endpoint, name)
            async with opened(spec(name, endpoint=endpoint)) as source:
                again = await source.receive(10, 10)
                await source.ack(again)
                return bodies(again)

        assert run(after_the_restart()) == [b"keep me"]
    finally:
        broker.cleanup()
