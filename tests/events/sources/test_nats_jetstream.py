"""The NATS JetStream source against the real NATS server (127.0.0.1:4222), through the source contract;
broker outages against a private nats-server of the test's own."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import nats
import pytest

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources import SOURCE_KINDS, SourceMessage, SourceSpec, SourceUnavailable
from lambdad.events.sources.nats_jetstream import NatsJetStreamKind, NatsJetStreamSource, consumer_name
from tests.events.sources.conftest import run, source_spec
from tests.support import free_port

ENDPOINT = "nats://127.0.0.1:4222"
NATS_SERVER = "/usr/sbin/nats-server"


def spec_for(stream: str, endpoint: str = ENDPOINT, **changes: Any) -> SourceSpec:
    return source_spec(
        f"arn:aws:nats:us-east-1:000000000000:stream/{stream}",
        endpoint,
        **{"starting_position": "TRIM_HORIZON", **changes},
    )


async def publish(stream: str, *bodies: bytes, subject: str = "", endpoint: str = ENDPOINT) -> None:
    connection = await nats.connect(endpoint)
    try:
        jetstream = connection.jetstream()
        for body in bodies:
            await jetstream.publish(subject or f"{stream}.events", body)
    finally:
        await connection.close()


def sequences(messages: list[SourceMessage]) -> list[int]:
    return [int(message.item_id) for message in messages]


async def opened(spec: SourceSpec, kind: NatsJetStreamKind | None = None) -> NatsJetStreamSource:
    source = (kind or NatsJetStreamKind()).source(spec)
    await source.open()
    return source


async def add_stream(name: str, endpoint: str = ENDPOINT) -> None:
    """A stream ``name`` capturing ``<name>.>``."""
    connection = await nats.connect(endpoint)
    try:
        await connection.jetstream().add_stream(name=name, subjects=[f"{name}.>"])
    finally:
        await connection.close()


async def delete_stream(name: str) -> None:
    connection = await nats.connect(ENDPOINT)
    try:
        await connection.jetstream().delete_stream(name)
    finally:
        await connection.close()


async def first_sequences(spec: SourceSpec, wait: float = 2) -> list[int]:
    """The sequences a newly opened source receives first (waiting up to ``wait`` s); closed afterwards."""
    source = await opened(spec)
    try:
        return sequences(await source.receive(10, wait))
    finally:
        await source.close()


@pytest.fixture
def stream() -> Iterator[str]:
    """A stream of the test's own capturing ``<name>.>``, deleted afterwards."""
    name = f"lambdad-test-{uuid.uuid4().hex[:10]}"

    run(add_stream(name))
    yield name
    run(delete_stream(name))


class PrivateNats:
    """A nats-server -js of the test's own (port, store directory) that it may kill and restart."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                run(self._ping(), timeout=2)
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("the private nats-server did not start")

    async def _ping(self) -> None:
        connection = await nats.connect(
            self.endpoint,
            connect_timeout=0.5,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.05,
        )
        try:
            await connection.jetstream().account_info()
        finally:
            await connection.close()

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    server = PrivateNats(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()


def test_a_batch_is_a_kinesis_shaped_event_in_stream_order(stream: str) -> None:
    spec = spec_for(stream)

    async def scenario() -> tuple[list[SourceMessage], dict[str, Any]]:
        await publish(stream, b'{"n": 1}', b'{"n": 2}', b"not json")
        source = await opened(spec)
        try:
            messages = await source.receive(10, 2)
            return messages, source.event(messages)
        finally:
            await source.close()

    messages, event = run(scenario())
    assert sequences(messages) == [1, 2, 3]
    first = event["Records"][0]
    assert set(first) == {
        "kinesis",
        "eventSource",
        "eventVersion",
        "eventID",
        "eventName",
        "invokeIdentityArn",
        "awsRegion",
        "eventSourceARN",
    }
    assert first["eventSource"] == "aws:kinesis"
    assert first["eventName"] == "aws:kinesis:record"
    assert first["eventSourceARN"] == spec.event_source_arn
    assert first["eventID"] == "shardId-000000000000:1"
    assert first["awsRegion"] == "us-east-1"
    kinesis = first["kinesis"]
    assert kinesis["kinesisSchemaVersion"] == "1.0"
    assert kinesis["partitionKey"] == f"{stream}.events"
    assert kinesis["sequenceNumber"] == "1"
    assert base64.b64decode(kinesis["data"]) == b'{"n": 1}'
    assert abs(kinesis["approximateArrivalTimestamp"] - time.time()) < 30
    assert [json.loads(base64.b64decode(r["kinesis"]["data"]))["n"] for r in event["Records"][:2]] == [1, 2]
    assert messages[0].filter_view["data"] == {"n": 1}
    assert messages[2].filter_view["data"] == "not json"
    assert [message.delivery_count for message in messages] == [1, 1, 1]
    assert messages[0].size == len(b'{"n": 1}')


def test_a_batch_never_exceeds_the_batch_size(stream: str) -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        await publish(stream, *[str(n).encode() for n in range(5)])
        source = await opened(spec_for(stream, batch_size=3))
        try:
            first = await source.receive(10, 1)
            # The consumer holds no more than a batch unacknowledged: nothing more until acked.
            blocked = await source.receive(10, 0.5)
            await source.ack(first)
            second = await source.receive(10, 2)
            return sequences(first) + sequences(blocked), sequences(second)
        finally:
            await source.close()

    assert run(scenario()) == ([1, 2, 3], [4, 5])


def test_acked_records_are_never_delivered_again(stream: str) -> None:
    spec = spec_for(stream)

    async def scenario() -> list[int]:
        await publish(stream, b"a", b"b", b"c")
        source = await opened(spec)
        await source.ack(await source.receive(10, 2))
        await source.close()
        await publish(stream, b"d")
        return await first_sequences(spec)

    assert run(scenario()) == [4]


def test_released_records_come_back_in_order_before_later_ones(stream: str) -> None:
    async def scenario() -> list[tuple[list[int], list[int]]]:
        await publish(stream, *[str(n).encode() for n in range(6)])
        source = await opened(spec_for(stream, batch_size=3))
        rounds = []
        try:
            batch = await source.receive(3, 2)
            rounds.append((sequences(batch), [m.delivery_count for m in batch]))
            # The poller acks the record before the failed one and releases the rest, in any order.
            await source.ack(batch[:1])
            await source.release(list(reversed(batch[1:])))
            batch = await source.receive(3, 2)
            rounds.append((sequences(batch), [m.delivery_count for m in batch]))
            await source.release(batch)
            batch = await source.receive(3, 2)
            rounds.append((sequences(batch), [m.delivery_count for m in batch]))
            await source.ack(batch)
            batch = await source.receive(3, 2)
            rounds.append((sequences(batch), [m.delivery_count for m in batch]))
        finally:
            await source.close()
        return rounds

    assert run(scenario()) == [
        ([1, 2, 3], [1, 1, 1]),
        ([2, 3, 4], [2, 2, 1]),
        ([2, 3, 4], [3, 3, 2]),
        ([5, 6], [1, 1]),
    ]


def test_a_closed_sources_unacked_records_go_to_the_next_source_at_once_in_order(stream: str) -> None:
    spec = spec_for(stream)

    async def scenario() -> tuple[list[int], list[int]]:
        await publish(stream, b"a", b"b", b"c")
        first = await opened(spec)
        batch = await first.receive(10, 2)
        await first.ack(batch[:1])
        await first.close()
        await publish(stream, b"d")
        second = await opened(spec)
        try:
            again = await second.receive(10, 2)
            return sequences(again), [m.delivery_count for m in again]
        finally:
            await second.close()

    assert run(scenario()) == ([2, 3, 4], [1, 1, 1])


KILLED_SOURCE = textwrap.dedent(
    """
    import asyncio, sys
    from lambdad.events.sources import SourceSpec
    from lambdad.events.sources.nats_jetstream import NatsJetStreamKind

    async def main():
        spec = SourceSpec(uuid=sys.argv[1], event_source_arn=sys.argv[2], endpoint=sys.argv[3],
                          region="us-east-1", account="000000000000", batch_size=10,
                          starting_position="TRIM_HORIZON")
        source = NatsJetStreamKind().source(spec)
        await source.open()
        batch = await source.receive(10, 5)
        print(" ".join(m.item_id for m in batch), flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def test_a_killed_sources_unacked_records_come_back_at_once_before_later_ones(stream: str) -> None:
    spec = spec_for(stream)
    run(publish(stream, b"a", b"b"))
    killed = subprocess.Popen(
        [sys.executable, "-c", KILLED_SOURCE, spec.uuid, spec.event_source_arn, ENDPOINT],
        stdout=subprocess.PIPE,
    )
    try:
        assert killed.stdout is not None
        assert killed.stdout.readline().split() == [b"1", b"2"]
    finally:
        killed.kill()
        killed.wait(timeout=10)

    async def scenario() -> tuple[list[int], float]:
        await publish(stream, b"c")
        # The default ack wait (30 s) has not passed: the new source reclaims them itself.
        source = await opened(spec)
        started = time.monotonic()
        try:
            again = await source.receive(10, 5)
            return sequences(again), time.monotonic() - started
        finally:
            await source.close()

    again, waited = run(scenario())
    assert again == [1, 2, 3]
    assert waited < 3


def test_held_records_outlive_the_ack_wait_while_the_source_is_open(stream: str) -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        await publish(stream, b"a", b"b")
        source = await opened(spec_for(stream), NatsJetStreamKind(ack_wait=1.0))
        try:
            held = await source.receive(10, 2)
            await asyncio.sleep(2.5)  # a long invocation: two and a half ack waits
            redelivered = await source.receive(10, 0.5)
            await source.ack(held)
            return sequences(held), sequences(redelivered)
        finally:
            await source.close()

    assert run(scenario()) == ([1, 2], [])


def test_latest_starts_after_what_the_stream_holds(stream: str) -> None:
    async def scenario() -> list[int]:
        await publish(stream, b"old", b"old")
        source = await opened(spec_for(stream, starting_position="LATEST"))
        try:
            await publish(stream, b"new")
            return sequences(await source.receive(10, 2))
        finally:
            await source.close()

    assert run(scenario()) == [3]


def test_at_timestamp_starts_at_the_first_record_from_that_time(stream: str) -> None:
    async def scenario() -> list[int]:
        await publish(stream, b"before", b"before")
        await asyncio.sleep(0.2)
        since = time.time()
        await publish(stream, b"after", b"after")
        spec = spec_for(stream, starting_position="AT_TIMESTAMP", starting_position_timestamp=since)
        return await first_sequences(spec)

    assert run(scenario()) == [3, 4]


def test_topics_filter_the_stream_by_subject(stream: str) -> None:
    async def scenario() -> list[str]:
        await publish(stream, b"1", subject=f"{stream}.orders.eu")
        await publish(stream, b"2", subject=f"{stream}.payments")
        await publish(stream, b"3", subject=f"{stream}.orders.us")
        source = await opened(spec_for(stream, topics=(f"{stream}.orders.>",)))
        try:
            return [m.record["kinesis"]["partitionKey"] for m in await source.receive(10, 2)]
        finally:
            await source.close()

    assert run(scenario()) == [f"{stream}.orders.eu", f"{stream}.orders.us"]


def test_lag_counts_records_not_yet_delivered(stream: str) -> None:
    async def scenario() -> tuple[int | None, int | None]:
        await publish(stream, *[b"x"] * 5)
        source = await opened(spec_for(stream, batch_size=2))
        try:
            before = await source.lag()
            await source.ack(await source.receive(2, 2))
            return before, await source.lag()
        finally:
            await source.close()

    assert run(scenario()) == (5, 3)


def test_publish_sends_to_the_subject_the_arn_names_with_attributes_as_headers(stream: str) -> None:
    kind = SOURCE_KINDS["nats"]
    subject_arn = f"arn:aws:nats:us-east-1:000000000000:stream/{stream}/{stream}.failures"

    async def scenario() -> list[tuple[str, bytes, str | None]]:
        await kind.publish(subject_arn, ENDPOINT, b'{"failed": true}', {"ErrorCode": "200"})
        connection = await nats.connect(ENDPOINT)
        try:
            subscription = await connection.jetstream().pull_subscribe(f"{stream}.>", stream=stream)
            received = await subscription.fetch(5, timeout=2)
            return [(m.subject, m.data, (m.headers or {}).get("ErrorCode")) for m in received]
        finally:
            await connection.close()

    assert run(scenario()) == [(f"{stream}.failures", b'{"failed": true}', "200")]


def test_publish_to_a_stream_with_wildcard_subjects_needs_a_subject(stream: str) -> None:
    arn = f"arn:aws:nats:us-east-1:000000000000:stream/{stream}"
    with pytest.raises(ValueError, match="name one in the destination ARN"):
        run(SOURCE_KINDS["nats"].publish(arn, ENDPOINT, b"x"))


def test_publish_to_a_subject_no_stream_captures_is_unavailable(stream: str) -> None:
    arn = f"arn:aws:nats:us-east-1:000000000000:stream/{stream}/elsewhere.{stream}"
    with pytest.raises(SourceUnavailable, match="no NATS stream captures"):
        run(SOURCE_KINDS["nats"].publish(arn, ENDPOINT, b"x"))


def test_remove_deletes_the_mappings_durable_consumer(stream: str) -> None:
    spec = spec_for(stream)
    kind = NatsJetStreamKind()

    async def consumer_exists() -> bool:
        connection = await nats.connect(ENDPOINT)
        try:
            names = [c.name for c in await connection.jetstream().consumers_info(stream)]
            return consumer_name(spec.uuid) in names
        finally:
            await connection.close()

    async def scenario() -> tuple[bool, bool]:
        source = await opened(spec, kind)
        await source.close()
        created = await consumer_exists()
        await kind.remove(spec)
        return created, await consumer_exists()

    assert run(scenario()) == (True, False)


def test_validate_refuses_what_a_nats_stream_cannot_serve() -> None:
    kind = SOURCE_KINDS["nats"]
    kind.validate(spec_for("orders", topics=("orders.eu",)))
    refused = [
        spec_for("orders", event_source_arn="arn:aws:nats:us-east-1:000000000000:queue/orders"),
        spec_for("orders", starting_position=None),
        spec_for("orders", starting_position="AT_TIMESTAMP"),
        spec_for("orders", topics=("orders.eu", "orders.us")),
    ]
    for spec in refused:
        with pytest.raises(InvalidParameterValueException):
            kind.validate(spec)


def test_an_unreachable_broker_is_unavailable_and_a_reopened_source_continues(
    private_nats: PrivateNats,
) -> None:
    name = f"outage-{uuid.uuid4().hex[:8]}"
    spec = spec_for(name, endpoint=private_nats.endpoint)

    async def create_stream() -> None:
        await add_stream(name, private_nats.endpoint)
        await publish(name, b"1", b"2", b"3", endpoint=private_nats.endpoint)

    async def before_outage() -> list[int]:
        source = await opened(spec)
        batch = await source.receive(10, 2)
        await source.ack(batch[:2])
        # Stopped, not killed: a killed nats-server may lose acks it had not yet written to disk,
        # and redeliver (at least once) what was acknowledged.
        private_nats.stop(signal.SIGTERM)
        with pytest.raises(SourceUnavailable):
            await source.receive(10, 1)
        await source.close()
        with pytest.raises(SourceUnavailable):
            await opened(spec)
        return sequences(batch)

    async def after_outage() -> list[int]:
        await publish(name, b"4", endpoint=private_nats.endpoint)
        return await first_sequences(spec, wait=3)

    run(create_stream())
    assert run(before_outage()) == [1, 2, 3]
    private_nats.start()
    assert run(after_outage()) == [3, 4]


def test_a_new_batch_size_applies_to_the_mappings_existing_consumer(stream: str) -> None:
    spec = spec_for(stream, batch_size=10)

    async def scenario() -> list[int]:
        await (await opened(spec)).close()
        await publish(stream, *[b"x"] * 5)
        return await first_sequences(replace(spec, batch_size=2), wait=1)

    assert run(scenario()) == [1, 2]


def test_nats_streams_are_an_ordered_source_kind() -> None:
    kind = SOURCE_KINDS["nats"]
    assert (kind.service, getattr(kind, "ordered", False)) == ("nats", True)
    assert kind.source(spec_for("orders")).ordered


def test_a_new_subject_filter_applies_from_where_the_mapping_was(stream: str) -> None:
    spec = spec_for(stream, topics=(f"{stream}.a",))

    async def scenario() -> list[str]:
        await publish(stream, b"1", subject=f"{stream}.a")
        source = await opened(spec)
        await source.ack(await source.receive(10, 2))
        await source.close()
        await publish(stream, b"2", subject=f"{stream}.a")
        await publish(stream, b"3", subject=f"{stream}.b")
        source = await opened(replace(spec, topics=(f"{stream}.b",)))
        try:
            return [
                base64.b64decode(m.record["kinesis"]["data"]).decode() for m in await source.receive(10, 2)
            ]
        finally:
            await source.close()

    assert run(scenario()) == ["3"]


def test_a_stream_deleted_under_an_open_source_is_unavailable(stream: str) -> None:
    async def scenario() -> None:
        source = await opened(spec_for(stream))
        try:
            await delete_stream(stream)
            with pytest.raises(SourceUnavailable):
                await source.receive(10, 1)
            with pytest.raises(SourceUnavailable, match="does not exist"):
                await source.open()
        finally:
            await source.close()
            await add_stream(stream)  # for the fixture

    run(scenario())


def test_a_killed_broker_loses_nothing_and_redelivers_in_order(private_nats: PrivateNats) -> None:
    """kill -9: acknowledgements the server had not yet written may be lost, so records come again
    (at least once), but from some point on, in order, with nothing missing."""
    name = f"killed-{uuid.uuid4().hex[:8]}"
    spec = spec_for(name, endpoint=private_nats.endpoint)

    async def before_kill() -> None:
        await add_stream(name, private_nats.endpoint)
        await publish(name, b"1", b"2", b"3", endpoint=private_nats.endpoint)
        source = await opened(spec)
        batch = await source.receive(10, 2)
        await source.ack(batch[:2])
        private_nats.stop(signal.SIGKILL)
        await source.close()

    async def after_restart() -> list[int]:
        await publish(name, b"4", endpoint=private_nats.endpoint)
        return await first_sequences(spec, wait=3)

    run(before_kill())
    private_nats.start()
    delivered = run(after_restart())
    assert delivered and delivered[0] <= 3
    assert delivered == list(range(delivered[0], 5))
