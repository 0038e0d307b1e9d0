"""PostgreSQL row-change event source mappings end to end: a real lambdad, the real PostgreSQL server (a
database of this module's own), functions in real sandboxes reacting to INSERT, MODIFY and REMOVE."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.brokers import postgres_database
from tests.e2e.invoke_support import eventually
from tests.e2e.mapping_support import gone, server_with_event_sources, wait_state
from tests.e2e.stream_support import Collector, collector, deploy_collecting_function
from tests.support import Server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_database("lambdad_e2e") as url:
        yield url


@pytest.fixture(scope="module")
def collect() -> Iterator[Collector]:
    with collector() as running:
        yield running


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with server_with_event_sources(tmp_path_factory.mktemp("lambdad"), f"postgresql={database}") as running:
        yield running


def execute(endpoint: str, *statements: str) -> None:
    with psycopg.connect(endpoint, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


def capturing(endpoint: str, table: str) -> bool:
    """Whether lambdad's trigger is installed on the table (the mapping's poller has opened)."""
    with psycopg.connect(endpoint) as connection:
        query = "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s"
        row = connection.execute(query, [table, "lambdad_capture_changes"]).fetchone()
        return bool(row and row[0])


@pytest.fixture
def table(database: str) -> str:
    name = f"orders_{uuid.uuid4().hex[:8]}"
    execute(database, f"CREATE TABLE {name} (id integer PRIMARY KEY, item text, amount numeric, fail text)")
    return name


def table_arn(table: str) -> str:
    return f"arn:aws:postgresql:us-east-1:000000000000:table/public.{table}"


def changes(collect: Collector, function: str) -> list[tuple[str, Any, Any, Any]]:
    """(eventName, key, new item, old item) per record the function received."""
    return [
        (
            record["eventName"],
            record["dynamodb"]["Keys"]["id"]["N"],
            record["dynamodb"].get("NewImage", {}).get("item", {}).get("S"),
            record["dynamodb"].get("OldImage", {}).get("item", {}).get("S"),
        )
        for record in collect.records(function)
    ]


def mapped(server: Server, database: str, table: str, function: str, **params: Any) -> dict[str, Any]:
    """A mapping from the table to the function, once its poller captures the table's changes."""
    client = server.client()
    mapping = client.create_event_source_mapping(
        EventSourceArn=table_arn(table), FunctionName=function, StartingPosition="TRIM_HORIZON", **params
    )
    wait_state(client, mapping["UUID"], "Enabled", timeout=30)
    eventually(lambda: capturing(database, table), timeout=30)
    return dict(mapping)


def test_a_function_reacts_to_inserts_modifications_and_removals(
    server: Server, database: str, collect: Collector, table: str
) -> None:
    function = deploy_collecting_function(server, collect, "pg-fn")
    mapping = mapped(server, database, table, function, MaximumBatchingWindowInSeconds=1)
    execute(
        database,
        f"INSERT INTO {table} VALUES (1, 'pen', 2.50), (2, 'ink', 7)",
        f"UPDATE {table} SET item = 'red pen' WHERE id = 1",
        f"DELETE FROM {table} WHERE id = 2",
    )
    eventually(lambda: len(collect.records(function)) == 4, timeout=30)
    assert changes(collect, function) == [
        ("INSERT", "1", "pen", None),
        ("INSERT", "2", "ink", None),
        ("MODIFY", "1", "red pen", "pen"),
        ("REMOVE", "2", None, "ink"),
    ]
    first = collect.records(function)[0]
    assert first["eventSource"] == "aws:dynamodb"
    assert first["eventSourceARN"] == table_arn(table)
    assert first["dynamodb"]["NewImage"]["amount"] == {"N": "2.50"}
    server.client().delete_event_source_mapping(UUID=mapping["UUID"])


def test_a_failed_change_is_delivered_again_before_later_ones(
    server: Server, database: str, collect: Collector, table: str
) -> None:
    function = deploy_collecting_function(server, collect, "pg-fn")
    mapping = mapped(
        server,
        database,
        table,
        function,
        BatchSize=3,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    execute(database, f"INSERT INTO {table} VALUES (1, 'a', 1, NULL), (2, 'b', 1, 'once'), (3, 'c', 1, NULL)")
    eventually(lambda: len(collect.batches(function)) >= 2, timeout=30)
    execute(database, f"INSERT INTO {table} VALUES (4, 'd', 1, NULL)")
    eventually(lambda: "4" in [key for _, key, _, _ in changes(collect, function)], timeout=30)
    assert [key for _, key, _, _ in changes(collect, function)] == ["1", "2", "3", "2", "3", "4"]
    server.client().delete_event_source_mapping(UUID=mapping["UUID"])


def test_a_change_that_keeps_failing_goes_to_a_postgresql_on_failure_destination(
    server: Server, database: str, collect: Collector, table: str
) -> None:
    function = deploy_collecting_function(server, collect, "pg-fn")
    failures = f"failures_{uuid.uuid4().hex[:8]}"
    mapping = mapped(
        server,
        database,
        table,
        function,
        BatchSize=1,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": table_arn(failures)}},
    )
    execute(database, f"INSERT INTO {table} VALUES (1, 'poison', 1, 'always')")

    def failure_rows() -> list[Any]:
        with psycopg.connect(database) as connection:
            if connection.execute("SELECT to_regclass(%s)", [failures]).fetchone() == (None,):
                return []
            return [row[0] for row in connection.execute(f"SELECT body FROM {failures}").fetchall()]

    rows = eventually(failure_rows, timeout=30)
    record = json.loads(rows[0])
    assert record["DDBStreamBatchInfo"]["streamArn"] == table_arn(table)
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    server.client().delete_event_source_mapping(UUID=mapping["UUID"])


def test_changes_made_while_lambdad_is_stopped_are_delivered_after_it_restarts(
    tmp_path: Path, database: str, collect: Collector, table: str
) -> None:
    with server_with_event_sources(tmp_path, f"postgresql={database}") as server:
        function = deploy_collecting_function(server, collect, "pg-fn")
        mapped(server, database, table, function)
        execute(database, f"INSERT INTO {table} VALUES (1, 'before', 1)")
        eventually(lambda: len(collect.records(function)) == 1, timeout=30)
        server.stop(timeout=60)
        execute(database, f"INSERT INTO {table} VALUES (2, 'while stopped', 1)")
    with server_with_event_sources(tmp_path, f"postgresql={database}"):
        eventually(lambda: len(collect.records(function)) == 2, timeout=30)
        assert [new for _, _, new, _ in changes(collect, function)] == ["before", "while stopped"]


def test_deleting_the_last_mapping_of_a_table_removes_its_trigger(
    server: Server, database: str, collect: Collector, table: str
) -> None:
    function = deploy_collecting_function(server, collect, "pg-fn")
    first = mapped(server, database, table, function)
    client = server.client()
    other = client.create_event_source_mapping(  # one mapping per table and function, as on AWS
        EventSourceArn=table_arn(table),
        FunctionName=deploy_collecting_function(server, collect, "pg-fn"),
        StartingPosition="LATEST",
    )
    eventually(lambda: client.get_event_source_mapping(UUID=other["UUID"])["State"] == "Enabled", timeout=30)
    client.delete_event_source_mapping(UUID=first["UUID"])
    eventually(lambda: gone(client, first["UUID"]), timeout=30)
    assert capturing(database, table)  # the other mapping still reads the table
    client.delete_event_source_mapping(UUID=other["UUID"])
    eventually(lambda: not capturing(database, table), timeout=30)
