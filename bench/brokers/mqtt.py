"""MQTT (the ``mqtt`` source) for the event-source benchmark: topics of the bench's own on Mosquitto.

Mosquitto keeps at most ``max_queued_messages`` (1000 by default) QoS 1 messages per client beyond
those in flight and drops the rest, so a run publishing faster than the mapping consumes must stay
under that (``MESSAGES``); ``source_rate`` paces its publisher instead.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.brokers import body, mapping_spec
from lambdad.events.sources.mqtt import MQTT, TopicArn, end_session
from lambdad.settings import DEFAULT_EVENT_SOURCES

ENDPOINT = DEFAULT_EVENT_SOURCES["mqtt"]
MESSAGES = 800
PUBLISH_CHUNK = 200
AHEAD = 600  # most messages the paced publisher runs ahead of the consumer


def _client() -> paho.Client:
    url = urlsplit(ENDPOINT)
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    return client


def new_arn() -> str:
    return f"arn:aws:mqtt:us-east-1:000000000000:topic/lambdad-bench/{uuid.uuid4().hex[:12]}"


def mapping_params(arn: str) -> dict[str, Any]:
    return {"EventSourceArn": arn, "BatchSize": 100}


def remove(arn: str) -> None:
    """Topics need no removal (a mapping's session ends when the mapping is deleted)."""


def publish_many(arn: str, n: int, first: int = 0) -> None:
    """Publish ``n`` messages at QoS 1, each acknowledged by the broker."""
    topic = TopicArn.parse(arn).topic
    client = _client()
    try:
        sent = [client.publish(topic, body(i), qos=1) for i in range(first, first + n)]
        for message in sent:
            message.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def raw_seconds(n: int) -> float:
    """paho alone: ``n`` QoS 1 messages from a publisher to a QoS 1 subscriber."""
    arn = new_arn()
    arrived, count = threading.Event(), 0

    def on_message(_c: Any, _u: Any, _m: paho.MQTTMessage) -> None:
        nonlocal count
        count += 1
        if count == n:
            arrived.set()

    subscriber = _client()
    subscriber.on_message = on_message
    subscriber.subscribe(TopicArn.parse(arn).topic, qos=1)
    time.sleep(0.2)  # the subscription is in place
    try:
        started = time.perf_counter()
        publish_many(arn, n)
        if not arrived.wait(120):
            raise TimeoutError(f"only {count} of {n} messages arrived")
        return time.perf_counter() - started
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()


def source_rate(n: int, batch_size: int = 100) -> float:
    """Events/s publishing ``n`` messages and consuming them through lambdad's MQTT source (one message
    per event, ``batch_size`` in flight), the publisher paced to stay ``AHEAD`` of the consumer."""
    arn = new_arn()
    spec = mapping_spec(MQTT, arn, ENDPOINT, batch_size)

    async def measure() -> float:
        source = MQTT.source(spec)
        done = 0

        async def paced_publisher() -> None:
            for first in range(0, n, PUBLISH_CHUNK):
                while first - done > AHEAD:
                    await asyncio.sleep(0.005)
                await asyncio.to_thread(publish_many, arn, min(PUBLISH_CHUNK, n - first), first)

        async def consume() -> None:
            nonlocal done
            deadline = time.perf_counter() + 120
            while done < n and time.perf_counter() < deadline:
                batch = await source.receive(batch_size, 1.0)
                if batch:
                    source.event(batch)
                    await source.ack(batch)
                    done += len(batch)
            if done < n:
                raise TimeoutError(f"only {done} of {n} messages arrived through the source")

        await source.open()
        try:
            started = time.perf_counter()
            await asyncio.gather(paced_publisher(), consume())
            return n / (time.perf_counter() - started)
        finally:
            await source.close()
            await end_session(spec)

    return asyncio.run(measure())
