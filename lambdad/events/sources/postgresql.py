"""A PostgreSQL table's row changes as an ordered event source, delivered as DynamoDB Streams records.

A mapping reads ``arn:aws:postgresql:REGION:ACCOUNT:table/SCHEMA.TABLE`` (``table/TABLE`` means schema
``public``) in the database of the endpoint URL (``Settings.event_sources["postgresql"]``). Records look
like DynamoDB Streams records (``eventSource`` ``aws:dynamodb``, ``eventName`` INSERT, MODIFY or REMOVE,
``NEW_AND_OLD_IMAGES`` with attribute values such as ``{"N": "1"}``; ``Keys`` are the primary key
columns, or every column of a table without one), so a function written for DynamoDB Streams works.

Capture needs no logical decoding (the server may run ``wal_level=replica``): opening a source installs,
idempotently, a schema ``lambdad`` with a change log (``lambdad.changes``, one row per row change, in a
bigserial order), each mapping's position (``lambdad.positions``) and one row trigger per mapped table.
The trigger serialises a table's writers from their first change to commit (a transaction-level
advisory lock), so the log's order is commit order and a reader never passes a change committed later
with a smaller sequence. Changes made while lambdad is down wait in the log; rows every mapping of a
table has passed are pruned; removing the last mapping of a table drops its trigger and its log rows.
Readers wake on ``NOTIFY lambdad_changes`` and poll every second as well. TRUNCATE is not captured.

Delivery counts live in the source's memory: a new source (after a restart) counts from 1 again.

Destinations: ``publish`` inserts the message into the table the ARN names (created when missing as
``id bigserial, body text, attributes jsonb, created_at timestamptz``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb, set_json_loads

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources.base import SourceMessage, SourceSpec, SourceUnavailable
from lambdad.events.sources.stream_positions import check_starting_position

SERVICE = "postgresql"
CHANNEL = "lambdad_changes"
TRIGGER = "lambdad_capture_changes"
CONNECT_TIMEOUT = 3
# Seconds between looks at the change log when no notification came (a missed or dropped NOTIFY).
POLL_INTERVAL = 1.0
# Seconds between prunings of the change log (each ack would be wasteful).
PRUNE_INTERVAL = 5.0

SCHEMA_SQL = f"""
CREATE SCHEMA IF NOT EXISTS lambdad;
CREATE TABLE IF NOT EXISTS lambdad.changes (
    sequence bigserial PRIMARY KEY,
    table_name text NOT NULL,
    operation text NOT NULL,
    old_row jsonb,
    new_row jsonb,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS changes_by_table ON lambdad.changes (table_name, sequence);
CREATE TABLE IF NOT EXISTS lambdad.positions (
    mapping text PRIMARY KEY,
    table_name text NOT NULL,
    sequence bigint NOT NULL
);
-- SECURITY DEFINER: the table's writers need no rights on the lambdad schema.
CREATE OR REPLACE FUNCTION lambdad.capture_change() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    qualified text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
BEGIN
    -- Held until commit: the table's changes enter the log in commit order.
    PERFORM pg_advisory_xact_lock(hashtext('lambdad.changes'), hashtext(qualified));
    INSERT INTO lambdad.changes (table_name, operation, old_row, new_row)
    VALUES (qualified, TG_OP,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    PERFORM pg_notify('{CHANNEL}', qualified);
    RETURN NULL;
END
$$;
"""
EVENT_NAMES = {"INSERT": "INSERT", "UPDATE": "MODIFY", "DELETE": "REMOVE"}


def table_of(arn: str) -> tuple[str, str]:
    """The (schema, table) an ``arn:aws:postgresql:...:table/[SCHEMA.]TABLE`` names, or ('', '')."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != SERVICE or not parts[5].startswith("table/"):
        return "", ""
    name = parts[5].removeprefix("table/")
    schema, _, table = name.rpartition(".")
    if not table or "/" in name:
        return "", ""
    return schema or "public", table


async def connect(endpoint: str) -> psycopg.AsyncConnection[Any]:
    """An autocommit connection whose JSON numbers keep their digits (Decimal, not float)."""
    try:
        connection = await psycopg.AsyncConnection.connect(
            endpoint, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        )
    except psycopg.Error as error:
        raise SourceUnavailable(f"PostgreSQL at {_safe(endpoint)} cannot be reached: {error}") from error
    set_json_loads(partial(json.loads, parse_float=Decimal), connection)
    return connection


async def scalar(connection: psycopg.AsyncConnection[Any], query: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the query's first row (None when no row)."""
    row = await (await connection.execute(query, params)).fetchone()
    return row[0] if row else None


async def install_capture(connection: psycopg.AsyncConnection[Any], schema: str, table: str) -> None:
    """Create the lambdad schema and the table's trigger if missing (one installer at a time)."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext('lambdad.install'))")
        await connection.execute(SCHEMA_SQL)
        await connection.execute(
            sql.SQL(
                "CREATE OR REPLACE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} "
                "FOR EACH ROW EXECUTE FUNCTION lambdad.capture_change()"
            ).format(sql.Identifier(TRIGGER), sql.Identifier(schema, table))
        )


class PostgresqlSource:
    """One mapping's reader of its table's change log."""

    ordered = True
    # Where an on-failure record names the batch, as AWS's records for DynamoDB Streams do.
    batch_info_key = "DDBStreamBatchInfo"
    # Seconds between checks, while nothing arrives, that the table and its trigger are still there.
    capture_check_interval = 10.0

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.schema, self.table = table_of(spec.event_source_arn)
        self.qualified = f"{self.schema}.{self.table}"
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._keys: list[str] = []
        self._binary_columns: set[str] = set()
        # Highest sequence read from the log; every change up to it was delivered at least once.
        self._cursor = 0
        # Delivered and not yet acknowledged (released ones included), with their delivery counts.
        self._unacked: dict[int, int] = {}
        # Released: delivered again, in sequence order, before anything past the cursor.
        self._redeliver: dict[int, SourceMessage] = {}
        self._position = 0
        self._pruned_at = 0.0
        self._checked_at = time.monotonic()

    async def open(self) -> None:
        await self.close()
        connection = await connect(self.spec.endpoint)
        try:
            if await scalar(connection, "SELECT to_regclass(%s)", [self._regclass()]) is None:
                raise SourceUnavailable(f"PostgreSQL table {self.qualified} does not exist")
            await install_capture(connection, self.schema, self.table)
            await connection.execute(
                "INSERT INTO lambdad.positions (mapping, table_name, sequence) VALUES (%s, %s, %s) "
                "ON CONFLICT (mapping) DO NOTHING",
                [self.spec.uuid, self.qualified, await self._starting_sequence(connection)],
            )
            position = await scalar(
                connection, "SELECT sequence FROM lambdad.positions WHERE mapping = %s", [self.spec.uuid]
            )
            self._position = self._cursor = int(position or 0)
            self._keys, self._binary_columns = await self._columns(connection)
            listener = await connect(self.spec.endpoint)
            await listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        except psycopg.Error as error:
            await connection.close()
            raise SourceUnavailable(f"PostgreSQL at {_safe(self.spec.endpoint)}: {error}") from error
        except SourceUnavailable:
            await connection.close()
            raise
        self._connection, self._listener = connection, listener

    def _regclass(self) -> str:
        return sql.Identifier(self.schema, self.table).as_string(None)

    async def _starting_sequence(self, connection: psycopg.AsyncConnection[Any]) -> int:
        """Where a new mapping starts: before every retained change, after the last one, or after the
        last one made before the starting timestamp."""
        latest = "SELECT coalesce(max(sequence), 0) FROM lambdad.changes WHERE table_name = %s"
        if self.spec.starting_position == "LATEST":
            return int(await scalar(connection, latest, [self.qualified]))
        if self.spec.starting_position == "AT_TIMESTAMP":
            since = self.spec.starting_position_timestamp or 0
            before = latest + " AND changed_at < to_timestamp(%s)"
            return int(await scalar(connection, before, [self.qualified, since]))
        return 0

    async def _columns(self, connection: psycopg.AsyncConnection[Any]) -> tuple[list[str], set[str]]:
        """The primary key columns (in key order) and the bytea columns of the table."""
        keys = await connection.execute(
            "SELECT a.attname FROM pg_index i "
            "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.position",
            [self._regclass()],
        )
        binary = await connection.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND atttypid = 'bytea'::regtype",
            [self._regclass()],
        )
        return [row[0] for row in await keys.fetchall()], {row[0] for row in await binary.fetchall()}

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        deadline = time.monotonic() + max_wait
        while True:
            messages = self._take_released(max_messages)
            if len(messages) < max_messages:
                messages += await self._read_log(max_messages - len(messages))
            remaining = deadline - time.monotonic()
            if messages:
                return messages
            await self._check_capture()
            if remaining <= 0:
                return messages
            await self._wait_for_change(min(remaining, POLL_INTERVAL))

    async def _check_capture(self) -> None:
        """Now and then, while nothing arrives: the table may have been dropped (unavailable) or dropped
        and created again without the trigger (installed again)."""
        if time.monotonic() - self._checked_at < self.capture_check_interval:
            return
        self._checked_at = time.monotonic()
        connection = self._require_connection()
        try:
            if await scalar(connection, "SELECT to_regclass(%s)", [self._regclass()]) is None:
                raise SourceUnavailable(f"PostgreSQL table {self.qualified} does not exist")
            installed = "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s"
            if not await scalar(connection, installed, [self._regclass(), TRIGGER]):
                await install_capture(connection, self.schema, self.table)
                self._keys, self._binary_columns = await self._columns(connection)
        except psycopg.Error as error:
            raise SourceUnavailable(f"PostgreSQL at {_safe(self.spec.endpoint)}: {error}") from error

    def _take_released(self, limit: int) -> list[SourceMessage]:
        taken = []
        for sequence in sorted(self._redeliver)[:limit]:
            message = self._redeliver.pop(sequence)
            self._unacked[sequence] += 1
            taken.append(replace(message, delivery_count=self._unacked[sequence]))
        return taken

    async def _read_log(self, limit: int) -> list[SourceMessage]:
        connection = self._require_connection()
        try:
            cursor = await connection.execute(
                "SELECT sequence, operation, old_row, new_row, extract(epoch FROM changed_at) "
                "FROM lambdad.changes WHERE table_name = %s AND sequence > %s ORDER BY sequence LIMIT %s",
                [self.qualified, self._cursor, limit],
            )
            rows = await cursor.fetchall()
        except psycopg.Error as error:
            raise SourceUnavailable(f"PostgreSQL at {_safe(self.spec.endpoint)}: {error}") from error
        messages = [self._source_message(*row) for row in rows]
        for message in messages:
            self._unacked[int(message.item_id)] = 1
        if rows:
            self._cursor = int(rows[-1][0])
        return messages

    async def _wait_for_change(self, timeout: float) -> None:
        listener = self._listener
        if listener is None:
            raise SourceUnavailable(f"PostgreSQL at {_safe(self.spec.endpoint)}: the source is not open")
        try:
            async for _ in listener.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error as error:
            raise SourceUnavailable(f"PostgreSQL at {_safe(self.spec.endpoint)}: {error}") from error

    def _source_message(
        self,
        sequence: int,
        operation: str,
        old_row: dict[str, Any] | None,
        new_row: dict[str, Any] | None,
        changed_at: Decimal,
    ) -> SourceMessage:
        image_row = new_row if new_row is not None else old_row or {}
        key_columns = self._keys or list(image_row)
        dynamodb: dict[str, Any] = {
            "ApproximateCreationDateTime": int(changed_at),
            "Keys": {column: self._attribute(column, image_row.get(column)) for column in key_columns},
        }
        if new_row is not None:
            dynamodb["NewImage"] = self._image(new_row)
        if old_row is not None:
            dynamodb["OldImage"] = self._image(old_row)
        dynamodb["SequenceNumber"] = str(sequence)
        dynamodb["SizeBytes"] = sum(
            item_size(dynamodb[part]) for part in ("Keys", "NewImage", "OldImage") if part in dynamodb
        )
        dynamodb["StreamViewType"] = "NEW_AND_OLD_IMAGES"
        # The same change keeps its eventID however often it is delivered.
        event_id = hashlib.md5(f"{self.qualified}:{sequence}".encode(), usedforsecurity=False)
        record = {
            "eventID": event_id.hexdigest(),
            "eventName": EVENT_NAMES[operation],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.spec.region,
            "dynamodb": dynamodb,
            "eventSourceARN": self.spec.event_source_arn,
        }
        return SourceMessage(
            item_id=str(sequence),
            record=record,
            filter_view=record,
            sent_at=float(changed_at),
            size=dynamodb["SizeBytes"],
        )

    def _image(self, row: dict[str, Any]) -> dict[str, Any]:
        return {column: self._attribute(column, value) for column, value in row.items()}

    def _attribute(self, column: str, value: Any) -> dict[str, Any]:
        if column in self._binary_columns and isinstance(value, str) and value.startswith("\\x"):
            return {"B": base64.b64encode(bytes.fromhex(value[2:])).decode("ascii")}
        return attribute_value(value)

    async def ack(self, messages: Sequence[SourceMessage]) -> None:
        for message in messages:
            sequence = int(message.item_id)
            self._unacked.pop(sequence, None)
            self._redeliver.pop(sequence, None)
        # Every change up to just before the oldest unacknowledged one is done with.
        position = min(self._unacked) - 1 if self._unacked else self._cursor
        position = min(position, self._cursor)
        if position <= self._position:
            return
        connection = self._require_connection()
        try:
            await connection.execute(
                "UPDATE lambdad.positions SET sequence = %s WHERE mapping = %s AND sequence < %s",
                [position, self.spec.uuid, position],
            )
            self._position = position
            if time.monotonic() - self._pruned_at > PRUNE_INTERVAL:
                await prune(connection, self.qualified)
                self._pruned_at = time.monotonic()
        except psycopg.Error as error:
            raise SourceUnavailable(f"PostgreSQL at {_safe(self.spec.endpoint)}: {error}") from error

    async def release(self, messages: Sequence[SourceMessage]) -> None:
        for message in messages:
            sequence = int(message.item_id)
            if sequence in self._unacked:
                self._redeliver[sequence] = message

    def event(self, messages: Sequence[SourceMessage]) -> dict[str, Any]:
        return {"Records": [message.record for message in messages]}

    async def lag(self) -> int | None:
        connection = self._require_connection()
        waiting = "SELECT count(*) FROM lambdad.changes WHERE table_name = %s AND sequence > %s"
        try:
            return int(await scalar(connection, waiting, [self.qualified, self._cursor]))
        except psycopg.Error as error:
            raise SourceUnavailable(f"PostgreSQL at {_safe(self.spec.endpoint)}: {error}") from error

    async def close(self) -> None:
        connections = (self._connection, self._listener)
        self._connection = self._listener = None
        self._unacked.clear()
        self._redeliver.clear()
        for connection in connections:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), CONNECT_TIMEOUT)

    def _require_connection(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            raise SourceUnavailable(f"PostgreSQL at {_safe(self.spec.endpoint)}: the source is not open")
        return self._connection


class PostgresqlKind:
    """Row changes of PostgreSQL tables (``arn:aws:postgresql:REGION:ACCOUNT:table/SCHEMA.TABLE``)."""

    service = SERVICE
    ordered = True

    def validate(self, spec: SourceSpec) -> None:
        if not table_of(spec.event_source_arn)[1]:
            raise InvalidParameterValueException(
                f"Invalid PostgreSQL table ARN {spec.event_source_arn!r}: expected "
                "arn:aws:postgresql:REGION:ACCOUNT:table/SCHEMA.TABLE"
            )
        check_starting_position(spec, "a PostgreSQL table")

    def source(self, spec: SourceSpec) -> PostgresqlSource:
        return PostgresqlSource(spec)

    async def publish(
        self, arn: str, endpoint: str, body: bytes, attributes: Mapping[str, str] | None = None
    ) -> None:
        schema, table = table_of(arn)
        if not table:
            raise ValueError(f"not a PostgreSQL table ARN: {arn!r}")
        target = sql.Identifier(schema, table)
        connection = await connect(endpoint)
        try:
            await connection.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, body text NOT NULL, "
                    "attributes jsonb NOT NULL DEFAULT '{{}}', created_at timestamptz NOT NULL DEFAULT now())"
                ).format(target)
            )
            await connection.execute(
                sql.SQL("INSERT INTO {} (body, attributes) VALUES (%s, %s)").format(target),
                [body.decode("utf-8", errors="replace"), Jsonb(dict(attributes or {}))],
            )
        except psycopg.Error as error:
            raise SourceUnavailable(f"PostgreSQL at {_safe(endpoint)}: {error}") from error
        finally:
            await connection.close()

    async def remove(self, spec: SourceSpec) -> None:
        """Forget a deleted mapping's position; the table's last mapping takes its trigger and change
        log rows with it."""
        schema, table = table_of(spec.event_source_arn)
        qualified = f"{schema}.{table}"
        connection = await connect(spec.endpoint)
        try:
            async with connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock(hashtext('lambdad.install'))")
                if await scalar(connection, "SELECT to_regclass('lambdad.positions')") is None:
                    return
                await connection.execute("DELETE FROM lambdad.positions WHERE mapping = %s", [spec.uuid])
                others = "SELECT count(*) FROM lambdad.positions WHERE table_name = %s"
                if await scalar(connection, others, [qualified]):
                    await prune(connection, qualified)
                    return
                await connection.execute(
                    sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                        sql.Identifier(TRIGGER), sql.Identifier(schema, table)
                    )
                )
                await connection.execute("DELETE FROM lambdad.changes WHERE table_name = %s", [qualified])
        except psycopg.Error as error:
            raise SourceUnavailable(f"PostgreSQL at {_safe(spec.endpoint)}: {error}") from error
        finally:
            await connection.close()


async def prune(connection: psycopg.AsyncConnection[Any], qualified: str) -> None:
    """Delete the table's changes every one of its mappings has passed."""
    await connection.execute(
        "DELETE FROM lambdad.changes WHERE table_name = %s AND sequence <= "
        "(SELECT min(sequence) FROM lambdad.positions WHERE table_name = %s)",
        [qualified, qualified],
    )


def attribute_value(value: Any) -> dict[str, Any]:
    """A JSON value (a column of ``to_jsonb(row)``) as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {key: attribute_value(item) for key, item in value.items()}}
    if isinstance(value, list):
        return {"L": [attribute_value(item) for item in value]}
    return {"S": str(value)}


def item_size(item: dict[str, Any]) -> int:
    """An item's size by DynamoDB's rules (what a stream record's SizeBytes adds up): each attribute's
    name and value in bytes; a number one byte per two significant digits plus one; a map or list three
    bytes plus one per element."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    kind, content = next(iter(value.items()))
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        digits = content.lstrip("-").split("e")[0].split("E")[0].replace(".", "").strip("0")
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(base64.b64decode(content))
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_size(item) + 1 for name, item in content.items())
    if kind == "L":
        return 3 + sum(_value_size(item) + 1 for item in content)
    return 1  # BOOL, NULL


def _safe(endpoint: str) -> str:
    """The endpoint without its password, for messages."""
    scheme, separator, rest = endpoint.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at or ":" not in credentials:
        return endpoint
    return f"{scheme}{separator}{credentials.split(':', 1)[0]}:***@{location}"
