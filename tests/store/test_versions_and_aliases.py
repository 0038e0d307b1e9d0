"""Published versions and aliases in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from lambdad.models import Alias
from lambdad.store import Database
from lambdad.store import aliases as alias_records
from lambdad.store import functions as records
from tests.store.test_database import SCOPE, version


def test_versions_number_upwards_sort_numerically_and_are_never_reused(database: Database) -> None:
    with database.write() as connection:
        records.insert_function(connection, SCOPE, version("f"), datetime.now(UTC))
        for _ in range(11):
            number = records.next_version_number(connection, SCOPE, "f")
            records.insert_version(connection, SCOPE, version("f", version=str(number), config_revision="r"))
    with database.write() as connection:
        assert records.delete_version(connection, SCOPE, "f", "11")
        assert not records.delete_version(connection, SCOPE, "f", "11")
        assert records.next_version_number(connection, SCOPE, "f") == 12
    with database.read() as connection:
        page = records.function_versions_page(connection, SCOPE, "f", after=None, limit=4)
        assert [v.version for v in page] == ["$LATEST", "1", "2", "3"]
        rest = records.function_versions_page(connection, SCOPE, "f", after="9", limit=10)
        assert [v.version for v in rest] == ["10"]
        newest = records.newest_published(connection, SCOPE, "f")
        assert newest is not None and (newest.version, newest.config_revision) == ("10", "r")
        everything = records.list_versions(connection, SCOPE, after=("f", "2"), limit=3, all_versions=True)
        assert [v.version for v in everything] == ["3", "4", "5"]


def test_aliases_round_trip_and_go_with_their_function(database: Database) -> None:
    alias = Alias("g", "live", "1", "rev-1", "the live one", {"2": 0.25})
    with database.write() as connection:
        records.insert_function(connection, SCOPE, version("g"), datetime.now(UTC))
        alias_records.insert_alias(connection, SCOPE, alias)
        alias_records.insert_alias(connection, SCOPE, Alias("g", "beta", "$LATEST", "rev-2"))
    with database.read() as connection:
        assert alias_records.get_alias(connection, SCOPE, "g", "live") == alias
        assert [a.name for a in alias_records.list_aliases(connection, SCOPE, "g")] == ["beta", "live"]
        assert [a.name for a in alias_records.list_aliases(connection, SCOPE, "g", after="beta")] == ["live"]
    with database.write() as connection:
        alias_records.save_alias(connection, SCOPE, alias.evolve(additional_weights={}, revision_id="rev-3"))
    with database.read() as connection:
        saved = alias_records.get_alias(connection, SCOPE, "g", "live")
        assert saved is not None and saved.additional_weights == {} and saved.revision_id == "rev-3"
    with database.write() as connection:
        records.delete_function(connection, SCOPE, "g")
    with database.read() as connection:
        assert alias_records.list_aliases(connection, SCOPE, "g") == []
