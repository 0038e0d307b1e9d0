"""Capacity provider and function scaling config queries, on SQLite and PostgreSQL."""

from __future__ import annotations

from lambdad.models import Scope, utcnow
from lambdad.store import Database
from lambdad.store import capacity_providers as records
from lambdad.store.capacity_providers import CapacityProviderRecord, ScalingRecord

REGION = "us-east-1"
SCOPE = Scope("000000000000", REGION)


def provider(name: str, state: str = "Pending") -> CapacityProviderRecord:
    return CapacityProviderRecord(name, state, {"VpcConfig": {"SubnetIds": ["subnet-1"]}}, utcnow())


def test_providers_page_in_name_order_and_filter_by_state(database: Database) -> None:
    with database.write() as connection:
        for name, state in (("b", "Active"), ("a", "Pending"), ("c", "Active")):
            records.insert_provider(connection, SCOPE, provider(name, state))
        records.insert_provider(connection, Scope("000000000000", "eu-west-1"), provider("z"))
    with database.read() as connection:
        assert [p.name for p in records.list_providers(connection, SCOPE, limit=10)] == ["a", "b", "c"]
        assert [p.name for p in records.list_providers(connection, SCOPE, after="a", limit=1)] == ["b"]
        active = records.list_providers(connection, SCOPE, state="Active", limit=10)
        assert [p.name for p in active] == ["b", "c"]
        assert records.count_providers(connection, SCOPE) == 3
        got = records.get_provider(connection, SCOPE, "a")
        assert got is not None and got.config == {"VpcConfig": {"SubnetIds": ["subnet-1"]}}
        assert sorted(records.unsettled(connection)) == [
            (Scope("000000000000", "eu-west-1"), "z", "Pending"),
            (SCOPE, "a", "Pending"),
        ]


def test_state_moves_only_from_the_expected_state(database: Database) -> None:
    with database.write() as connection:
        records.insert_provider(connection, SCOPE, provider("a"))
    with database.write() as connection:
        assert records.set_state(connection, SCOPE, "a", "Active", only_from="Pending")
    with database.write() as connection:
        # A second settler (another node) finds it already moved.
        assert not records.set_state(connection, SCOPE, "a", "Active", only_from="Pending")
        assert records.delete_provider(connection, SCOPE, "a")
        assert records.get_provider(connection, SCOPE, "a") is None


def test_scaling_configs_replace_and_go_with_their_function(database: Database) -> None:
    from lambdad.store.schema import functions

    with database.write() as connection:
        connection.execute(
            functions.insert().values(account=SCOPE.account, region=REGION, name="f", created_at=utcnow())
        )
        records.save_scaling(connection, SCOPE, ScalingRecord("f", "1", 1, 2, utcnow()))
        records.save_scaling(connection, SCOPE, ScalingRecord("f", "1", None, 5, utcnow()))
    with database.read() as connection:
        stored = records.get_scaling(connection, SCOPE, "f", "1")
        assert stored is not None and (stored.minimum, stored.maximum) == (None, 5)
        assert records.get_scaling(connection, SCOPE, "f", "2") is None
    with database.write() as connection:
        from lambdad.store import functions as function_records

        function_records.delete_function(connection, SCOPE, "f")
    with database.read() as connection:
        assert records.get_scaling(connection, SCOPE, "f", "1") is None
