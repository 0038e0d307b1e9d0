"""The store on SQLite and PostgreSQL: schema, queries, atomic transactions."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lambdad.models import CodePackage, FunctionLayer, FunctionState, FunctionVersion, Scope, UpdateStatus
from lambdad.store import Database
from lambdad.store import functions as records
from lambdad.store import tags as tag_records
from lambdad.store.schema import metadata

REGION = "us-east-1"
SCOPE = Scope("000000000000", REGION)


def version(name: str, **changes: object) -> FunctionVersion:
    base = FunctionVersion(
        name=name,
        version="$LATEST",
        runtime="python3.12",
        handler="h.h",
        role="arn:aws:iam::000000000000:role/r",
        code=CodePackage("ab" * 32, 10, 20),
        revision_id=str(uuid.uuid4()),
        last_modified=datetime(2026, 11, 25, 1, 2, 3, 456000, tzinfo=UTC),
        environment={"ENV_A": "1"},
        extra={"TracingConfig": {"Mode": "PassThrough"}},
    )
    return base.evolve(**changes)


def test_migrations_build_exactly_the_declared_schema(database: Database) -> None:
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_migrating_twice_changes_nothing(database: Database) -> None:
    database.migrate()


def test_versions_round_trip_with_every_field(database: Database) -> None:
    stored = version(
        "round-trip",
        state=FunctionState.ACTIVE,
        last_update_status=UpdateStatus.SUCCESSFUL,
        architectures=("arm64",),
        layers=(
            FunctionLayer("arn:aws:lambda:us-east-1:000000000000:layer:l:1", CodePackage("cd" * 32, 5, 9)),
        ),
    )
    with database.write() as connection:
        records.insert_function(connection, SCOPE, stored, stored.last_modified)
    with database.read() as connection:
        assert records.get_version(connection, SCOPE, "round-trip") == stored
        assert records.get_version(connection, Scope("000000000000", "eu-west-1"), "round-trip") is None


def test_failed_write_transaction_leaves_nothing(database: Database) -> None:
    with pytest.raises(RuntimeError), database.write() as connection:
        records.insert_function(connection, SCOPE, version("half"), datetime.now(UTC))
        tag_records.put_tags(connection, "arn:half", {"a": "b"})
        raise RuntimeError("crash mid-request")
    with database.read() as connection:
        assert not records.function_exists(connection, SCOPE, "half")
        assert tag_records.get_tags(connection, "arn:half") == {}


def test_listing_pages_in_name_order(database: Database) -> None:
    with database.write() as connection:
        for name in ["c", "a", "b", "d"]:
            records.insert_function(connection, SCOPE, version(name), datetime.now(UTC))
    with database.read() as connection:
        first = records.list_versions(connection, SCOPE, after=None, limit=2, all_versions=False)
        rest = records.list_versions(connection, SCOPE, after=("b", "$LATEST"), limit=10, all_versions=False)
        assert [v.name for v in first] == ["a", "b"]
        assert [v.name for v in rest] == ["c", "d"]
        assert records.usage(connection, SCOPE) == (4, 40)


def test_delete_removes_function_and_versions(database: Database) -> None:
    with database.write() as connection:
        records.insert_function(connection, SCOPE, version("gone"), datetime.now(UTC))
    with database.write() as connection:
        records.delete_function(connection, SCOPE, "gone")
    with database.read() as connection:
        assert records.get_version(connection, SCOPE, "gone") is None
        assert records.code_in_use(connection).packages == {}


def test_unsettled_versions_are_found_for_recovery(database: Database) -> None:
    with database.write() as connection:
        records.insert_function(connection, SCOPE, version("pending"), datetime.now(UTC))
        records.insert_function(
            connection,
            SCOPE,
            version("settled", state=FunctionState.ACTIVE, last_update_status=UpdateStatus.SUCCESSFUL),
            datetime.now(UTC),
        )
    with database.read() as connection:
        assert [v.name for _, v in records.pending_versions(connection)] == ["pending"]


def test_tags_merge_and_remove(database: Database) -> None:
    with database.write() as connection:
        tag_records.put_tags(connection, "arn:x", {"a": "1", "b": "2"})
        tag_records.put_tags(connection, "arn:x", {"b": "3"})
        tag_records.remove_tags(connection, "arn:x", ["a", "missing"])
    with database.read() as connection:
        assert tag_records.get_tags(connection, "arn:x") == {"b": "3"}


def test_concurrent_writers_queue_instead_of_failing(database: Database) -> None:
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for round_ in range(10):
                with database.write() as connection:
                    name = f"w{index}-{round_}"
                    records.insert_function(connection, SCOPE, version(name), datetime.now(UTC))
                    tag_records.put_tags(connection, f"arn:{name}", {"n": str(round_)})
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.read() as connection:
        assert records.usage(connection, SCOPE)[0] == 60


def test_code_in_use_counts_layer_versions_and_the_layers_functions_keep(database: Database) -> None:
    from lambdad.store import layers as layer_records
    from lambdad.store.layers import LayerVersion

    kept = FunctionLayer("arn:aws:lambda:us-east-1:000000000000:layer:old:1", CodePackage("ee" * 32, 5, 9))
    with database.write() as connection:
        records.insert_function(connection, SCOPE, version("layered", layers=(kept,)), datetime.now(UTC))
        number = layer_records.next_version_number(connection, SCOPE, "lib")
        published = LayerVersion("lib", number, CodePackage("ff" * 32, 5, 9), datetime.now(UTC))
        layer_records.insert_version(connection, SCOPE, published)
    with database.read() as connection:
        assert set(records.code_in_use(connection).packages) == {"ab" * 32, "ee" * 32, "ff" * 32}
        assert layer_records.get_version(connection, SCOPE, "lib", 1) == published
    with database.write() as connection:
        layer_records.delete_version(connection, SCOPE, "lib", 1)
        assert layer_records.next_version_number(connection, SCOPE, "lib") == 2, "never reused"
    with database.read() as connection:
        assert set(records.code_in_use(connection).packages) == {"ab" * 32, "ee" * 32}
