"""RabbitMQ queues, as Amazon MQ for RabbitMQ brokers are (``arn:aws:mq:REGION:ACCOUNT:broker:NAME:b-ID``).

The broker is ``Settings.event_sources["mq"]`` (an ``amqp://user:password@host:port/vhost`` URL); the
mapping's ``Queues`` names its one queue. The virtual host is the URL's, unless the mapping names one
with a ``VIRTUAL_HOST`` SourceAccessConfiguration, as on AWS.

A source is one AMQP connection (named ``lambdad-esm-<UUID>`` so operators can tell it apart) with one
consumer whose prefetch is the batch size. Acknowledging is ``basic.ack``; releasing is ``basic.nack``
with requeue, after a short pause that grows with the delivery count (RabbitMQ redelivers at once).
Whatever is neither when the connection drops goes back to the queue (AMQP's own rule). Quorum queues
count deliveries; for classic queues the source counts the requeues it sees itself.

Destinations and dead-letter queues name a queue as the broker ARN followed by ``/QUEUE``
(``arn:aws:mq:us-east-1:123456789012:broker:main:b-1/failures``); AWS has no ARN for a RabbitMQ queue.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import aio_pika.abc
import aio_pika.exceptions
import aiormq.exceptions

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources.base import SourceMessage, SourceSpec, SourceUnavailable
from lambdad.events.sources.filter_views import json_or_text
from lambdad.events.sources.redelivery import release_delay

CONNECT_TIMEOUT = 5.0
# What the AMQP libraries raise when the broker is gone, refuses us, or closed our channel.
BROKER_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,  # a channel or connection that closed under us
)


@dataclass(frozen=True)
class BrokerArn:
    """``arn:aws:mq:REGION:ACCOUNT:broker:NAME:ID``, optionally followed by ``/QUEUE``."""

    region: str
    account: str
    name: str
    broker_id: str
    queue: str = ""

    @classmethod
    def parse(cls, arn: str) -> BrokerArn:
        broker, _, queue = arn.partition("/")
        parts = broker.split(":")
        if len(parts) != 8 or parts[:3] != ["arn", "aws", "mq"] or parts[5] != "broker" or not all(parts[3:]):
            raise InvalidParameterValueException(f"Invalid Amazon MQ broker ARN: {arn}")
        return cls(region=parts[3], account=parts[4], name=parts[6], broker_id=parts[7], queue=queue)


def virtual_host_of(endpoint: str) -> str:
    """The virtual host an AMQP URL names ('/' when its path is empty or '/')."""
    path = urlsplit(endpoint).path
    return path[1:].replace("%2F", "/").replace("%2f", "/") if len(path) > 1 else "/"


def with_virtual_host(endpoint: str, virtual_host: str) -> str:
    """``endpoint`` with its path set to ``virtual_host``."""
    url = urlsplit(endpoint)
    return urlunsplit((url.scheme, url.netloc, "/" + virtual_host.replace("/", "%2F"), url.query, ""))


def mapping_virtual_host(spec: SourceSpec) -> str:
    """The mapping's VIRTUAL_HOST SourceAccessConfiguration, else the endpoint's virtual host."""
    for kind, uri in spec.source_access_configurations:
        if kind == "VIRTUAL_HOST":
            return uri
    return virtual_host_of(spec.endpoint)


def header_value(value: Any) -> Any:
    """An AMQP header as AWS's RabbitMQ event shows it: strings as their UTF-8 ``bytes``."""
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes | bytearray):
        return {"bytes": list(value)}
    if isinstance(value, Mapping):
        return {key: header_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [header_value(item) for item in value]
    if isinstance(value, datetime):
        return aws_timestamp(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def aws_timestamp(moment: datetime) -> str:
    """A time as AWS's RabbitMQ event writes it: ``Jan 1, 1970, 12:33:41 AM`` (UTC)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    hour = moment.hour % 12 or 12
    return f"{moment:%b} {moment.day}, {moment.year}, {hour}:{moment:%M:%S} {moment:%p}"


def basic_properties(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, Any]:
    """The message's AMQP properties under AWS's ``basicProperties`` names."""
    return {
        "contentType": message.content_type,
        "contentEncoding": message.content_encoding,
        "headers": header_value(dict(message.headers)) if message.headers else None,
        "deliveryMode": int(message.delivery_mode) if message.delivery_mode else None,
        "priority": message.priority,
        "correlationId": message.correlation_id,
        "replyTo": message.reply_to,
        "expiration": expiration_ms(message.expiration),
        "messageId": message.message_id,
        "timestamp": aws_timestamp(message.timestamp) if message.timestamp else None,
        "type": message.type,
        "userId": message.user_id,
        "appId": message.app_id,
        "clusterId": message.cluster_id,
        "bodySize": len(message.body),
    }


def expiration_ms(expiration: Any) -> str | None:
    """AMQP's ``expiration`` property as sent: milliseconds, as a string (aio-pika decodes it)."""
    if expiration is None:
        return None
    seconds = expiration.total_seconds() if isinstance(expiration, timedelta) else float(expiration)
    return str(round(seconds * 1000))


def broker_delivery_count(message: aio_pika.abc.AbstractIncomingMessage) -> int | None:
    """Times delivered, where the broker counts: quorum queues put earlier deliveries in
    ``x-delivery-count``; classic queues only say whether it was delivered before (None)."""
    earlier = (message.headers or {}).get("x-delivery-count")
    return earlier + 1 if isinstance(earlier, int) else None


def fingerprint(message: aio_pika.abc.AbstractIncomingMessage) -> str:
    """What tells a requeued message from others when the broker does not count deliveries: its
    message id, else a digest of its body and properties."""
    if message.message_id:
        return f"id:{message.message_id}"
    digest = hashlib.sha256(message.body)
    digest.update(repr((message.correlation_id, message.timestamp, message.type, message.app_id)).encode())
    return f"sha256:{digest.hexdigest()}"


@dataclass(frozen=True)
class Delivery:
    """What settling one message needs: the delivery, and its key in the source's delivery counts."""

    message: aio_pika.abc.AbstractIncomingMessage
    fingerprint: str


class RabbitMqSource:
    """One mapping's consumer on one RabbitMQ queue."""

    ordered = False

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.arn = BrokerArn.parse(spec.event_source_arn)
        self.queue_name = spec.queues[0]
        self.virtual_host = mapping_virtual_host(spec)
        self.connection_name = f"lambdad-esm-{spec.uuid}"
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        # Deliveries from the consumer; None says the connection or channel closed.
        self._deliveries: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage | None] = asyncio.Queue()
        self._lost: str | None = None
        # Deliveries seen per message fingerprint, for classic queues (the broker does not count).
        self._counts: dict[str, int] = {}

    async def open(self) -> None:
        # A source may be opened again after it closed or lost its connection.
        self._deliveries = asyncio.Queue()
        self._lost = None
        try:
            self._connection = await aio_pika.connect(
                with_virtual_host(self.spec.endpoint, self.virtual_host),
                timeout=CONNECT_TIMEOUT,
                client_properties={"connection_name": self.connection_name},
            )
            self._connection.close_callbacks.add(self._on_close)
            self._channel = await self._connection.channel()
            self._channel.close_callbacks.add(self._on_close)
            await self._channel.set_qos(prefetch_count=self.spec.batch_size)
            queue = await self._channel.get_queue(self.queue_name, ensure=True)
            # The broker cancels the consumer when the queue is deleted; the channel stays open.
            underlay = await self._channel.get_underlay_channel()
            underlay.on_consumer_cancel_callbacks.add(self._on_cancel)
            await queue.consume(self._deliveries.put, no_ack=False)
        except BROKER_ERRORS as error:
            await self.close()
            raise SourceUnavailable(
                f"Cannot consume queue {self.queue_name!r} in virtual host {self.virtual_host!r}: {error!r}"
            ) from error

    def _on_close(self, _sender: Any, error: BaseException | None) -> None:
        if self._lost is None:
            self._lost = f"The connection to the broker closed: {error!r}"
        self._deliveries.put_nowait(None)

    def _on_cancel(self, _frame: Any) -> None:
        if self._lost is None:
            self._lost = f"The broker cancelled the consumer of queue {self.queue_name!r} (was it deleted?)"
        self._deliveries.put_nowait(None)

    def _check_open(self) -> None:
        if self._lost is not None:
            raise SourceUnavailable(self._lost)
        if self._channel is None:
            raise SourceUnavailable("the RabbitMQ source is not open")

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        self._check_open()
        try:
            first = self._deliveries.get_nowait()
        except asyncio.QueueEmpty:
            try:
                first = await asyncio.wait_for(self._deliveries.get(), max_wait)
            except TimeoutError:
                return []
        deliveries = [first]
        while len(deliveries) < max_messages and not self._deliveries.empty():
            deliveries.append(self._deliveries.get_nowait())
        if any(delivery is None for delivery in deliveries):
            # Whatever came before the loss is unacknowledgeable now: the broker requeued it.
            self._check_open()
        return [self._message(delivery) for delivery in deliveries if delivery is not None]

    def _count(self, delivery: aio_pika.abc.AbstractIncomingMessage, key: str) -> int:
        """Times delivered: the broker's count (quorum queues), else this source's own count of the
        requeues it saw (classic queues; a new source starts again at 2 for a redelivered message)."""
        counted = broker_delivery_count(delivery)
        if counted is None:
            counted = self._counts.get(key, 1) + 1 if delivery.redelivered else 1
        self._counts[key] = counted
        return counted

    def _message(self, delivery: aio_pika.abc.AbstractIncomingMessage) -> SourceMessage:
        key = fingerprint(delivery)
        record = {
            "basicProperties": basic_properties(delivery),
            "redelivered": bool(delivery.redelivered),
            "data": base64.b64encode(delivery.body).decode(),
        }
        sent = delivery.timestamp
        return SourceMessage(
            # Unique for as long as the source's channel lives (AWS has no partial batch response
            # for Amazon MQ, so nothing outside lambdad sees it).
            item_id=str(delivery.delivery_tag),
            record=record,
            filter_view={**record, "data": json_or_text(delivery.body)},
            delivery_count=self._count(delivery, key),
            # Without a timestamp property, when it reached lambdad.
            sent_at=sent.timestamp() if sent else time.time(),
            size=len(delivery.body),
            token=Delivery(delivery, key),
        )

    async def ack(self, messages: Sequence[SourceMessage]) -> None:
        self._check_open()
        try:
            for message in messages:
                await message.token.message.ack()
                self._counts.pop(message.token.fingerprint, None)
        except BROKER_ERRORS as error:
            raise SourceUnavailable(f"Cannot acknowledge: {error!r}") from error

    async def release(self, messages: Sequence[SourceMessage]) -> None:
        self._check_open()
        await asyncio.sleep(release_delay(max((m.delivery_count for m in messages), default=1)))
        try:
            for message in messages:
                await message.token.message.nack(requeue=True)
        except BROKER_ERRORS as error:
            raise SourceUnavailable(f"Cannot release: {error!r}") from error

    def event(self, messages: Sequence[SourceMessage]) -> dict[str, Any]:
        return {
            "eventSource": "aws:rmq",
            "eventSourceArn": self.spec.event_source_arn,
            "rmqMessagesByQueue": {
                f"{self.queue_name}::{self.virtual_host}": [message.record for message in messages]
            },
        }

    async def lag(self) -> int | None:
        self._check_open()
        assert self._connection is not None
        try:
            # A channel of its own: a passive declare that fails closes the channel it runs on.
            async with self._connection.channel() as channel:
                queue = await channel.declare_queue(self.queue_name, passive=True)
                count = queue.declaration_result.message_count
        except BROKER_ERRORS as error:
            raise SourceUnavailable(f"Cannot inspect queue {self.queue_name!r}: {error!r}") from error
        return int(count) if count is not None else None

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if self._lost is None:
            self._lost = "the RabbitMQ source is closed"
        if connection is not None and not connection.is_closed:
            # Already gone or not: the broker requeues what was unacknowledged either way.
            with contextlib.suppress(*BROKER_ERRORS):
                await connection.close()


class RabbitMqKind:
    """Amazon MQ for RabbitMQ brokers, served by any RabbitMQ."""

    service = "mq"

    def validate(self, spec: SourceSpec) -> None:
        BrokerArn.parse(spec.event_source_arn)
        if len(spec.queues) != 1:
            raise InvalidParameterValueException("Queues must contain exactly one queue name.")
        if spec.starting_position is not None:
            raise InvalidParameterValueException("StartingPosition is not valid for Amazon MQ event sources.")

    def source(self, spec: SourceSpec) -> RabbitMqSource:
        return RabbitMqSource(spec)

    async def publish(
        self, arn: str, endpoint: str, body: bytes, attributes: Mapping[str, str] | None = None
    ) -> None:
        queue = BrokerArn.parse(arn).queue
        if not queue:
            raise InvalidParameterValueException(f"The ARN names no queue (BROKER_ARN/QUEUE): {arn}")
        try:
            connection = await aio_pika.connect(endpoint, timeout=CONNECT_TIMEOUT)
            async with connection:
                # Confirms plus mandatory: the call returns once the broker stored the message, and
                # fails if no queue took it.
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        body,
                        headers=dict(attributes or {}),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        timestamp=datetime.now(UTC),
                    ),
                    routing_key=queue,
                    mandatory=True,
                )
        except aio_pika.exceptions.DeliveryError as error:
            raise SourceUnavailable(f"The broker took no message for queue {queue!r}: {error!r}") from error
        except BROKER_ERRORS as error:
            raise SourceUnavailable(f"Cannot publish to queue {queue!r}: {error!r}") from error


RABBITMQ = RabbitMqKind()
