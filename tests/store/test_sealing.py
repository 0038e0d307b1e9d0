"""Environment variables at rest, on SQLite and PostgreSQL: sealed in their row and bound to their
function; rows an older lambdad wrote in plain text sealed at start; a foreign key ring refused, a
rotated one accepted."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from lambdad.store import Database
from lambdad.store import functions as records
from lambdad.store.keyring import KeyRing, KeyRingError
from lambdad.store.schema import function_versions, key_ring
from lambdad.store.sealing import RingRefused, open_store
from tests.store.test_database import SCOPE, version

SECRET = "hunter2-" + secrets.token_hex(8)


def ring(*keys: bytes) -> KeyRing:
    return KeyRing(list(keys) or [secrets.token_bytes(32)])


@pytest.fixture
def sealed_with() -> Iterator[list[Database]]:
    """Databases opened with a key ring by the test (disposed afterwards)."""
    opened: list[Database] = []
    yield opened
    for database in opened:
        database.dispose()


def with_ring(database: Database, key_ring_: KeyRing, opened: list[Database]) -> Database:
    """The same database, its connections carrying ``key_ring_`` (as the server opens it)."""
    sealed = Database(database.url, key_ring_)
    opened.append(sealed)
    return sealed


def stored_environment(database: Database, name: str) -> object:
    with database.read() as connection:
        config = connection.execute(
            select(function_versions.c.config).where(function_versions.c.function_name == name)
        ).scalar_one()
    return dict(config)["environment"]


def test_variables_are_sealed_in_their_row_and_open_for_their_function_only(
    database: Database, sealed_with: list[Database]
) -> None:
    store = with_ring(database, ring(), sealed_with)
    with store.write() as connection:
        records.insert_function(
            connection, SCOPE, version("a", environment={"TOKEN": SECRET}), datetime.now(UTC)
        )
        records.insert_function(
            connection, SCOPE, version("b", environment={"OTHER": "x"}), datetime.now(UTC)
        )
    sealed = stored_environment(database, "a")
    assert isinstance(sealed, str) and SECRET not in sealed
    with store.read() as connection:
        found = records.get_version(connection, SCOPE, "a")
        assert found is not None and found.environment == {"TOKEN": SECRET}
    # A's sealed variables moved into B's row do not open there.
    with database.write() as connection:
        config = dict(
            connection.execute(
                select(function_versions.c.config).where(function_versions.c.function_name == "b")
            ).scalar_one()
        )
        config["environment"] = sealed
        connection.execute(
            update(function_versions).where(function_versions.c.function_name == "b").values(config=config)
        )
    with store.read() as connection, pytest.raises(KeyRingError, match="belongs elsewhere"):
        records.get_version(connection, SCOPE, "b")


def test_plain_rows_are_sealed_at_start_and_the_ring_recorded(
    database: Database, sealed_with: list[Database], tmp_path: Path
) -> None:
    with database.write() as connection:  # as an older lambdad wrote it
        records.insert_function(
            connection, SCOPE, version("old", environment={"TOKEN": SECRET}), datetime.now(UTC)
        )
    assert stored_environment(database, "old") == {"TOKEN": SECRET}
    first = ring()
    store = with_ring(database, first, sealed_with)
    assert open_store(store, first, tmp_path / "ring") == 1
    assert SECRET not in str(stored_environment(database, "old"))
    with store.read() as connection:
        found = records.get_version(connection, SCOPE, "old")
        assert found is not None and found.environment == {"TOKEN": SECRET}
        assert connection.execute(select(key_ring.c.key_id)).scalar_one() == first.key_id
    assert open_store(store, first, tmp_path / "ring") == 0  # nothing left to seal
    if database.is_sqlite:  # vacuumed: the plain value is not left in free pages or the log either
        files = [Path(database.url.removeprefix("sqlite:///"))]
        files += [files[0].with_name(files[0].name + suffix) for suffix in ("-wal", "-journal")]
        for path in files:
            if path.exists():
                assert SECRET.encode() not in path.read_bytes(), path


def test_another_ring_is_refused_and_a_rotated_one_reseals(
    database: Database, sealed_with: list[Database], tmp_path: Path
) -> None:
    old_key, new_key = secrets.token_bytes(32), secrets.token_bytes(32)
    old = ring(old_key)
    store = with_ring(database, old, sealed_with)
    open_store(store, old, tmp_path / "ring")
    with store.write() as connection:
        records.insert_function(
            connection, SCOPE, version("f", environment={"TOKEN": SECRET}), datetime.now(UTC)
        )
    stranger = ring()
    with pytest.raises(RingRefused) as refused:
        open_store(with_ring(database, stranger, sealed_with), stranger, tmp_path / "ring")
    message = str(refused.value)
    assert f"key {stranger.key_id}" in message and f"(key {old.key_id})" in message
    assert str(tmp_path / "ring") in message and "\n" not in message
    # Rotation: a new first key, the old one kept; everything is sealed again under the new key.
    rotated = ring(new_key, old_key)
    store = with_ring(database, rotated, sealed_with)
    assert open_store(store, rotated, tmp_path / "ring") == 1
    assert str(stored_environment(database, "f")).split(":")[1] == rotated.key_id
    with store.read() as connection:
        found = records.get_version(connection, SCOPE, "f")
        assert found is not None and found.environment == {"TOKEN": SECRET}
    # Now the old ring alone no longer opens this data.
    with pytest.raises(RingRefused):
        open_store(with_ring(database, old, sealed_with), old, tmp_path / "ring")
