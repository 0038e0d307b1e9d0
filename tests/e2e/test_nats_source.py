"""NATS JetStream event source mappings end to end: a real lambdad, the real NATS server, functions in
real sandboxes (host network, so they report what they received to a collector in the test)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest

from tests.e2e.invoke_support import eventually
from tests.e2e.mapping_support import server_with_event_sources, wait_state
from tests.e2e.stream_support import Collector, collector, deploy_collecting_function
from tests.support import Server

pytestmark = pytest.mark.e2e

ENDPOINT = "nats://127.0.0.1:4222"


@pytest.fixture(scope="module")
def collect() -> Iterator[Collector]:
    with collector() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with server_with_event_sources(tmp_path_factory.mktemp("lambdad"), f"nats={ENDPOINT}") as running:
        yield running


async def _nats(action: str, stream: str, *bodies: bytes, subject: str = "") -> Any:
    connection = await nats.connect(ENDPOINT)
    try:
        jetstream = connection.jetstream()
        if action == "create":
            return await jetstream.add_stream(name=stream, subjects=[f"{stream}.>"])
        if action == "delete":
            return await jetstream.delete_stream(stream)
        if action == "publish":
            for body in bodies:
                await jetstream.publish(subject or f"{stream}.events", body)
            return None
        if action == "consumer":
            return await jetstream.consumer_info(stream, subject)
        if action == "read":
            subscription = await jetstream.pull_subscribe(subject, stream=stream)
            return [message.data for message in await subscription.fetch(10, timeout=2)]
        raise ValueError(action)
    finally:
        await connection.close()


def nats_do(action: str, stream: str, *bodies: bytes, subject: str = "") -> Any:
    return asyncio.run(asyncio.wait_for(_nats(action, stream, *bodies, subject=subject), 20))


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"lambdad-e2e-{uuid.uuid4().hex[:10]}"
    nats_do("create", name)
    yield name
    nats_do("delete", name)


def stream_arn(stream: str, subject: str = "") -> str:
    return f"arn:aws:nats:us-east-1:000000000000:stream/{stream}" + (f"/{subject}" if subject else "")


def payloads(collect: Collector, function: str) -> list[Any]:
    return [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in collect.records(function)]


def test_records_reach_the_function_in_order_as_kinesis_events(
    server: Server, collect: Collector, stream: str
) -> None:
    client, function = server.client(), deploy_collecting_function(server, collect, "nats-fn")
    nats_do("publish", stream, *(json.dumps({"n": n}).encode() for n in range(5)))
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(stream),
        FunctionName=function,
        StartingPosition="TRIM_HORIZON",
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
    )
    wait_state(client, mapping["UUID"], "Enabled", timeout=30)
    eventually(lambda: len(collect.records(function)) == 5, timeout=30)
    assert payloads(collect, function) == [{"n": n} for n in range(5)]
    record = collect.records(function)[0]
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventSourceARN"] == stream_arn(stream)
    assert record["kinesis"]["partitionKey"] == f"{stream}.events"
    consumer = f"lambdad-{mapping['UUID']}"
    eventually(lambda: nats_do("consumer", stream, subject=consumer).num_ack_pending == 0)
    assert nats_do("consumer", stream, subject=consumer).num_pending == 0
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_a_failed_record_is_delivered_again_before_later_ones(
    server: Server, collect: Collector, stream: str
) -> None:
    client, function = server.client(), deploy_collecting_function(server, collect, "nats-fn")
    nats_do("publish", stream, b'{"n": 0}', b'{"n": 1, "fail": "once"}', b'{"n": 2}')
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(stream),
        FunctionName=function,
        StartingPosition="TRIM_HORIZON",
        BatchSize=3,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    wait_state(client, mapping["UUID"], "Enabled", timeout=30)
    eventually(lambda: len(collect.batches(function)) >= 2, timeout=30)
    nats_do("publish", stream, b'{"n": 3}')
    eventually(lambda: 3 in [p["n"] for p in payloads(collect, function)], timeout=30)
    delivered = [p["n"] for p in payloads(collect, function)]
    assert delivered == [0, 1, 2, 1, 2, 3]
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_a_batch_that_keeps_failing_goes_to_a_nats_on_failure_destination(
    server: Server, collect: Collector, stream: str
) -> None:
    client, function = server.client(), deploy_collecting_function(server, collect, "nats-fn")
    nats_do("publish", stream, b'{"n": 0, "fail": "always"}')
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(stream, ""),
        FunctionName=function,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumRetryAttempts=0,
        Topics=[f"{stream}.events"],
        DestinationConfig={"OnFailure": {"Destination": stream_arn(stream, f"{stream}.failures")}},
    )
    wait_state(client, mapping["UUID"], "Enabled", timeout=30)
    failures = eventually(lambda: nats_do("read", stream, subject=f"{stream}.failures"), timeout=30)
    record = json.loads(failures[0])
    assert record["KinesisBatchInfo"]["startSequenceNumber"] == "1"
    assert record["KinesisBatchInfo"]["streamArn"] == stream_arn(stream)
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_records_published_while_lambdad_is_stopped_are_delivered_after_it_restarts(
    tmp_path: Path, collect: Collector, stream: str
) -> None:
    with server_with_event_sources(tmp_path, f"nats={ENDPOINT}") as server:
        client, function = server.client(), deploy_collecting_function(server, collect, "nats-fn")
        mapping = client.create_event_source_mapping(
            EventSourceArn=stream_arn(stream), FunctionName=function, StartingPosition="LATEST"
        )
        wait_state(client, mapping["UUID"], "Enabled", timeout=30)
        nats_do("publish", stream, b'{"n": 0}')
        eventually(lambda: payloads(collect, function) == [{"n": 0}], timeout=30)
        server.stop(timeout=60)
        nats_do("publish", stream, b'{"n": 1}', b'{"n": 2}')
    with server_with_event_sources(tmp_path, f"nats={ENDPOINT}"):
        eventually(lambda: len(payloads(collect, function)) == 3, timeout=30)
        assert payloads(collect, function) == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_deleting_a_mapping_deletes_its_durable_consumer(
    server: Server, collect: Collector, stream: str
) -> None:
    client, function = server.client(), deploy_collecting_function(server, collect, "nats-fn")
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(stream), FunctionName=function, StartingPosition="LATEST"
    )
    wait_state(client, mapping["UUID"], "Enabled", timeout=30)
    consumer = f"lambdad-{mapping['UUID']}"
    assert nats_do("consumer", stream, subject=consumer).num_pending == 0
    client.delete_event_source_mapping(UUID=mapping["UUID"])

    def consumer_gone() -> bool:
        try:
            nats_do("consumer", stream, subject=consumer)
        except nats.js.errors.NotFoundError:
            return True
        return False

    eventually(consumer_gone, timeout=30)
