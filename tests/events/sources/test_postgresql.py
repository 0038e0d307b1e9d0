"""The PostgreSQL row-change source against the real server (127.0.0.1:5432, a database of this module's
own), through the source contract; outages against a private cluster (initdb + pg_ctl) of the test's own."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources import SOURCE_KINDS, SourceMessage, SourceSpec, SourceUnavailable
from lambdad.events.sources.postgresql import PostgresqlKind, PostgresqlSource
from tests.brokers import postgres_database
from tests.events.sources.conftest import run, source_spec
from tests.support import free_port

pytestmark = pytest.mark.postgres

SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A database of this module's own (its endpoint URL), dropped afterwards."""
    with postgres_database("lambdad_test") as url:
        yield url


@pytest.fixture
def table(database: str) -> str:
    """A fresh ``public.<name>`` table with an integer primary key and a text column."""
    name = f"items_{uuid.uuid4().hex[:8]}"
    execute(database, f"CREATE TABLE {name} (id integer PRIMARY KEY, name text)")
    return name


def execute(endpoint: str, *statements: str) -> None:
    with psycopg.connect(endpoint, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


def insert(endpoint: str, table: str, *ids: int) -> None:
    execute(endpoint, *(f"INSERT INTO {table} VALUES ({n}, 'row {n}')" for n in ids))


def spec_for(endpoint: str, table: str, **changes: Any) -> SourceSpec:
    return source_spec(
        f"arn:aws:postgresql:us-east-1:000000000000:table/public.{table}",
        endpoint,
        **{"starting_position": "TRIM_HORIZON", **changes},
    )


async def opened(spec: SourceSpec) -> PostgresqlSource:
    source = PostgresqlKind().source(spec)
    await source.open()
    return source


async def _open_and_close(spec: SourceSpec) -> None:
    """Install capture and the mapping's position, as a mapping's first start does."""
    source = await opened(spec)
    await source.close()


def ids(messages: list[SourceMessage]) -> list[int]:
    """The id column of each change's row."""
    return [int(message.record["dynamodb"]["Keys"]["id"]["N"]) for message in messages]


async def first_ids(spec: SourceSpec) -> list[int]:
    """The ids of what a newly opened source receives first (waiting up to 2 s); closed afterwards."""
    source = await opened(spec)
    try:
        return ids(await source.receive(10, 2))
    finally:
        await source.close()


def test_insert_modify_and_remove_are_dynamodb_stream_records_with_typed_images(database: str) -> None:
    name = f"typed_{uuid.uuid4().hex[:8]}"
    execute(
        database,
        f"CREATE TABLE {name} (id integer PRIMARY KEY, title text, price numeric(10,2), ratio float8,"
        " active boolean, tags text[], doc jsonb, data bytea, note text)",
    )
    spec = spec_for(database, name)

    async def scenario() -> tuple[list[SourceMessage], dict[str, Any]]:
        source = await opened(spec)
        try:
            execute(
                database,
                f"INSERT INTO {name} VALUES (1, 'pen', 12.50, 0.25, true, ARRAY['a','b'],"
                """ '{"size": 3, "colours": ["red"], "ok": false, "none": null}', '\\xdeadbeef', NULL)""",
                f"UPDATE {name} SET title = 'red pen', price = 13 WHERE id = 1",
                f"DELETE FROM {name} WHERE id = 1",
            )
            messages = await source.receive(10, 3)
            return messages, source.event(messages)
        finally:
            await source.close()

    messages, event = run(scenario())
    inserted, modified, removed = event["Records"]
    assert [record["eventName"] for record in event["Records"]] == ["INSERT", "MODIFY", "REMOVE"]
    assert set(inserted) == {
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    }
    assert inserted["eventSource"] == "aws:dynamodb"
    assert inserted["eventVersion"] == "1.1"
    assert inserted["awsRegion"] == "us-east-1"
    assert inserted["eventSourceARN"] == spec.event_source_arn
    assert len({record["eventID"] for record in event["Records"]}) == 3
    dynamodb = inserted["dynamodb"]
    assert dynamodb["Keys"] == {"id": {"N": "1"}}
    assert dynamodb["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert "OldImage" not in dynamodb
    assert dynamodb["NewImage"] == {
        "id": {"N": "1"},
        "title": {"S": "pen"},
        "price": {"N": "12.50"},
        "ratio": {"N": "0.25"},
        "active": {"BOOL": True},
        "tags": {"L": [{"S": "a"}, {"S": "b"}]},
        "doc": {
            "M": {
                "size": {"N": "3"},
                "colours": {"L": [{"S": "red"}]},
                "ok": {"BOOL": False},
                "none": {"NULL": True},
            }
        },
        "data": {"B": base64.b64encode(bytes.fromhex("deadbeef")).decode()},
        "note": {"NULL": True},
    }
    assert abs(dynamodb["ApproximateCreationDateTime"] - time.time()) < 30
    assert dynamodb["SizeBytes"] > 0
    assert modified["dynamodb"]["OldImage"]["title"] == {"S": "pen"}
    assert modified["dynamodb"]["NewImage"]["title"] == {"S": "red pen"}
    assert modified["dynamodb"]["NewImage"]["price"] == {"N": "13.00"}
    assert "NewImage" not in removed["dynamodb"]
    assert removed["dynamodb"]["Keys"] == {"id": {"N": "1"}}
    assert removed["dynamodb"]["OldImage"]["title"] == {"S": "red pen"}
    sequence_numbers = [int(record["dynamodb"]["SequenceNumber"]) for record in event["Records"]]
    assert sequence_numbers == sorted(sequence_numbers)
    assert [message.item_id for message in messages] == [str(n) for n in sequence_numbers]
    assert messages[0].filter_view["dynamodb"]["NewImage"]["title"] == {"S": "pen"}


def test_keys_are_the_primary_key_columns_in_key_order(database: str) -> None:
    name = f"composite_{uuid.uuid4().hex[:8]}"
    execute(database, f"CREATE TABLE {name} (note text, id integer, region text, PRIMARY KEY (region, id))")

    async def scenario() -> list[Any]:
        source = await opened(spec_for(database, name))
        try:
            execute(database, f"INSERT INTO {name} VALUES ('x', 7, 'eu')")
            messages = await source.receive(10, 3)
            return [list(m.record["dynamodb"]["Keys"].items()) for m in messages]
        finally:
            await source.close()

    assert run(scenario()) == [[("region", {"S": "eu"}), ("id", {"N": "7"})]]


def test_batches_come_in_order_and_acked_changes_never_come_again(database: str, table: str) -> None:
    spec = spec_for(database, table, batch_size=2)

    async def scenario() -> tuple[list[int], list[int], list[int]]:
        source = await opened(spec)
        insert(database, table, 1, 2, 3, 4, 5)
        first = await source.receive(2, 2)
        await source.ack(first)
        second = await source.receive(2, 2)
        await source.ack(second)
        await source.close()
        source = await opened(spec)
        try:
            return ids(first), ids(second), ids(await source.receive(10, 2))
        finally:
            await source.close()

    assert run(scenario()) == ([1, 2], [3, 4], [5])


def test_released_changes_come_back_in_order_before_later_ones(database: str, table: str) -> None:
    async def scenario() -> list[tuple[list[int], list[int]]]:
        source = await opened(spec_for(database, table))
        insert(database, table, 1, 2, 3)
        rounds = []
        try:
            batch = await source.receive(3, 2)
            rounds.append((ids(batch), [m.delivery_count for m in batch]))
            insert(database, table, 4)
            await source.ack(batch[:1])
            await source.release(list(reversed(batch[1:])))
            batch = await source.receive(3, 2)
            rounds.append((ids(batch), [m.delivery_count for m in batch]))
            await source.release(batch)
            batch = await source.receive(2, 2)
            rounds.append((ids(batch), [m.delivery_count for m in batch]))
        finally:
            await source.close()
        return rounds

    assert run(scenario()) == [([1, 2, 3], [1, 1, 1]), ([2, 3, 4], [2, 2, 1]), ([2, 3], [3, 3])]


def test_a_closed_sources_unacked_changes_go_to_the_next_source(database: str, table: str) -> None:
    spec = spec_for(database, table)

    async def scenario() -> list[int]:
        first = await opened(spec)
        insert(database, table, 1, 2, 3)
        batch = await first.receive(10, 2)
        await first.ack(batch[:1])
        await first.close()
        second = await opened(spec)
        try:
            return ids(await second.receive(10, 2))
        finally:
            await second.close()

    assert run(scenario()) == [2, 3]


KILLED_SOURCE = textwrap.dedent(
    """
    import asyncio, sys
    from lambdad.events.sources import SourceSpec
    from lambdad.events.sources.postgresql import PostgresqlKind

    async def main():
        spec = SourceSpec(uuid=sys.argv[1], event_source_arn=sys.argv[2], endpoint=sys.argv[3],
                          region="us-east-1", account="000000000000", batch_size=1,
                          starting_position="TRIM_HORIZON")
        source = PostgresqlKind().source(spec)
        await source.open()
        await source.ack(await source.receive(1, 5))
        batch = await source.receive(1, 5)
        print(" ".join(m.item_id for m in batch), flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def test_a_killed_sources_unacked_changes_come_back_to_a_new_source(database: str, table: str) -> None:
    spec = spec_for(database, table)
    # Installed and positioned before the changes are made.
    run(_open_and_close(spec))
    insert(database, table, 1, 2, 3)
    killed = subprocess.Popen(
        [sys.executable, "-c", KILLED_SOURCE, spec.uuid, spec.event_source_arn, database],
        stdout=subprocess.PIPE,
    )
    try:
        assert killed.stdout is not None
        assert len(killed.stdout.readline().split()) == 1
    finally:
        killed.kill()
        killed.wait(timeout=10)

    assert run(first_ids(spec)) == [2, 3]


def test_changes_made_while_no_source_runs_are_delivered_after(database: str, table: str) -> None:
    spec = spec_for(database, table)
    run(_open_and_close(spec))
    insert(database, table, 1, 2)

    assert run(first_ids(spec)) == [1, 2]


def test_latest_starts_after_the_last_change_and_trim_horizon_at_the_oldest(
    database: str, table: str
) -> None:
    run(_open_and_close(spec_for(database, table)))  # capture installed
    insert(database, table, 1, 2)

    async def scenario() -> tuple[list[int], list[int]]:
        latest = await opened(spec_for(database, table, starting_position="LATEST"))
        horizon = await opened(spec_for(database, table, starting_position="TRIM_HORIZON"))
        try:
            insert(database, table, 3)
            return ids(await latest.receive(10, 2)), ids(await horizon.receive(10, 2))
        finally:
            await latest.close()
            await horizon.close()

    assert run(scenario()) == ([3], [1, 2, 3])


def test_at_timestamp_starts_at_the_first_change_from_that_time(database: str, table: str) -> None:
    run(_open_and_close(spec_for(database, table)))
    insert(database, table, 1, 2)
    time.sleep(0.2)
    since = time.time()
    insert(database, table, 3)

    spec = spec_for(database, table, starting_position="AT_TIMESTAMP", starting_position_timestamp=since)
    assert run(first_ids(spec)) == [3]


def test_a_waiting_receive_wakes_on_the_change_notification(database: str, table: str) -> None:
    async def scenario() -> tuple[list[int], float]:
        source = await opened(spec_for(database, table))
        try:
            started = time.monotonic()
            waiting = asyncio.create_task(source.receive(10, 5))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(insert, database, table, 1)
            messages = await waiting
            return ids(messages), time.monotonic() - started
        finally:
            await source.close()

    received, elapsed = run(scenario())
    assert received == [1]
    # Polling alone would take a second (POLL_INTERVAL); the notification wakes it at once.
    assert elapsed < 0.8


def test_changes_enter_the_log_in_commit_order(database: str, table: str) -> None:
    """A transaction that changed the table first but commits last must not be read past."""

    async def scenario() -> tuple[bool, list[int]]:
        source = await opened(spec_for(database, table))
        try:
            first = await psycopg.AsyncConnection.connect(database)
            await first.execute(f"INSERT INTO {table} VALUES (1, 'first')")
            second_writer = asyncio.create_task(asyncio.to_thread(insert, database, table, 2))
            await asyncio.sleep(0.3)
            blocked = not second_writer.done()
            await first.commit()
            await first.close()
            await second_writer
            messages = await source.receive(10, 2)
            messages += await source.receive(10, 0.3)
            return blocked, ids(messages)
        finally:
            await source.close()

    assert run(scenario()) == (True, [1, 2])


def test_lag_counts_changes_not_yet_delivered(database: str, table: str) -> None:
    async def scenario() -> tuple[int | None, int | None]:
        source = await opened(spec_for(database, table))
        try:
            insert(database, table, 1, 2, 3)
            before = await source.lag()
            await source.receive(2, 2)
            return before, await source.lag()
        finally:
            await source.close()

    assert run(scenario()) == (3, 1)


def change_rows(endpoint: str, table: str) -> int:
    with psycopg.connect(endpoint) as connection:
        row = connection.execute(
            "SELECT count(*) FROM lambdad.changes WHERE table_name = %s", [f"public.{table}"]
        ).fetchone()
        return int(row[0]) if row else 0


def test_changes_are_pruned_once_every_mapping_of_the_table_passed_them(database: str, table: str) -> None:
    async def scenario() -> tuple[int, int, int]:
        fast = await opened(spec_for(database, table))
        slow = await opened(spec_for(database, table))
        try:
            insert(database, table, 1, 2)
            await fast.ack(await fast.receive(10, 2))
            after_fast = change_rows(database, table)
            batch = await slow.receive(10, 2)
            await slow.ack(batch[:1])
            after_slow_first = change_rows(database, table)
            await slow.ack(batch[1:])
            # Pruned at most every PRUNE_INTERVAL seconds per source: close and reopen to prune now.
            await slow.close()
            slow = await opened(slow.spec)
            insert(database, table, 3)
            await slow.ack(await slow.receive(10, 2))
            return after_fast, after_slow_first, change_rows(database, table)
        finally:
            await fast.close()
            await slow.close()

    assert run(scenario()) == (2, 1, 1)


def test_removing_the_last_mapping_of_a_table_drops_its_trigger(database: str, table: str) -> None:
    kind = PostgresqlKind()
    one, two = spec_for(database, table), spec_for(database, table)

    def triggers() -> int:
        with psycopg.connect(database) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [table]
            ).fetchone()
            return int(row[0]) if row else 0

    async def scenario() -> list[int]:
        await _open_and_close(one)
        await _open_and_close(two)
        insert(database, table, 1)
        counts = [triggers()]
        await kind.remove(one)
        counts.append(triggers())
        await kind.remove(two)
        counts += [triggers(), change_rows(database, table)]
        return counts

    assert run(scenario()) == [1, 1, 0, 0]


def test_publish_inserts_the_message_into_the_table_the_arn_names(database: str) -> None:
    name = f"failures_{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:postgresql:us-east-1:000000000000:table/public.{name}"

    async def scenario() -> None:
        await SOURCE_KINDS["postgresql"].publish(arn, database, b'{"failed": 1}', {"ErrorCode": "200"})
        await SOURCE_KINDS["postgresql"].publish(arn, database, b"second")

    run(scenario())
    with psycopg.connect(database) as connection:
        rows = connection.execute(f"SELECT body, attributes FROM {name} ORDER BY id").fetchall()
    assert rows == [('{"failed": 1}', {"ErrorCode": "200"}), ("second", {})]


def test_opening_a_source_for_a_missing_table_is_unavailable(database: str) -> None:
    with pytest.raises(SourceUnavailable, match="does not exist"):
        run(opened(spec_for(database, "no_such_table")))


def test_validate_refuses_what_a_table_source_cannot_serve() -> None:
    kind = SOURCE_KINDS["postgresql"]
    kind.validate(spec_for(SERVER, "orders"))
    kind.validate(spec_for(SERVER, "x", event_source_arn="arn:aws:postgresql:us-east-1:0:table/orders"))
    refused = [
        spec_for(SERVER, "x", event_source_arn="arn:aws:postgresql:us-east-1:000000000000:view/orders"),
        spec_for(SERVER, "orders", starting_position=None),
        spec_for(SERVER, "orders", starting_position="AT_TIMESTAMP"),
    ]
    for spec in refused:
        with pytest.raises(InvalidParameterValueException):
            kind.validate(spec)


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (initdb + pg_ctl as user postgres) it may stop and start."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="lambdad-pg-"))
        shutil.chown(self.directory, "postgres")
        self.port = free_port()

    @property
    def endpoint(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, program: str, *args: str, check: bool = True) -> None:
        """Run one of PostgreSQL's programs as user postgres (it refuses to run as root)."""
        command = [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / program),
            "-D",
            str(self.directory / "data"),
        ]
        subprocess.run([*command, *args], check=check, capture_output=True, timeout=30)

    def init(self) -> None:
        self._pg("initdb", "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-o", options, "-l", str(self.directory / "log"), "-w", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        if (self.directory / "data" / "postmaster.pid").exists():
            self._pg("pg_ctl", "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def test_an_unreachable_database_is_unavailable_and_a_reopened_source_continues(
    private_cluster: PrivateCluster,
) -> None:
    endpoint = private_cluster.endpoint
    execute(endpoint, "CREATE TABLE items (id integer PRIMARY KEY, name text)")
    spec = spec_for(endpoint, "items")

    async def before_outage() -> list[int]:
        source = await opened(spec)
        insert(endpoint, "items", 1, 2, 3)
        batch = await source.receive(10, 2)
        await source.ack(batch[:2])
        private_cluster.stop()
        with pytest.raises(SourceUnavailable):
            await source.receive(10, 1)
        with pytest.raises(SourceUnavailable):
            await source.ack(batch[2:])
        await source.close()
        with pytest.raises(SourceUnavailable):
            await opened(spec)
        return ids(batch)

    assert run(before_outage()) == [1, 2, 3]
    private_cluster.start()
    insert(endpoint, "items", 4)
    assert run(first_ids(spec)) == [3, 4]


def test_postgresql_tables_are_an_ordered_source_kind() -> None:
    kind = SOURCE_KINDS["postgresql"]
    assert (kind.service, getattr(kind, "ordered", False)) == ("postgresql", True)
    assert kind.source(spec_for(SERVER, "orders")).ordered


def test_writers_without_rights_on_the_lambdad_schema_are_captured(database: str, table: str) -> None:
    role = f"writer_{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[int]:
        source = await opened(spec_for(database, table))
        try:
            execute(
                database,
                f"CREATE ROLE {role} NOLOGIN",
                f"GRANT INSERT ON {table} TO {role}",
                f"SET ROLE {role}; INSERT INTO {table} VALUES (1, 'by a writer'); RESET ROLE",
            )
            return ids(await source.receive(10, 2))
        finally:
            await source.close()
            execute(database, f"DROP OWNED BY {role}", f"DROP ROLE IF EXISTS {role}")

    assert run(scenario()) == [1]


def test_a_table_dropped_and_created_again_is_captured_again(database: str, table: str) -> None:
    async def scenario() -> list[int]:
        source = await opened(spec_for(database, table))
        source.capture_check_interval = 0
        try:
            execute(
                database, f"DROP TABLE {table}", f"CREATE TABLE {table} (id integer PRIMARY KEY, name text)"
            )
            assert await source.receive(10, 0) == []  # notices the missing trigger and installs it again
            insert(database, table, 7)
            return ids(await source.receive(10, 2))
        finally:
            await source.close()

    assert run(scenario()) == [7]


def test_a_table_dropped_under_an_open_source_is_unavailable(database: str, table: str) -> None:
    async def scenario() -> None:
        source = await opened(spec_for(database, table))
        source.capture_check_interval = 0
        try:
            execute(database, f"DROP TABLE {table}")
            with pytest.raises(SourceUnavailable, match="does not exist"):
                await source.receive(10, 0.5)
        finally:
            await source.close()

    run(scenario())


@pytest.mark.parametrize(
    ("columns", "values", "size"),
    [
        # AWS's recorded records (tests/aws-recordings/.../test_lambda_integration_dynamodbstreams):
        # Keys + NewImage of an INSERT.
        ("id text PRIMARY KEY, id2 text", "'id_value', 'id2_value'", 32),
        ("my_partition_key text PRIMARY KEY, binary_key bytea", "'hello world', 'foobar'::bytea", 70),
    ],
)
def test_size_bytes_adds_up_as_dynamodb_counts_an_items_size(
    database: str, columns: str, values: str, size: int
) -> None:
    name = f"sized_{uuid.uuid4().hex[:8]}"
    execute(database, f"CREATE TABLE {name} ({columns})")

    async def scenario() -> list[int]:
        source = await opened(spec_for(database, name))
        try:
            execute(database, f"INSERT INTO {name} VALUES ({values})")
            return [m.record["dynamodb"]["SizeBytes"] for m in await source.receive(10, 2)]
        finally:
            await source.close()

    assert run(scenario()) == [size]
