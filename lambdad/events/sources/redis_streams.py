"""Redis Streams as an event source (ARN ``arn:aws:redis:REGION:ACCOUNT:stream/STREAM_KEY``).

Each mapping reads through a consumer group of its own (``lambdad-<UUID>``, created at the starting
position: TRIM_HORIZON = the stream's first entry, LATEST = entries added from now on, AT_TIMESTAMP =
entries from that time on) as the single consumer ``lambdad``. An entry stays in the group's pending list
until it is acknowledged (XACK), so whatever a dead server had read but not finished is read again, first,
by the next one; a released entry is simply left pending and read again.

The event is shaped like AWS's Kinesis event: ``Records`` with ``eventSource`` ``"lambdad:redis"``,
``eventName`` ``"lambdad:redis:record"``, ``invokeIdentityArn`` (the function's role) and a ``redis``
member holding what Kinesis's ``kinesis`` member holds (``data`` base64-encoded: the entry's ``data``
field, or the JSON of all its fields when it has no ``data`` field; ``sequenceNumber`` = the entry ID;
``partitionKey`` = the stream key; ``approximateArrivalTimestamp`` from the ID) plus ``fields``, the
entry's other fields. Filters see that member with ``data`` decoded from JSON where it is JSON, as AWS
filters Kinesis records.

Publishing (an on-failure destination) is XADD with ``data`` = the message and the attributes as fields.
Deleting a mapping destroys its consumer group (``remove``); the stream stays.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources.base import SourceMessage, SourceSpec, SourceUnavailable
from lambdad.events.sources.stream_positions import check_starting_position

SERVICE = "redis"
CONSUMER = "lambdad"
EVENT_SOURCE = "lambdad:redis"
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def stream_key(arn: str) -> str | None:
    """The stream key an ARN names (``...:stream/KEY``), or None if it names none."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != SERVICE or not parts[5].startswith("stream/"):
        return None
    key = parts[5][len("stream/") :]
    return key or None


def group_name(uuid: str) -> str:
    """The consumer group of one mapping."""
    return f"lambdad-{uuid}"


class RedisStreamSource:
    """One mapping's consumer group on one Redis stream."""

    ordered = True
    batch_info_key = "RedisStreamBatchInfo"

    def __init__(self, spec: SourceSpec) -> None:
        self._spec = spec
        self._key = stream_key(spec.event_source_arn) or ""
        self._group = group_name(spec.uuid)
        self._client: redis.Redis | None = None
        # Read the group's pending entries before new ones: at start-up and after a release.
        self._replay = True

    async def open(self) -> None:
        client = redis.from_url(self._spec.endpoint, socket_connect_timeout=5)
        try:
            await client.ping()
            await client.xgroup_create(self._key, self._group, id=self._start_id(), mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):  # the group exists: resume where it is
                await client.aclose()
                raise
        except _UNREACHABLE as error:
            await client.aclose()
            raise SourceUnavailable(f"Redis at {self._spec.endpoint}: {error}") from error
        self._client, self._replay = client, True

    def _start_id(self) -> str:
        position = self._spec.starting_position
        if position == "LATEST":
            return "$"
        if position == "AT_TIMESTAMP" and self._spec.starting_position_timestamp is not None:
            # Entry IDs are milliseconds: start just before the first entry at that time.
            return f"{max(int(self._spec.starting_position_timestamp * 1000) - 1, 0)}-{2**64 - 1}"
        return "0"

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        client = self._connected()
        try:
            if self._replay:
                answer = await client.xreadgroup(self._group, CONSUMER, {self._key: "0"}, count=max_messages)
                entries = _entries(answer)
                if entries:
                    return await self._messages(client, entries)
                self._replay = False
            block = max(int(max_wait * 1000), 1)
            answer = await client.xreadgroup(
                self._group, CONSUMER, {self._key: ">"}, count=max_messages, block=block
            )
        except _UNREACHABLE as error:
            raise SourceUnavailable(f"Redis at {self._spec.endpoint}: {error}") from error
        except ResponseError as error:
            if "NOGROUP" in str(error):  # the stream was deleted under us: make it again
                raise SourceUnavailable(f"Redis stream {self._key}: {error}") from error
            raise
        entries = _entries(answer)
        return await self._messages(client, entries) if entries else []

    async def _messages(self, client: redis.Redis, entries: list[Any]) -> list[SourceMessage]:
        counts: dict[str, int] = {}
        ids = [_text(entry_id) for entry_id, _ in entries]
        pending = await client.xpending_range(self._key, self._group, min=ids[0], max=ids[-1], count=len(ids))
        for item in pending:
            counts[_text(item["message_id"])] = int(item["times_delivered"])
        return [
            self._message(entry_id, fields or {}, counts.get(entry_id, 1))
            for entry_id, (_, fields) in zip(ids, entries, strict=True)
        ]

    def _message(self, entry_id: str, raw_fields: Mapping[Any, Any], delivery_count: int) -> SourceMessage:
        fields = {_text(k): _text(v) for k, v in raw_fields.items()}
        data_text = fields["data"] if "data" in fields else json.dumps(fields)
        data = data_text.encode()
        sent_at = int(entry_id.split("-")[0]) / 1000
        inner: dict[str, Any] = {
            "redisSchemaVersion": "1.0",
            "partitionKey": self._key,
            "sequenceNumber": entry_id,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": sent_at,
            "fields": {k: v for k, v in fields.items() if k != "data"},
        }
        record = {
            "eventSource": EVENT_SOURCE,
            "eventVersion": "1.0",
            "eventID": f"{self._key}:{entry_id}",
            "eventName": "lambdad:redis:record",
            "invokeIdentityArn": self._spec.invoke_identity_arn,
            "awsRegion": self._spec.region,
            "eventSourceARN": self._spec.event_source_arn,
            "redis": inner,
        }
        try:
            decoded: Any = json.loads(data_text)
        except (ValueError, RecursionError):
            decoded = data_text
        return SourceMessage(
            item_id=entry_id,
            record=record,
            filter_view={**inner, "data": decoded},
            delivery_count=delivery_count,
            sent_at=sent_at,
            size=len(data) * 4 // 3 + 400,
            token=entry_id,
        )

    async def ack(self, messages: Sequence[SourceMessage]) -> None:
        if not messages:
            return
        try:
            await self._connected().xack(self._key, self._group, *[m.item_id for m in messages])
        except _UNREACHABLE as error:
            raise SourceUnavailable(f"Redis at {self._spec.endpoint}: {error}") from error

    async def release(self, messages: Sequence[SourceMessage]) -> None:
        # Left pending: the next receive reads the group's pending entries again first.
        self._replay = True

    def event(self, messages: Sequence[SourceMessage]) -> dict[str, Any]:
        return {"Records": [message.record for message in messages]}

    async def lag(self) -> int | None:
        try:
            groups = await self._connected().xinfo_groups(self._key)
        except (*_UNREACHABLE, ResponseError):
            return None
        for group in groups:
            if _text(group.get("name")) == self._group:
                lag = group.get("lag")
                pending = int(group.get("pending") or 0)
                return None if lag is None else int(lag) + pending
        return None

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _connected(self) -> redis.Redis:
        if self._client is None:
            raise SourceUnavailable("not connected to Redis")
        return self._client


class RedisStreamsKind:
    """Redis Streams: ``arn:aws:redis:REGION:ACCOUNT:stream/STREAM_KEY``."""

    service = SERVICE
    ordered = True

    def validate(self, spec: SourceSpec) -> None:
        if stream_key(spec.event_source_arn) is None:
            raise InvalidParameterValueException(
                f"Invalid Redis stream ARN {spec.event_source_arn}: expected "
                "arn:aws:redis:REGION:ACCOUNT:stream/STREAM_KEY."
            )
        if spec.queues or spec.topics:
            raise InvalidParameterValueException("Queues and Topics are not supported for Redis streams.")
        check_starting_position(spec, "a Redis stream")

    def source(self, spec: SourceSpec) -> RedisStreamSource:
        return RedisStreamSource(spec)

    async def remove(self, spec: SourceSpec) -> None:
        """Destroy a deleted mapping's consumer group (XGROUP DESTROY), with its pending entries; the
        stream and other mappings' groups stay."""
        key = stream_key(spec.event_source_arn)
        if key is None:
            return
        client = redis.from_url(spec.endpoint, socket_connect_timeout=5)
        try:
            await client.xgroup_destroy(key, group_name(spec.uuid))
        except ResponseError as error:
            if "requires the key to exist" not in str(error):  # a deleted stream has no group left
                raise
        except _UNREACHABLE as error:
            raise SourceUnavailable(f"Redis at {spec.endpoint}: {error}") from error
        finally:
            await client.aclose()

    async def publish(
        self, arn: str, endpoint: str, body: bytes, attributes: Mapping[str, str] | None = None
    ) -> None:
        key = stream_key(arn)
        if key is None:
            raise InvalidParameterValueException(f"Invalid Redis stream ARN {arn}.")
        client = redis.from_url(endpoint, socket_connect_timeout=5)
        try:
            fields: dict[str | bytes, str | bytes] = {
                name: value for name, value in (attributes or {}).items()
            }
            fields["data"] = body
            await client.xadd(key, fields)  # type: ignore[arg-type]
        except _UNREACHABLE as error:
            raise SourceUnavailable(f"Redis at {endpoint}: {error}") from error
        finally:
            await client.aclose()


def _entries(answer: Any) -> list[Any]:
    """One stream's entries in an XREADGROUP answer (RESP2: [[key, entries]]; RESP3: {key: entries})."""
    if not answer:
        return []
    if isinstance(answer, dict):
        return list(next(iter(answer.values())))
    return list(answer[0][1])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
