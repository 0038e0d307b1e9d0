"""Amazon MQ (RabbitMQ) event source mappings end to end: a real lambdad, the RabbitMQ on 127.0.0.1:5672,
functions in real sandboxes."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from tests.e2e.invoke_support import eventually
from tests.e2e.mapping_support import delete_mapping, wait_state
from tests.e2e.queue_support import Reporter, lambdad_with_sources, reporter_on
from tests.support import Server

pytestmark = pytest.mark.e2e
BROKER = "amqp://guest:guest@127.0.0.1:5672/"
BROKER_ARN = "arn:aws:mq:us-east-1:000000000000:broker:main:b-5f1c6f3e-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from lambdad_with_sources(tmp_path_factory.mktemp("lambdad"), mq=BROKER)


@pytest.fixture
def reporter(server: Server) -> Iterator[Reporter]:
    yield from reporter_on(server)


class Queues:
    """Durable queues of the test's own on the shared broker, removed afterwards."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def new(self) -> str:
        name = f"lambdad-test-{uuid.uuid4().hex[:12]}"
        amqp(self._declare(name))
        self.names.append(name)
        return name

    @staticmethod
    async def _declare(name: str) -> None:
        async with await aio_pika.connect(BROKER) as connection:
            channel = await connection.channel()
            await channel.declare_queue(name, durable=True)

    def send(self, name: str, *bodies: bytes) -> None:
        async def publish() -> None:
            async with await aio_pika.connect(BROKER) as connection:
                channel = await connection.channel()
                for body in bodies:
                    await channel.default_exchange.publish(aio_pika.Message(body), routing_key=name)

        amqp(publish())

    def count(self, name: str) -> int:
        """Messages ready in the queue (not delivered to a consumer)."""

        async def inspect() -> int:
            async with await aio_pika.connect(BROKER) as connection:
                channel = await connection.channel()
                queue = await channel.declare_queue(name, passive=True)
                return int(queue.declaration_result.message_count or 0)

        return amqp(inspect())

    def take(self, name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        async def drain() -> list[aio_pika.abc.AbstractIncomingMessage]:
            taken = []
            async with await aio_pika.connect(BROKER) as connection:
                channel = await connection.channel()
                queue = await channel.get_queue(name)
                while (message := await queue.get(fail=False, timeout=5)) is not None:
                    await message.ack()
                    taken.append(message)
            return taken

        return amqp(drain())

    def remove_all(self) -> None:
        async def delete() -> None:
            async with await aio_pika.connect(BROKER) as connection:
                channel = await connection.channel()
                for name in self.names:
                    await channel.queue_delete(name)

        amqp(delete())


def amqp(work: Any) -> Any:
    return asyncio.run(asyncio.wait_for(work, 30))


@pytest.fixture
def queues() -> Iterator[Queues]:
    made = Queues()
    yield made
    made.remove_all()


def test_messages_invoke_the_function_with_aws_rabbitmq_events_and_are_acknowledged(
    server: Server, reporter: Reporter, queues: Queues
) -> None:
    client, queue = server.client(), queues.new()
    queues.send(queue, *(json.dumps({"n": i}).encode() for i in range(3)))
    mapping = client.create_event_source_mapping(
        EventSourceArn=BROKER_ARN,
        FunctionName=reporter.name,
        Queues=[queue],
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        SourceAccessConfigurations=[{"Type": "VIRTUAL_HOST", "URI": "/"}],
    )
    assert mapping["BatchSize"] == 10
    assert mapping["Queues"] == [queue]
    assert mapping["SourceAccessConfigurations"] == [{"Type": "VIRTUAL_HOST", "URI": "/"}]
    try:
        wait_state(client, mapping["UUID"], "Enabled")
        assert sorted(json.loads(body)["n"] for body in reporter.wait_bodies(3)) == [0, 1, 2]
        event = reporter.invocations()[0]["event"]
        assert event["eventSource"] == "aws:rmq"
        assert event["eventSourceArn"] == BROKER_ARN
        (messages,) = event["rmqMessagesByQueue"].values()
        assert list(event["rmqMessagesByQueue"]) == [f"{queue}::/"]
        assert set(messages[0]) == {"basicProperties", "redelivered", "data"}
        assert json.loads(base64.b64decode(messages[0]["data"])) in [{"n": 0}, {"n": 1}, {"n": 2}]
    finally:
        delete_mapping(client, mapping["UUID"])
    # Acknowledged for good: nothing went back to the queue when the mapping's connection closed.
    assert queues.count(queue) == 0


def test_a_failing_message_is_retried_then_its_failure_record_goes_to_the_on_failure_queue(
    server: Server, reporter: Reporter, queues: Queues
) -> None:
    client, queue, failures = server.client(), queues.new(), queues.new()
    queues.send(queue, b"fail-always")
    mapping = client.create_event_source_mapping(
        EventSourceArn=BROKER_ARN,
        FunctionName=reporter.name,
        Queues=[queue],
        BatchSize=1,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": f"{BROKER_ARN}/{failures}"}},
    )
    try:
        given_up = eventually(lambda: queues.take(failures), timeout=30)
    finally:
        delete_mapping(client, mapping["UUID"])
    assert reporter.bodies() == ["fail-always"] * 3  # the first delivery and two retries
    (record,) = given_up
    failure = json.loads(record.body)
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert [base64.b64decode(m["data"]) for m in failure["records"]] == [b"fail-always"]
    assert record.headers["ErrorCode"] in ("RetryAttemptsExhausted", b"RetryAttemptsExhausted")
    assert queues.count(queue) == 0


def test_messages_sent_while_the_mapping_is_disabled_wait_in_the_queue(
    server: Server, reporter: Reporter, queues: Queues
) -> None:
    client, queue = server.client(), queues.new()
    mapping = client.create_event_source_mapping(
        EventSourceArn=BROKER_ARN, FunctionName=reporter.name, Queues=[queue], Enabled=False
    )
    try:
        wait_state(client, mapping["UUID"], "Disabled")
        queues.send(queue, b"later")
        assert queues.count(queue) == 1
        client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
        assert reporter.wait_bodies(1) == ["later"]
    finally:
        delete_mapping(client, mapping["UUID"])


def test_a_mapping_for_a_queue_that_does_not_exist_reports_the_problem(
    server: Server, reporter: Reporter
) -> None:
    client = server.client()
    mapping = client.create_event_source_mapping(
        EventSourceArn=BROKER_ARN, FunctionName=reporter.name, Queues=[f"missing-{uuid.uuid4().hex[:8]}"]
    )
    try:
        result = eventually(
            lambda: (
                client.get_event_source_mapping(UUID=mapping["UUID"])
                .get("LastProcessingResult", "")
                .startswith("PROBLEM")
                and client.get_event_source_mapping(UUID=mapping["UUID"])["LastProcessingResult"]
            ),
            timeout=20,
        )
        assert result == "PROBLEM: Connection error."
    finally:
        delete_mapping(client, mapping["UUID"])


def test_a_message_in_progress_when_lambdad_is_killed_is_delivered_after_it_restarts(
    tmp_path: Path, queues: Queues
) -> None:
    queue = queues.new()
    servers = lambdad_with_sources(tmp_path, mq=BROKER)
    server = next(servers)
    reporters = reporter_on(server)
    reporter = next(reporters)
    client = server.client()
    try:
        mapping = client.create_event_source_mapping(
            EventSourceArn=BROKER_ARN, FunctionName=reporter.name, Queues=[queue], BatchSize=1
        )
        wait_state(client, mapping["UUID"], "Enabled")
        queues.send(queue, b"slow work")
        time.sleep(1)  # the function is running it
        server.stop(signal.SIGKILL)
        assert reporter.bodies() == []
        server.start(timeout=60)
        assert reporter.wait_bodies(1, timeout=40) == ["slow work"]
        eventually(lambda: queues.count(queue) == 0)
        delete_mapping(server.client(), mapping["UUID"])
    finally:
        for generator in (reporters, servers):
            next(generator, None)
