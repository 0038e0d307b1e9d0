"""The Redis Streams source against the Redis at 127.0.0.1:6379 (each test uses its own stream)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources import SourceSpec, SourceUnavailable, kind_for
from lambdad.events.sources.redis_streams import RedisStreamsKind, RedisStreamSource, group_name
from tests.events.sources.conftest import source_spec
from tests.support import free_port

ENDPOINT = "redis://127.0.0.1:6379/0"


@pytest.fixture
def key() -> Iterator[str]:
    name = f"test-source-{uuid.uuid4().hex[:8]}"
    yield name
    redis.Redis().delete(name)


def spec(
    key: str, position: str = "TRIM_HORIZON", timestamp: float | None = None, endpoint: str = ENDPOINT
) -> SourceSpec:
    return source_spec(
        f"arn:aws:redis:us-east-1:000000000000:stream/{key}",
        endpoint,
        starting_position=position,
        starting_position_timestamp=timestamp,
    )


def data_of(source_messages: list) -> list[str]:  # type: ignore[type-arg]
    return [base64.b64decode(m.record["redis"]["data"]).decode() for m in source_messages]


def test_redis_arns_are_served_by_the_redis_kind() -> None:
    assert isinstance(kind_for("arn:aws:redis:us-east-1:000000000000:stream/s"), RedisStreamsKind)


@pytest.mark.parametrize(
    "arn", ["arn:aws:redis:us-east-1:000000000000:queue/s", "arn:aws:redis:us-east-1:0:stream/"]
)
def test_arn_without_a_stream_key_is_refused(arn: str) -> None:
    with pytest.raises(InvalidParameterValueException, match="Invalid Redis stream ARN"):
        RedisStreamsKind().validate(SourceSpec("u", arn, ENDPOINT, "us-east-1", "0", 10, "LATEST"))


def test_records_are_kinesis_shaped_and_filter_on_decoded_data(key: str) -> None:
    async def scenario() -> None:
        entry = redis.Redis().xadd(key, {"data": json.dumps({"a": 1}), "source": "test"}).decode()
        plain = redis.Redis().xadd(key, {"x": "1"}).decode()
        source = RedisStreamSource(spec(key))
        await source.open()
        try:
            first, second = await source.receive(10, 1)
        finally:
            await source.close()
        assert first.item_id == entry
        assert first.record["eventSource"] == "lambdad:redis"
        assert (
            first.record["invokeIdentityArn"] == "arn:aws:iam::000000000000:role/lambdad-event-source-mapping"
        )
        assert first.record["eventSourceARN"].endswith(f"stream/{key}")
        assert first.record["redis"]["sequenceNumber"] == entry
        assert first.record["redis"]["fields"] == {"source": "test"}
        assert first.filter_view["data"] == {"a": 1}
        assert abs(first.sent_at - time.time()) < 60
        assert json.loads(base64.b64decode(second.record["redis"]["data"])) == {"x": "1"}
        assert second.item_id == plain
        assert source.event([first])["Records"] == [first.record]

    asyncio.run(scenario())


def test_latest_and_at_timestamp_start_positions(key: str) -> None:
    async def scenario() -> None:
        client = redis.Redis()
        client.xadd(key, {"data": "old"})
        time.sleep(0.01)
        middle = time.time()
        time.sleep(0.01)
        client.xadd(key, {"data": "middle"})
        latest = RedisStreamSource(spec(key, "LATEST"))
        at_time = RedisStreamSource(spec(key, "AT_TIMESTAMP", middle))
        await latest.open()
        await at_time.open()
        client.xadd(key, {"data": "new"})
        try:
            assert data_of(await latest.receive(10, 1)) == ["new"]
            assert data_of(await at_time.receive(10, 1)) == ["middle", "new"]
        finally:
            await latest.close()
            await at_time.close()

    asyncio.run(scenario())


def test_released_and_unacknowledged_entries_come_back_with_their_count(key: str) -> None:
    async def scenario() -> None:
        redis.Redis().xadd(key, {"data": "one"})
        redis.Redis().xadd(key, {"data": "two"})
        mapping = spec(key)
        source = RedisStreamSource(mapping)
        await source.open()
        first = await source.receive(1, 1)
        await source.release(first)
        again = await source.receive(10, 1)
        assert data_of(again) == ["one"]
        assert again[0].delivery_count == 2
        await source.ack(again)
        await source.receive(10, 1)  # "two" is read, then the server "dies" without acking it
        await source.close()
        restarted = RedisStreamSource(mapping)
        await restarted.open()
        try:
            replayed = await restarted.receive(10, 1)
            assert data_of(replayed) == ["two"]
            assert replayed[0].delivery_count == 2
            await restarted.ack(replayed)
            assert await restarted.receive(10, 0.05) == []
            assert await restarted.lag() == 0
        finally:
            await restarted.close()
        assert redis.Redis().xpending(key, group_name(mapping.uuid))["pending"] == 0

    asyncio.run(scenario())


def test_lag_counts_waiting_and_pending_entries(key: str) -> None:
    async def scenario() -> None:
        source = RedisStreamSource(spec(key))
        await source.open()
        try:
            for index in range(3):
                redis.Redis().xadd(key, {"data": str(index)})
            assert await source.lag() == 3
            await source.receive(1, 1)
            assert await source.lag() == 3  # one pending, two never read
        finally:
            await source.close()

    asyncio.run(scenario())


def test_publish_appends_data_and_attributes(key: str) -> None:
    arn = f"arn:aws:redis:us-east-1:000000000000:stream/{key}"
    asyncio.run(RedisStreamsKind().publish(arn, ENDPOINT, b'{"x": 1}', {"ErrorCode": "E"}))
    ((_, fields),) = redis.Redis(decode_responses=True).xrange(key)
    assert fields == {"data": '{"x": 1}', "ErrorCode": "E"}


def test_unreachable_redis_is_source_unavailable(key: str) -> None:
    source = RedisStreamSource(spec(key, endpoint=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(SourceUnavailable):
        asyncio.run(source.open())


def test_remove_destroys_the_mappings_consumer_group_and_leaves_the_stream(key: str) -> None:
    removed, kept = spec(key), spec(key)

    async def scenario() -> None:
        for mapping in (removed, kept):
            source = RedisStreamSource(mapping)
            await source.open()
            await source.close()
        redis.Redis().xadd(key, {"data": "stays"})
        await RedisStreamsKind().remove(removed)

    asyncio.run(scenario())
    groups = {g["name"] for g in redis.Redis(decode_responses=True).xinfo_groups(key)}
    assert groups == {group_name(kept.uuid)}
    assert redis.Redis().xlen(key) == 1


def test_remove_after_the_stream_was_deleted_is_quiet(key: str) -> None:
    asyncio.run(RedisStreamsKind().remove(spec(key)))  # no stream, so no group: nothing to do
    assert not redis.Redis().exists(key)


def test_remove_with_redis_unreachable_is_source_unavailable(key: str) -> None:
    with pytest.raises(SourceUnavailable):
        asyncio.run(RedisStreamsKind().remove(spec(key, endpoint=f"redis://127.0.0.1:{free_port()}/0")))


def test_records_name_the_functions_role_as_invoke_identity(key: str) -> None:
    role = "arn:aws:iam::000000000000:role/orders-reader"

    async def scenario() -> list[str]:
        redis.Redis().xadd(key, {"data": "x"})
        source = RedisStreamSource(dataclasses.replace(spec(key), role=role))
        await source.open()
        try:
            return [m.record["invokeIdentityArn"] for m in await source.receive(10, 1)]
        finally:
            await source.close()

    assert asyncio.run(scenario()) == [role]
