"""The MQTT source against the real Mosquitto on 127.0.0.1:1883 and a private one, through the contract."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources import SOURCE_KINDS, SourceMessage, SourceSpec, SourceUnavailable, kind_for
from lambdad.events.sources.mqtt import MQTT, MqttSource, end_session
from tests.brokers import mqtt_publish as publish
from tests.brokers import private_mosquitto
from tests.events.sources.conftest import run, source_spec

BROKER = "mqtt://127.0.0.1:1883"


def topic_arn(topic: str) -> str:
    return f"arn:aws:mqtt:us-east-1:123456789012:topic/{topic}"


def spec(topic: str, endpoint: str = BROKER, **overrides: Any) -> SourceSpec:
    return source_spec(topic_arn(topic), endpoint, **overrides)


def mqtt_client(port: int = 1883, client_id: str = "") -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def forget_session(mapping: SourceSpec) -> None:
    """End the mapping's persistent session on its broker (a broker that is gone took it along)."""
    with contextlib.suppress(SourceUnavailable):
        run(end_session(mapping))


@pytest.fixture
def topic() -> str:
    return f"lambdad-test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def mapping(topic: str) -> Iterator[SourceSpec]:
    """A mapping on the test's own topic whose broker session is ended afterwards."""
    made = spec(topic)
    yield made
    forget_session(made)


@asynccontextmanager
async def opened(mapping: SourceSpec) -> AsyncIterator[MqttSource]:
    source = MQTT.source(mapping)
    await source.open()
    try:
        yield source
    finally:
        await source.close()


async def receive_all(source: MqttSource, count: int, wait: float = 5) -> list[SourceMessage]:
    received: list[SourceMessage] = []
    while len(received) < count:
        batch = await source.receive(10, wait)
        if not batch:
            break
        received += batch
    return received


def test_the_mqtt_kind_serves_mqtt_topic_arns() -> None:
    assert SOURCE_KINDS["mqtt"] is MQTT
    assert kind_for(topic_arn("sensors/+/temperature")) is MQTT


def test_a_json_payload_is_the_event_and_one_message_makes_one_event(topic: str, mapping: SourceSpec) -> None:
    async def scenario() -> list[tuple[SourceMessage, dict[str, Any]]]:
        async with opened(mapping) as source:
            publish(topic, b'{"temperature": 21.5}', b'{"temperature": 22}')
            first = await source.receive(10, 5)
            second = await source.receive(10, 5)
            await source.ack([*first, *second])
            return [(m, source.event([m])) for m in (*first, *second)]

    (first, first_event), (second, second_event) = run(scenario())
    assert first_event == {"temperature": 21.5}
    assert second_event == {"temperature": 22}
    assert first.filter_view == {"topic": topic, "data": {"temperature": 21.5}}
    assert first.delivery_count == 1
    assert first.item_id != second.item_id


def test_a_payload_that_is_not_a_json_object_arrives_base64_encoded_as_data(
    topic: str, mapping: SourceSpec
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with opened(mapping) as source:
            publish(topic, b"\x00\xffbinary", b"plain text", b"[1, 2]")
            messages = await receive_all(source, 3)
            await source.ack(messages)
            return [source.event([m]) for m in messages]

    assert run(scenario()) == [
        {"data": base64.b64encode(b"\x00\xffbinary").decode()},
        {"data": base64.b64encode(b"plain text").decode()},
        {"data": base64.b64encode(b"[1, 2]").decode()},
    ]


def test_a_qos_0_message_is_delivered_and_needs_no_acknowledgement(topic: str, mapping: SourceSpec) -> None:
    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        seen = []
        async with opened(mapping) as source:
            client = mqtt_client()
            try:
                client.publish(topic, b'{"qos": 0}', qos=0).wait_for_publish(5)
            finally:
                client.disconnect()
                client.loop_stop()
            publish(topic, b'{"qos": 1}')
            for _ in range(2):
                (message,) = await source.receive(10, 5)
                seen.append((message.delivery_count, message.record))
                await source.ack([message])
        async with opened(mapping) as source:
            assert await source.receive(10, 0.5) == []
        return seen

    assert run(scenario()) == [(1, {"qos": 0}), (1, {"qos": 1})]


def test_a_wildcard_filter_receives_every_matching_topic(topic: str) -> None:
    mapping = spec(f"{topic}/+/temperature")
    try:

        async def scenario() -> list[str]:
            async with opened(mapping) as source:
                publish(f"{topic}/kitchen/temperature", b"{}")
                publish(f"{topic}/kitchen/humidity", b"{}")
                publish(f"{topic}/garage/temperature", b"{}")
                messages = await receive_all(source, 3, wait=1)
                await source.ack(messages)
                return [m.filter_view["topic"] for m in messages]

        assert run(scenario()) == [f"{topic}/kitchen/temperature", f"{topic}/garage/temperature"]
    finally:
        forget_session(mapping)


def test_messages_published_while_the_source_is_closed_arrive_when_it_reopens(
    topic: str, mapping: SourceSpec
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with opened(mapping):
            pass  # the session and its subscription now exist on the broker
        publish(topic, b'{"n": 1}', b'{"n": 2}')
        async with opened(mapping) as source:
            messages = await receive_all(source, 2)
            await source.ack(messages)
            return [m.record for m in messages]

    assert run(scenario()) == [{"n": 1}, {"n": 2}]


def test_acknowledged_messages_never_come_back(topic: str, mapping: SourceSpec) -> None:
    async def scenario() -> tuple[int, list[SourceMessage]]:
        async with opened(mapping) as source:
            publish(topic, b'{"n": 1}', b'{"n": 2}')
            taken = await receive_all(source, 2)
            await source.ack(taken)
        async with opened(mapping) as source:
            return len(taken), await source.receive(10, 0.5)

    taken, again = run(scenario())
    assert taken == 2
    assert again == []


def test_a_released_message_is_delivered_again_with_a_growing_count(topic: str, mapping: SourceSpec) -> None:
    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        seen = []
        async with opened(mapping) as source:
            publish(topic, b'{"retry": true}')
            for _ in range(3):
                (message,) = await source.receive(10, 5)
                seen.append((message.delivery_count, message.record))
                await source.release([message])
            (last,) = await source.receive(10, 5)
            await source.ack([last])
        return seen

    assert run(scenario()) == [(1, {"retry": True}), (2, {"retry": True}), (3, {"retry": True})]


def test_a_message_released_while_another_is_in_progress_comes_back_alone_once_that_one_is_done(
    topic: str, mapping: SourceSpec
) -> None:
    async def scenario() -> tuple[list[SourceMessage], list[SourceMessage]]:
        async with opened(mapping) as source:
            publish(topic, b'{"fails": true}', b'{"fails": false}')
            failing, succeeding = await receive_all(source, 2)
            await source.release([failing])
            await source.ack([succeeding])
            again = await receive_all(source, 2, wait=1)
            await source.ack(again)
            return [failing, succeeding], again

    first, again = run(scenario())
    assert [m.record for m in first] == [{"fails": True}, {"fails": False}]
    assert [(m.record, m.delivery_count) for m in again] == [({"fails": True}, 2)]


def test_unacknowledged_messages_reach_a_new_source_after_the_old_one_closed(
    topic: str, mapping: SourceSpec
) -> None:
    async def scenario() -> tuple[list[SourceMessage], list[SourceMessage]]:
        async with opened(mapping) as old:
            publish(topic, b'{"survivor": 1}')
            taken = await old.receive(10, 5)
        async with opened(mapping) as new:
            again = await new.receive(10, 5)
            await new.ack(again)
        return taken, again

    taken, again = run(scenario())
    assert [m.record for m in taken] == [{"survivor": 1}]
    assert [m.record for m in again] == [{"survivor": 1}]
    assert again[0].delivery_count == 2


def test_batch_size_bounds_the_messages_held_unacknowledged(topic: str) -> None:
    mapping = spec(topic, batch_size=2)
    try:

        async def scenario() -> tuple[int, list[SourceMessage], list[SourceMessage]]:
            async with opened(mapping) as source:
                publish(topic, *(f'{{"n": {i}}}'.encode() for i in range(3)))
                held = await receive_all(source, 2)
                blocked = await source.receive(10, 0.5)  # the broker waits for an acknowledgement
                await source.ack(held[:1])
                after = await source.receive(10, 5)
                await source.ack([*held[1:], *after])
                return len(held), blocked, after

        held, blocked, after = run(scenario())
        assert held == 2
        assert blocked == []
        assert [m.record for m in after] == [{"n": 2}]
    finally:
        forget_session(mapping)


def test_an_unreachable_broker_is_unavailable() -> None:
    with pytest.raises(SourceUnavailable):
        run(MQTT.source(spec("t", endpoint="mqtt://127.0.0.1:1")).open())


def test_a_broker_that_dies_is_unavailable_and_the_session_continues_after_its_restart(
    tmp_path: Path, topic: str
) -> None:
    broker = private_mosquitto(tmp_path).start()
    endpoint = f"mqtt://127.0.0.1:{broker.port}"
    mapping = spec(topic, endpoint=endpoint)
    try:

        async def before_the_crash() -> list[SourceMessage]:
            source = MQTT.source(mapping)
            await source.open()
            publish(topic, b'{"n": 1}', port=broker.port)
            taken = await source.receive(10, 5)
            # Mosquitto writes in-flight messages to disk when it stops, not at once.
            broker.stop(signal.SIGTERM)
            with pytest.raises(SourceUnavailable):
                await source.receive(10, 5)
            await source.close()
            return taken

        taken = run(before_the_crash())
        assert [m.record for m in taken] == [{"n": 1}]
        broker.start()

        async def after_the_restart() -> list[dict[str, Any]]:
            async with opened(mapping) as source:
                publish(topic, b'{"n": 2}', port=broker.port)
                messages = await receive_all(source, 2)
                await source.ack(messages)
                return [m.record for m in messages]

        assert run(after_the_restart()) == [{"n": 1}, {"n": 2}]
    finally:
        forget_session(mapping)
        broker.cleanup()


def test_publish_sends_at_qos_1_with_attributes_as_user_properties(topic: str) -> None:
    received: list[paho.MQTTMessage] = []
    client = mqtt_client()
    client.on_message = lambda _c, _u, message: received.append(message)
    try:
        client.subscribe(topic, qos=1)
        run(asyncio.sleep(0.3))
        attributes = {"RequestID": "r-1", "ErrorCode": "200", "ErrorMessage": "boom"}
        run(MQTT.publish(topic_arn(topic), BROKER, b'{"failed": true}', attributes))
        run(wait_until(lambda: bool(received)))
    finally:
        client.disconnect()
        client.loop_stop()
    (message,) = received
    assert message.payload == b'{"failed": true}'
    assert message.qos == 1
    assert dict(message.properties.UserProperty) == attributes  # type: ignore[union-attr]


async def wait_until(condition: Any, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def test_publish_to_an_unreachable_broker_is_unavailable() -> None:
    with pytest.raises(SourceUnavailable):
        run(MQTT.publish(topic_arn("t"), "mqtt://127.0.0.1:1", b"x"))


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:mqtt:us-east-1:123456789012:sensors/a",  # no topic/ prefix
        topic_arn(""),
        topic_arn("sensors/#/a"),
        topic_arn("sensors/a+"),
        topic_arn("sensors/#x"),
    ],
)
def test_validate_refuses_arns_that_name_no_valid_topic_filter(arn: str) -> None:
    with pytest.raises(InvalidParameterValueException):
        MQTT.validate(spec("t", event_source_arn=arn))


@pytest.mark.parametrize("filter_", ["sensors/a", "sensors/+/temperature", "sensors/#", "#", "a:b/c"])
def test_validate_accepts_topic_filters_with_wildcards(filter_: str) -> None:
    MQTT.validate(spec(filter_))
