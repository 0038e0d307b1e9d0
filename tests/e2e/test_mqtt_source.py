"""MQTT event source mappings end to end: a real lambdad, the Mosquitto on 127.0.0.1:1883, functions in
real sandboxes."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.brokers import mqtt_publish as publish
from tests.e2e.invoke_support import eventually
from tests.e2e.mapping_support import delete_mapping, wait_state
from tests.e2e.queue_support import Reporter, lambdad_with_sources, reporter_on
from tests.support import Server

pytestmark = pytest.mark.e2e
BROKER = "mqtt://127.0.0.1:1883"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from lambdad_with_sources(tmp_path_factory.mktemp("lambdad"), mqtt=BROKER)


@pytest.fixture
def reporter(server: Server) -> Iterator[Reporter]:
    yield from reporter_on(server)


@pytest.fixture
def topic() -> str:
    return f"lambdad-test/{uuid.uuid4().hex[:12]}"


def topic_arn(topic: str) -> str:
    return f"arn:aws:mqtt:us-east-1:000000000000:topic/{topic}"


def connected(client_id: str = "", clean_start: bool = True) -> tuple[paho.Client, bool]:
    """A connected MQTT 5 client, and whether the broker still had a session for ``client_id``."""
    session_present = threading.Event()
    ready = threading.Event()

    def on_connect(_c: Any, _u: Any, flags: Any, _code: Any, _p: Any) -> None:
        if flags.session_present:
            session_present.set()
        ready.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.on_connect = on_connect
    client.connect("127.0.0.1", 1883, clean_start=clean_start)
    client.loop_start()
    assert ready.wait(5)
    return client, session_present.is_set()


def test_each_message_invokes_the_function_with_its_json_payload(
    server: Server, reporter: Reporter, topic: str
) -> None:
    client = server.client()
    mapping = client.create_event_source_mapping(
        EventSourceArn=topic_arn(f"{topic}/+"), FunctionName=reporter.name, BatchSize=10
    )
    try:
        wait_state(client, mapping["UUID"], "Enabled")
        publish(f"{topic}/kitchen", b'{"temperature": 21}', b"\x00binary")
        eventually(lambda: len(reporter.invocations()) == 2)
        events = [invocation["event"] for invocation in reporter.invocations()]
        assert events == [{"temperature": 21}, {"data": "AGJpbmFyeQ=="}]
    finally:
        delete_mapping(client, mapping["UUID"])


def test_messages_published_while_the_mapping_is_disabled_are_delivered_once_it_is_enabled(
    server: Server, reporter: Reporter, topic: str
) -> None:
    client = server.client()
    mapping = client.create_event_source_mapping(EventSourceArn=topic_arn(topic), FunctionName=reporter.name)
    try:
        wait_state(client, mapping["UUID"], "Enabled")
        client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        wait_state(client, mapping["UUID"], "Disabled")
        publish(topic, b'{"while": "disabled"}')
        client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
        eventually(lambda: reporter.invocations())
        assert [i["event"] for i in reporter.invocations()] == [{"while": "disabled"}]
    finally:
        delete_mapping(client, mapping["UUID"])


def test_a_failing_message_is_sent_again_then_its_failure_record_is_published_to_the_destination(
    server: Server, reporter: Reporter, topic: str
) -> None:
    client = server.client()
    destination = f"{topic}/failures"
    received: list[paho.MQTTMessage] = []
    watcher, _ = connected()
    watcher.on_message = lambda _c, _u, message: received.append(message)
    watcher.subscribe(destination, qos=1)
    mapping = client.create_event_source_mapping(
        EventSourceArn=topic_arn(f"{topic}/in"),
        FunctionName=reporter.name,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": topic_arn(destination)}},
    )
    try:
        wait_state(client, mapping["UUID"], "Enabled")
        publish(f"{topic}/in", b'{"please": "fail-always"}')
        eventually(lambda: received, timeout=30)
    finally:
        delete_mapping(client, mapping["UUID"])
        watcher.disconnect()
        watcher.loop_stop()
    assert len(reporter.invocations()) == 2  # the first delivery and one retry
    failure = json.loads(received[0].payload)
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["records"] == [{"please": "fail-always"}]


def test_a_batching_window_is_refused_each_message_being_one_invocation(
    server: Server, reporter: Reporter, topic: str
) -> None:
    client = server.client()
    with pytest.raises(client.exceptions.InvalidParameterValueException) as raised:
        client.create_event_source_mapping(
            EventSourceArn=topic_arn(topic), FunctionName=reporter.name, MaximumBatchingWindowInSeconds=1
        )
    assert "MaximumBatchingWindowInSeconds" in raised.value.response["Error"]["Message"]


def test_deleting_the_mapping_ends_its_session_on_the_broker(
    server: Server, reporter: Reporter, topic: str
) -> None:
    client = server.client()
    mapping = client.create_event_source_mapping(EventSourceArn=topic_arn(topic), FunctionName=reporter.name)
    wait_state(client, mapping["UUID"], "Enabled")
    delete_mapping(client, mapping["UUID"])
    probe, session_present = connected(f"lambdad-esm-{mapping['UUID']}", clean_start=False)
    probe.disconnect()
    probe.loop_stop()
    assert session_present is False
