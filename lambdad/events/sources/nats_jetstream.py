"""NATS JetStream streams as ordered event sources, delivered in AWS's Kinesis event shape.

A mapping reads ``arn:aws:nats:REGION:ACCOUNT:stream/STREAM`` through a durable pull consumer of its
own (``lambdad-<mapping UUID>``) with explicit acks; the mapping's ``Topics`` may name one subject
filter (``orders.>``). Records look like Kinesis records (``eventSource`` ``aws:kinesis``, the subject
as ``partitionKey``, the stream sequence as ``sequenceNumber``), so a function written for Kinesis
works unchanged; ``eventSourceARN`` keeps the NATS ARN.

Ordering: the consumer never has more than a batch outstanding (``max_ack_pending`` = batch size), a
release is a NAK in sequence order, and JetStream serves NAKed messages before new ones, so a released
record comes back before any later one. Records the poller holds stay held however long the function
runs: the source tells the server they are in progress (``+WPI``) every third of the ack wait. When a
source closed or died holding records, the next one restarts the consumer just after its ack floor, so
they come back at once and before later records (rather than after the ack wait, behind newer ones);
their delivery count then starts again at 1.

Destinations: ``arn:aws:nats:REGION:ACCOUNT:stream/STREAM/SUBJECT`` publishes to SUBJECT (which
STREAM must capture); ``.../stream/STREAM`` publishes to the stream's only subject.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources.base import SourceMessage, SourceSpec, SourceUnavailable
from lambdad.events.sources.filter_views import json_or_text
from lambdad.events.sources.stream_positions import check_starting_position

SERVICE = "nats"
# The longest a dead lambdad's unacknowledged records wait before JetStream delivers them again.
DEFAULT_ACK_WAIT = 30.0
CONNECT_TIMEOUT = 3.0
# Seconds between checks, while nothing arrives, that the consumer still exists.
CONSUMER_CHECK_INTERVAL = 10.0
# Every client-library failure that means the server is gone or not answering.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.UnexpectedEOF,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    asyncio.TimeoutError,
)

_FAILED_FETCH: tuple[type[BaseException], ...] = (*_UNREACHABLE, nats.errors.Error)


def stream_and_subject(arn: str) -> tuple[str, str]:
    """The stream and subject an ``arn:aws:nats:...:stream/STREAM[/SUBJECT]`` names ('' for none)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != SERVICE:
        return "", ""
    kind, _, rest = parts[5].partition("/")
    stream, _, subject = rest.partition("/")
    return (stream, subject) if kind == "stream" else ("", "")


def stream_name(arn: str) -> str:
    """The stream an ARN names, or '' when it names none."""
    return stream_and_subject(arn)[0]


def consumer_name(uuid: str) -> str:
    """The durable consumer of one mapping."""
    return f"lambdad-{uuid}"


async def connect(endpoint: str) -> Client:
    """A connection that fails fast and never reconnects behind the source's back (the poller reopens
    the source instead, after backoff)."""

    async def quiet(_: Exception) -> None:
        """The client reports errors here as well as raising them; raising is enough."""

    try:
        return await nats.connect(
            endpoint,
            connect_timeout=CONNECT_TIMEOUT,
            allow_reconnect=False,
            # 0 would mean "retry forever" on the first connection; 1 gives up after two tries.
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=quiet,
        )
    except _UNREACHABLE as error:
        raise SourceUnavailable(f"NATS at {endpoint} cannot be reached: {error}") from error


class NatsJetStreamSource:
    """One mapping's durable pull consumer on a JetStream stream."""

    ordered = True
    # Where an on-failure record names the batch, as AWS's records for Kinesis do.
    batch_info_key = "KinesisBatchInfo"

    def __init__(self, spec: SourceSpec, ack_wait: float = DEFAULT_ACK_WAIT) -> None:
        self.spec = spec
        self.stream = stream_name(spec.event_source_arn)
        self.consumer = consumer_name(spec.uuid)
        self.ack_wait = ack_wait
        self._connection: Client | None = None
        self._jetstream: JetStreamContext | None = None
        self._subscription: JetStreamContext.PullSubscription | None = None
        # Delivered and neither acknowledged nor released, by stream sequence.
        self._held: dict[int, Msg] = {}
        self._keepalive: asyncio.Task[None] | None = None
        self._checked_at = 0.0

    async def open(self) -> None:
        await self.close()
        self._connection = await connect(self.spec.endpoint)
        self._jetstream = self._connection.jetstream(timeout=CONNECT_TIMEOUT)
        try:
            await self._ensure_consumer(self._jetstream)
            self._subscription = await self._jetstream.pull_subscribe_bind(
                durable=self.consumer, stream=self.stream
            )
        except nats.js.errors.NotFoundError as error:
            await self.close()
            raise SourceUnavailable(f"NATS stream {self.stream!r} does not exist") from error
        except _UNREACHABLE as error:
            await self.close()
            raise SourceUnavailable(f"NATS at {self.spec.endpoint} is not answering: {error}") from error
        self._keepalive = asyncio.create_task(self._keep_held_alive())

    async def _ensure_consumer(self, jetstream: JetStreamContext) -> None:
        """Create the durable consumer at the starting position, or bring an existing one's limits up
        to date (its position stays where it is)."""
        try:
            current = await jetstream.consumer_info(self.stream, self.consumer)
        except nats.js.errors.NotFoundError:
            await jetstream.add_consumer(self.stream, self._consumer_config(self._starting_position()))
            return
        wanted_filter = self.spec.topics[0] if self.spec.topics else None
        if current.num_ack_pending or (current.config.filter_subject or None) != wanted_filter:
            # A source that closed or died holding records left them pending until their ack wait, and
            # JetStream would deliver later records first. Restart the consumer just after its ack
            # floor, so they come back at once and in order (their delivery count starts again); the
            # same for a new subject filter (JetStream cannot change a consumer's filter in place).
            floor = current.ack_floor.stream_seq if current.ack_floor else 0
            await jetstream.delete_consumer(self.stream, self.consumer)
            start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": floor + 1}
            await jetstream.add_consumer(self.stream, self._consumer_config(start))
            return
        config = current.config
        if config.ack_wait != self.ack_wait or config.max_ack_pending != self.spec.batch_size:
            await jetstream.add_consumer(
                self.stream, config, ack_wait=self.ack_wait, max_ack_pending=self.spec.batch_size
            )

    def _starting_position(self) -> dict[str, Any]:
        position = self.spec.starting_position or "TRIM_HORIZON"
        if position == "LATEST":
            return {"deliver_policy": DeliverPolicy.NEW}
        if position == "AT_TIMESTAMP":
            timestamp = datetime.fromtimestamp(self.spec.starting_position_timestamp or 0, UTC)
            return {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": timestamp}
        return {"deliver_policy": DeliverPolicy.ALL}

    def _consumer_config(self, start: dict[str, Any]) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.consumer,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_ack_pending=self.spec.batch_size,
            filter_subject=self.spec.topics[0] if self.spec.topics else None,
            **start,
        )

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        subscription = self._require_subscription()
        try:
            messages = await subscription.fetch(max(1, max_messages), timeout=max(max_wait, 0.05))
        except (TimeoutError, nats.errors.TimeoutError):
            if self._connection is None or self._connection.is_closed:
                raise SourceUnavailable(f"NATS at {self.spec.endpoint} closed the connection") from None
            await self._check_consumer()
            return []
        except _FAILED_FETCH as error:
            # Also a consumer or stream deleted under the source: reopening says which.
            raise SourceUnavailable(f"NATS at {self.spec.endpoint}: {error}") from error
        delivered = [self._source_message(message) for message in messages]
        for message in delivered:
            self._held[int(message.item_id)] = message.token
        return sorted(delivered, key=lambda message: int(message.item_id))

    async def _check_consumer(self) -> None:
        """A fetch from a deleted consumer (its stream deleted) just times out: look, now and then."""
        if self._jetstream is None or time.monotonic() - self._checked_at < CONSUMER_CHECK_INTERVAL:
            return
        self._checked_at = time.monotonic()
        try:
            await self._jetstream.consumer_info(self.stream, self.consumer)
        except nats.js.errors.NotFoundError as error:
            raise SourceUnavailable(f"NATS stream {self.stream!r} or its consumer was deleted") from error
        except _UNREACHABLE as error:
            raise SourceUnavailable(f"NATS at {self.spec.endpoint} cannot be reached: {error}") from error

    def _source_message(self, message: Msg) -> SourceMessage:
        metadata = message.metadata
        sequence = metadata.sequence.stream
        arrived = metadata.timestamp.timestamp()
        kinesis: dict[str, Any] = {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": message.subject,
            "sequenceNumber": str(sequence),
            "data": base64.b64encode(message.data).decode("ascii"),
            "approximateArrivalTimestamp": round(arrived, 3),
        }
        record = {
            "kinesis": kinesis,
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"shardId-000000000000:{sequence}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": self.spec.invoke_identity_arn,
            "awsRegion": self.spec.region,
            "eventSourceARN": self.spec.event_source_arn,
        }
        return SourceMessage(
            item_id=str(sequence),
            record=record,
            filter_view={**kinesis, "data": _json_or_text(message.data)},
            delivery_count=metadata.num_delivered,
            sent_at=arrived,
            size=len(message.data),
            token=message,
        )

    async def ack(self, messages: Sequence[SourceMessage]) -> None:
        await self._answer(messages, b"+ACK")

    async def release(self, messages: Sequence[SourceMessage]) -> None:
        # NAKed messages are redelivered in the order the server received the NAKs: sequence order.
        await self._answer(messages, b"-NAK")

    async def _answer(self, messages: Sequence[SourceMessage], answer: bytes) -> None:
        """Acknowledge or NAK messages in sequence order, once the server applied them."""
        ordered = sorted(messages, key=lambda message: int(message.item_id))
        if not ordered:
            return
        connection = self._connection
        if connection is None or connection.is_closed:
            raise SourceUnavailable(f"NATS at {self.spec.endpoint}: the source is not open")
        try:
            await _send_in_order(connection, [message.token for message in ordered], answer)
        except _UNREACHABLE as error:
            raise SourceUnavailable(f"NATS at {self.spec.endpoint} cannot be reached: {error}") from error
        for message in ordered:
            self._held.pop(int(message.item_id), None)

    async def _keep_held_alive(self) -> None:
        """Tell the server held messages are in progress, so a long invocation keeps its batch."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            for message in list(self._held.values()):
                with contextlib.suppress(Exception):
                    await message.in_progress()

    def event(self, messages: Sequence[SourceMessage]) -> dict[str, Any]:
        return {"Records": [message.record for message in messages]}

    async def lag(self) -> int | None:
        if self._jetstream is None:
            return None
        try:
            info = await self._jetstream.consumer_info(self.stream, self.consumer)
        except _UNREACHABLE as error:
            raise SourceUnavailable(f"NATS at {self.spec.endpoint} cannot be reached: {error}") from error
        return int(info.num_pending or 0)

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
            self._keepalive = None
        # Held records stay pending in JetStream; the next source reclaims them (see _ensure_consumer).
        self._held.clear()
        connection, self._connection = self._connection, None
        self._jetstream = self._subscription = None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await connection.close()

    def _require_subscription(self) -> JetStreamContext.PullSubscription:
        if self._subscription is None or self._connection is None or self._connection.is_closed:
            raise SourceUnavailable(f"NATS at {self.spec.endpoint}: the source is not open")
        return self._subscription


class NatsJetStreamKind:
    """JetStream streams (``arn:aws:nats:REGION:ACCOUNT:stream/STREAM``)."""

    service = SERVICE
    ordered = True

    def __init__(self, ack_wait: float = DEFAULT_ACK_WAIT) -> None:
        self.ack_wait = ack_wait

    def validate(self, spec: SourceSpec) -> None:
        if not stream_name(spec.event_source_arn):
            raise InvalidParameterValueException(
                f"Invalid NATS stream ARN {spec.event_source_arn!r}: expected "
                "arn:aws:nats:REGION:ACCOUNT:stream/STREAM"
            )
        check_starting_position(spec, "a NATS stream")
        if len(spec.topics) > 1:
            raise InvalidParameterValueException(
                "Topics may name at most one NATS subject filter for a NATS stream."
            )

    def source(self, spec: SourceSpec) -> NatsJetStreamSource:
        return NatsJetStreamSource(spec, ack_wait=self.ack_wait)

    async def publish(
        self, arn: str, endpoint: str, body: bytes, attributes: Mapping[str, str] | None = None
    ) -> None:
        stream, subject = stream_and_subject(arn)
        if not stream:
            raise ValueError(f"not a NATS stream ARN: {arn!r}")
        connection = await connect(endpoint)
        try:
            jetstream = connection.jetstream(timeout=CONNECT_TIMEOUT)
            if not subject:
                subject = await _only_subject(jetstream, stream)
            await jetstream.publish(subject, body, stream=stream, headers=dict(attributes or {}) or None)
        except nats.js.errors.NotFoundError as error:
            raise SourceUnavailable(f"NATS stream {stream!r} does not exist") from error
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError) as error:
            raise SourceUnavailable(f"no NATS stream captures subject {subject!r}") from error
        except _UNREACHABLE as error:
            raise SourceUnavailable(f"NATS at {endpoint} cannot be reached: {error}") from error
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    async def remove(self, spec: SourceSpec) -> None:
        """Delete the mapping's durable consumer (the mapping was deleted)."""
        connection = await connect(spec.endpoint)
        try:
            jetstream = connection.jetstream(timeout=CONNECT_TIMEOUT)
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await jetstream.delete_consumer(stream_name(spec.event_source_arn), consumer_name(spec.uuid))
        except _UNREACHABLE as error:
            raise SourceUnavailable(f"NATS at {spec.endpoint} cannot be reached: {error}") from error
        finally:
            with contextlib.suppress(Exception):
                await connection.close()


async def _send_in_order(connection: Client, messages: Sequence[Msg], answer: bytes) -> None:
    """Answer each message in turn, waiting for the server to confirm the last answer (it applies a
    consumer's acknowledgements in order, so all of them are applied by then)."""
    if not messages:
        return
    for message in messages[:-1]:
        await connection.publish(message.reply, answer)
    await connection.request(messages[-1].reply, answer, timeout=CONNECT_TIMEOUT)


async def _only_subject(jetstream: JetStreamContext, stream: str) -> str:
    """The subject a stream-only destination ARN publishes to: the stream's one literal subject."""
    info = await jetstream.stream_info(stream)
    subjects = info.config.subjects or []
    if len(subjects) != 1 or any(token in subjects[0] for token in ("*", ">")):
        raise ValueError(
            f"NATS stream {stream!r} has subjects {subjects}: name one in the destination ARN "
            f"(arn:aws:nats:REGION:ACCOUNT:stream/{stream}/SUBJECT)"
        )
    return subjects[0]


def _json_or_text(data: bytes) -> Any:
    """The payload as filters see it: JSON where it parses, else text (or base64 when not UTF-8)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii")
    return json_or_text(text)
