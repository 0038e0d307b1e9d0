"""MQTT topics (``arn:aws:mqtt:REGION:ACCOUNT:topic/FILTER``), the way an AWS IoT rule feeds a function.

The broker is ``Settings.event_sources["mqtt"]`` (``mqtt://[user:password@]host:port``, or ``mqtts://``
for TLS). The filter after ``topic/`` may use MQTT's wildcards (``sensors/+/temperature``,
``sensors/#``). As with an IoT rule (``SELECT * FROM 'FILTER'``), the function receives the message
itself: a JSON object payload is the event; any other payload arrives as ``{"data": "<base64>"}``,
what IoT's documented ``SELECT encode(*, 'base64') AS data`` gives for binary payloads.

Each mapping is one MQTT 5 session (client id ``lambdad-esm-<UUID>``, clean start off, a session that
outlives disconnections for ``SESSION_EXPIRY`` seconds) subscribed at QoS 1, so messages published
while lambdad is down or disconnected are delivered when it comes back. The client acknowledges
(PUBACK) only when the poller acknowledges: paho-mqtt's manual acknowledgements (aiomqtt does not
expose them, so this module drives paho directly, with paho's network thread).

Batches: one message per event, as an IoT rule invokes once per message; ``receive`` returns at most
one message. BatchSize is the MQTT 5 Receive Maximum, how many unacknowledged messages the broker
lets the mapping hold at once (so the poller may work on that many at a time).

MQTT has no negative acknowledgement: the broker sends an unacknowledged message again only when the
session reconnects. Releasing therefore reconnects the session (after a pause that grows with the
delivery count) once no other delivered message is still unacknowledged; the broker then sends every
unacknowledged message again (with DUP set). MQTT counts no deliveries: the source counts what it
released; a new source sees a redelivered message as its second delivery.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources.base import SourceMessage, SourceSpec, SourceUnavailable
from lambdad.events.sources.filter_views import json_or_text
from lambdad.events.sources.redelivery import release_delay

CONNECT_TIMEOUT = 5.0
# How long the broker keeps a mapping's session (its subscription and undelivered messages) while
# lambdad is away: a week.
SESSION_EXPIRY = 7 * 24 * 3600
# MQTT 5 Receive Maximum is 1..65535.
RECEIVE_MAXIMUM_LIMIT = 65535


@dataclass(frozen=True)
class TopicArn:
    """``arn:aws:mqtt:REGION:ACCOUNT:topic/FILTER``."""

    region: str
    account: str
    topic: str

    @classmethod
    def parse(cls, arn: str) -> TopicArn:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[:3] != ["arn", "aws", "mqtt"] or not parts[5].startswith("topic/"):
            raise InvalidParameterValueException(f"Invalid MQTT topic ARN: {arn}")
        topic = parts[5].removeprefix("topic/")
        if not valid_filter(topic):
            raise InvalidParameterValueException(f"Invalid MQTT topic filter: {topic}")
        return cls(region=parts[3], account=parts[4], topic=topic)

    @property
    def has_wildcards(self) -> bool:
        return any(level in ("+", "#") for level in self.topic.split("/"))


def valid_filter(topic: str) -> bool:
    """MQTT's rules: ``+`` fills a whole level, ``#`` only the whole last level."""
    levels = topic.split("/")
    if not topic or "\0" in topic:
        return False
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def event_for(payload: bytes) -> dict[str, Any]:
    """What an IoT rule hands the function for ``payload``: the JSON object, else base64 ``data``."""
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict):
        return document
    return {"data": base64.b64encode(payload).decode()}


def new_client(client_id: str, endpoint: str) -> tuple[paho.Client, str, int]:
    """A paho MQTT 5 client for ``endpoint`` (not connected), and the host and port to connect to."""
    url = urlsplit(endpoint)
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        reconnect_on_failure=False,  # the poller reopens, with backoff
        manual_ack=True,
    )
    client.connect_timeout = CONNECT_TIMEOUT
    if url.username:
        client.username_pw_set(url.username, url.password)
    if url.scheme == "mqtts":
        client.tls_set_context(ssl.create_default_context())
    return client, url.hostname or "127.0.0.1", url.port or (8883 if url.scheme == "mqtts" else 1883)


@dataclass
class Session:
    """One connection of a mapping's MQTT session; a reconnect makes a new one."""

    generation: int
    client: paho.Client
    connected: asyncio.Future[ReasonCode] = field(default_factory=asyncio.Future)
    subscribed: asyncio.Future[list[ReasonCode]] = field(default_factory=asyncio.Future)


@dataclass(frozen=True)
class Delivery:
    """What acknowledging one message needs: its connection, packet id and QoS."""

    generation: int
    mid: int
    qos: int


class MqttSource:
    """One mapping's persistent MQTT session subscribed to its topic filter."""

    ordered = False

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.arn = TopicArn.parse(spec.event_source_arn)
        self.client_id = f"lambdad-esm-{spec.uuid}"
        self._session: Session | None = None
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        # Messages from the network thread; None says the connection is gone.
        self._incoming: asyncio.Queue[paho.MQTTMessage | None] = asyncio.Queue()
        self._lost: str | None = "the MQTT source is not open"
        self._handed_out = 0  # numbers the messages, for item ids (QoS 0 messages have no packet id)
        # QoS 1 messages handed out, not yet acknowledged or released (this connection's packet ids).
        self._outstanding: set[int] = set()
        self._released: dict[int, int] = {}  # packet id -> deliveries so far, for the count
        self._redeliver = False
        # Set while releasing reconnects the session; receive waits for it rather than fail.
        self._reconnected: asyncio.Future[None] | None = None

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._connect()

    async def _connect(self) -> None:
        assert self._loop is not None
        self._generation += 1
        client, host, port = new_client(self.client_id, self.spec.endpoint)
        session = Session(self._generation, client)
        self._session = session
        while not self._incoming.empty():  # the broker sends all of these again
            self._incoming.get_nowait()
        self._outstanding.clear()
        self._wire(session)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho: no hints
        properties.SessionExpiryInterval = SESSION_EXPIRY
        properties.ReceiveMaximum = max(1, min(self.spec.batch_size, RECEIVE_MAXIMUM_LIMIT))
        try:
            await asyncio.to_thread(
                client.connect, host, port, keepalive=30, clean_start=False, properties=properties
            )
            client.loop_start()
            code = await asyncio.wait_for(session.connected, CONNECT_TIMEOUT)
            if code.is_failure:
                raise SourceUnavailable(f"The MQTT broker refused the connection: {code}")
            # Like an IoT rule, see only what is published from now on: no retained messages.
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
            result, _ = client.subscribe(self.arn.topic, options=options)
            if result != paho.MQTT_ERR_SUCCESS:
                raise SourceUnavailable(
                    f"Cannot subscribe to {self.arn.topic!r}: {paho.error_string(result)}"
                )
            granted = await asyncio.wait_for(session.subscribed, CONNECT_TIMEOUT)
            if any(code.is_failure or code.value < 1 for code in granted):
                raise SourceUnavailable(f"The MQTT broker refused a QoS 1 subscription to {self.arn.topic!r}")
        except (OSError, TimeoutError) as error:
            await self._disconnect(f"Cannot reach the MQTT broker at {host}:{port}: {error!r}")
            raise SourceUnavailable(self._lost) from error
        except SourceUnavailable as error:
            await self._disconnect(str(error))
            raise
        self._lost = None

    def _wire(self, session: Session) -> None:
        """Hand the network thread's callbacks over to the event loop."""
        loop = self._loop
        assert loop is not None

        def settle(future: asyncio.Future[Any], value: Any) -> None:
            if not future.done():
                future.set_result(value)

        def on_connect(_c: Any, _u: Any, _flags: Any, code: ReasonCode, _p: Any) -> None:
            loop.call_soon_threadsafe(settle, session.connected, code)

        def on_subscribe(_c: Any, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
            loop.call_soon_threadsafe(settle, session.subscribed, codes)

        def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
            loop.call_soon_threadsafe(self._arrived, session.generation, message)

        def on_disconnect(_c: Any, _u: Any, _flags: Any, code: ReasonCode, _p: Any) -> None:
            loop.call_soon_threadsafe(self._disconnected, session.generation, str(code))

        session.client.on_connect = on_connect
        session.client.on_subscribe = on_subscribe
        session.client.on_message = on_message
        session.client.on_disconnect = on_disconnect

    def _arrived(self, generation: int, message: paho.MQTTMessage) -> None:
        if generation == self._generation:
            self._incoming.put_nowait(message)

    def _disconnected(self, generation: int, reason: str) -> None:
        if generation == self._generation and self._lost is None:
            self._lost = f"The connection to the MQTT broker closed: {reason}"
            self._incoming.put_nowait(None)

    def _check_open(self) -> Session:
        if self._lost is not None or self._session is None:
            raise SourceUnavailable(self._lost or "the MQTT source is not open")
        return self._session

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        if self._reconnected is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._reconnected), max_wait)
            except TimeoutError:
                return []
        self._check_open()
        try:
            message = self._incoming.get_nowait()
        except asyncio.QueueEmpty:
            try:
                message = await asyncio.wait_for(self._incoming.get(), max_wait)
            except TimeoutError:
                return []
        # The session may have reconnected while this waited: the message is the current one's.
        session = self._check_open()
        if message is None:
            return []
        self._handed_out += 1
        if message.qos > 0:
            self._outstanding.add(message.mid)
        count = self._released.pop(message.mid, 1) + 1 if message.dup else 1
        payload = bytes(message.payload)
        return [
            SourceMessage(
                item_id=f"{session.generation}:{self._handed_out}",
                record=event_for(payload),
                filter_view={"topic": message.topic, "data": json_or_text(payload)},
                delivery_count=count,
                # MQTT carries no send time; this is when the message reached lambdad.
                sent_at=time.time(),
                size=len(payload),
                token=Delivery(session.generation, message.mid, message.qos),
            )
        ]

    def _settle(self, session: Session, message: SourceMessage) -> Delivery | None:
        """The QoS 1 delivery ``message`` stands for on the current connection, now no longer
        outstanding; None for QoS 0 messages (nothing to acknowledge, nothing to send again) and for
        packet ids of an earlier connection (they may name another message now: the old message,
        sent again on reconnecting, is processed again)."""
        delivery: Delivery = message.token
        if delivery.qos == 0 or delivery.generation != session.generation:
            return None
        if delivery.mid not in self._outstanding:
            return None
        self._outstanding.discard(delivery.mid)
        return delivery

    async def _current_session(self) -> Session:
        """The open connection, once a reconnect under way is done."""
        if self._reconnected is not None:
            await asyncio.shield(self._reconnected)
        return self._check_open()

    async def ack(self, messages: Sequence[SourceMessage]) -> None:
        session = await self._current_session()
        for message in messages:
            delivery = self._settle(session, message)
            if delivery is not None:
                session.client.ack(delivery.mid, delivery.qos)
        await self._redeliver_when_idle()

    async def release(self, messages: Sequence[SourceMessage]) -> None:
        await asyncio.sleep(release_delay(max((m.delivery_count for m in messages), default=1)))
        session = await self._current_session()
        for message in messages:
            delivery = self._settle(session, message)
            if delivery is not None:
                self._released[delivery.mid] = message.delivery_count
                self._redeliver = True
        await self._redeliver_when_idle()

    async def _redeliver_when_idle(self) -> None:
        """Reconnect for the broker to send released messages again, once nothing else is being
        processed (messages received but not yet handed out come again as well)."""
        if not self._redeliver or self._outstanding or self._reconnected is not None:
            return
        assert self._loop is not None
        self._redeliver = False
        self._reconnected = self._loop.create_future()
        try:
            await self._disconnect(None)
            await self._connect()
        finally:
            self._reconnected.set_result(None)
            self._reconnected = None

    def event(self, messages: Sequence[SourceMessage]) -> dict[str, Any]:
        if len(messages) != 1:
            raise ValueError("an MQTT event carries exactly one message")
        return dict(messages[0].record)

    async def lag(self) -> int | None:
        return None  # MQTT brokers do not say how many messages a session has queued

    async def _disconnect(self, reason: str | None) -> None:
        """Drop the connection (the session stays on the broker); ``reason`` is what callers are
        told until the next connect."""
        self._lost = reason
        session, self._session = self._session, None
        if session is None:
            return
        self._generation += 1  # callbacks of the old connection are ignored from now on
        session.client.disconnect()
        await asyncio.to_thread(session.client.loop_stop)  # joins paho's network thread

    async def close(self) -> None:
        await self._disconnect("the MQTT source is closed")


class MqttKind:
    """MQTT brokers (Mosquitto, EMQX, AWS IoT Core...) as event sources and destinations."""

    service = "mqtt"

    def validate(self, spec: SourceSpec) -> None:
        TopicArn.parse(spec.event_source_arn)
        if spec.starting_position is not None:
            raise InvalidParameterValueException("StartingPosition is not valid for MQTT event sources.")
        if spec.maximum_batching_window_in_seconds > 0:
            raise InvalidParameterValueException(
                "MaximumBatchingWindowInSeconds is not supported for MQTT event sources: "
                "each message is one invocation."
            )

    async def remove(self, spec: SourceSpec) -> None:
        """The mapping is deleted: end its session on the broker (see ``end_session``)."""
        await end_session(spec)

    def source(self, spec: SourceSpec) -> MqttSource:
        return MqttSource(spec)

    async def publish(
        self, arn: str, endpoint: str, body: bytes, attributes: Mapping[str, str] | None = None
    ) -> None:
        topic = TopicArn.parse(arn)
        if topic.has_wildcards:
            raise InvalidParameterValueException(f"Cannot publish to a topic filter with wildcards: {arn}")
        await asyncio.to_thread(publish_blocking, topic.topic, endpoint, body, attributes or {})


async def end_session(spec: SourceSpec) -> None:
    """End a mapping's persistent session on its broker (subscription and queued messages), for when
    the mapping is deleted; otherwise the broker keeps it for ``SESSION_EXPIRY``."""

    def end() -> None:
        client, host, port = new_client(f"lambdad-esm-{spec.uuid}", spec.endpoint)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho: no hints
        properties.SessionExpiryInterval = 0
        client.connect(host, port, keepalive=30, clean_start=True, properties=properties)
        client.loop_start()
        client.disconnect()
        client.loop_stop()

    try:
        await asyncio.to_thread(end)
    except OSError as error:
        raise SourceUnavailable(f"Cannot reach the MQTT broker to end the session: {error!r}") from error


def publish_blocking(topic: str, endpoint: str, body: bytes, attributes: Mapping[str, str]) -> None:
    """Publish at QoS 1 and return once the broker acknowledged (attributes as user properties)."""
    client, host, port = new_client("", endpoint)
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho: no hints
    properties.UserProperty = list(attributes.items())
    try:
        client.connect(host, port, keepalive=30)
        client.loop_start()
        try:
            sent = client.publish(topic, body, qos=1, properties=properties)
            sent.wait_for_publish(CONNECT_TIMEOUT)
            if not sent.is_published():
                raise SourceUnavailable(f"The MQTT broker did not acknowledge a message to {topic!r}")
        finally:
            client.disconnect()
            client.loop_stop()
    except (OSError, RuntimeError, ValueError) as error:
        raise SourceUnavailable(f"Cannot publish to {topic!r} at {host}:{port}: {error!r}") from error


MQTT = MqttKind()
