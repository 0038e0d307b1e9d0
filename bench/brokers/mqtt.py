"""MQTT (the ``mqtt`` source) for the event-source benchmark: a topic of the bench's own on Mosquitto."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.brokers import Drained, body, drain, mapping_spec
from lambdad.events.sources.mqtt import MQTT, end_session
from lambdad.settings import DEFAULT_EVENT_SOURCES


def _client(endpoint: str) -> paho.Client:
    url = urlsplit(endpoint)
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    return client


PUBLISH_CHUNK = 200
AHEAD = 600


class BrokerBench:
    """A topic of its own on the MQTT broker at ``endpoint`` (topics need no removal)."""

    service = "mqtt"

    def __init__(self, endpoint: str = DEFAULT_EVENT_SOURCES["mqtt"]) -> None:
        self.endpoint = endpoint
        self.topic = f"lambdad-bench/{uuid.uuid4().hex[:12]}"
        self.arn = f"arn:aws:mqtt:us-east-1:123456789012:topic/{self.topic}"

    async def __aenter__(self) -> BrokerBench:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None

    def _publish_blocking(self, n: int, first: int = 0) -> None:
        client = _client(self.endpoint)
        try:
            sent = [client.publish(self.topic, body(i), qos=1) for i in range(first, first + n)]
            for message in sent:
                message.wait_for_publish(30)
        finally:
            client.disconnect()
            client.loop_stop()

    async def publish_many(self, n: int) -> None:
        """Publish ``n`` messages at QoS 1, each acknowledged by the broker."""
        await asyncio.to_thread(self._publish_blocking, n)

    async def raw_rate(self, n: int) -> float:
        """Events/s for ``n`` QoS 1 messages from a paho publisher to a paho QoS 1 subscriber."""
        arrived = threading.Event()
        count = 0

        def on_message(_c: Any, _u: Any, _m: paho.MQTTMessage) -> None:
            nonlocal count
            count += 1
            if count == n:
                arrived.set()

        subscriber = _client(self.endpoint)
        subscriber.on_message = on_message
        subscriber.subscribe(self.topic, qos=1)
        await asyncio.sleep(0.2)  # the subscription is in place
        try:
            started = time.perf_counter()
            await self.publish_many(n)
            if not await asyncio.to_thread(arrived.wait, 120):
                raise TimeoutError(f"only {count} of {n} messages arrived")
            return n / (time.perf_counter() - started)
        finally:
            subscriber.disconnect()
            subscriber.loop_stop()

    async def source_rate(self, n: int, batch_size: int = 100) -> float:
        """Events/s publishing ``n`` messages and consuming them through lambdad's source (one message
        per event, ``batch_size`` in flight). The publisher stays at most ``AHEAD`` messages ahead:
        Mosquitto drops QoS 1 messages beyond ``max_queued_messages`` (1000 by default) per client."""
        spec = mapping_spec(self.arn, self.endpoint, batch_size)
        source = MQTT.source(spec)
        drained = Drained()

        async def paced_publisher() -> None:
            for start in range(0, n, PUBLISH_CHUNK):
                while start - drained.count > AHEAD:
                    await asyncio.sleep(0.005)
                await asyncio.to_thread(self._publish_blocking, min(PUBLISH_CHUNK, n - start), start)

        await source.open()
        try:
            started = time.perf_counter()
            await asyncio.gather(paced_publisher(), drain(source, n, batch_size, drained))
            return n / (time.perf_counter() - started)
        finally:
            await source.close()
            await end_session(spec)
