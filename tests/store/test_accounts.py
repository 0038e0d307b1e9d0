"""Several accounts in one store: every Lambda and Scheduler resource is kept per account, so two accounts'
functions (layers, schedules, ...) of one name are two resources; and the migration that keyed them by
account gives the rows stored before it to the server's configured account."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, column, insert, select, table

from lambdad.models import Alias, CodePackage, Scope
from lambdad.store import Database
from lambdad.store import aliases as alias_records
from lambdad.store import event_source_mappings as mapping_records
from lambdad.store import functions as records
from lambdad.store import layers as layer_records
from lambdad.store import networks as network_records
from lambdad.store import schedules as schedule_records
from lambdad.store.database import _MIGRATIONS
from lambdad.store.function_configs import Policy, get_policy, save_policy
from lambdad.store.layers import LayerVersion
from lambdad.store.records import alias_to_row, version_to_row
from lambdad.store.schedules import DEFAULT_GROUP, GroupRecord, ScheduleRecord
from lambdad.store.schema import metadata
from tests.store.conftest import fresh_postgres
from tests.store.test_database import version

A = Scope("111111111111", "us-east-1")
B = Scope("222222222222", "us-east-1")
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_two_accounts_keep_functions_of_one_name_apart(database: Database) -> None:
    with database.write() as connection:
        records.insert_function(connection, A, version("f", handler="a.handler"), NOW)
        assert not records.function_exists(connection, B, "f")
        records.insert_function(connection, B, version("f", handler="b.handler"), NOW)
        alias_records.insert_alias(connection, A, Alias("f", "live", "$LATEST", "r1"))
        save_policy(connection, B, "f", "", Policy([{"Sid": "b-only"}], "rev"))
    with database.read() as connection:
        found_a, found_b = records.get_version(connection, A, "f"), records.get_version(connection, B, "f")
        assert (found_a and found_a.handler, found_b and found_b.handler) == ("a.handler", "b.handler")
        listed = records.list_versions(connection, A, after=None, limit=10, all_versions=True)
        assert [(v.name, v.handler) for v in listed] == [("f", "a.handler")]
        assert alias_records.get_alias(connection, B, "f", "live") is None
        assert get_policy(connection, A, "f", "") is None
        assert records.usage(connection, A)[0] == 1
    with database.write() as connection:
        records.delete_function(connection, A, "f")
    with database.read() as connection:
        assert records.get_version(connection, A, "f") is None
        kept = records.get_version(connection, B, "f")
        assert kept is not None and kept.handler == "b.handler"
        policy = get_policy(connection, B, "f", "")
        assert policy is not None and policy.statements == [{"Sid": "b-only"}]


def test_layers_and_schedules_of_one_name_are_each_accounts_own(database: Database) -> None:
    with database.write() as connection:
        for scope in (A, B):
            number = layer_records.next_version_number(connection, scope, "shared")
            assert number == 1  # each account numbers its own layer's versions
            layer = LayerVersion("shared", number, CodePackage("ab" * 32, 5, 9), NOW)
            layer_records.insert_version(connection, scope, layer)
            schedule_records.ensure_default_group(connection, scope, NOW)
        schedule_records.insert_group(connection, GroupRecord(A, "nightly", NOW, NOW))
        config = {"ScheduleExpression": "rate(1 minute)", "Target": {"Arn": "arn:aws:lambda:x"}}
        schedule_records.insert_schedule(
            connection, ScheduleRecord(A, DEFAULT_GROUP, "tick", "ENABLED", config, NOW, NOW)
        )
    with database.read() as connection:
        assert [g.name for g in schedule_records.list_groups(connection, B)] == [DEFAULT_GROUP]
        assert schedule_records.get_schedule(connection, B, DEFAULT_GROUP, "tick") is None
        assert [s.scope for s in schedule_records.all_schedules(connection)] == [A]
    with database.write() as connection:
        layer_records.delete_version(connection, A, "shared", 1)
    with database.read() as connection:
        assert layer_records.get_version(connection, A, "shared", 1) is None
        assert layer_records.get_version(connection, B, "shared", 1) is not None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no schema yet, of each kind lambdad supports."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'old.db'}")
        yield db
        db.dispose()
        return
    with fresh_postgres(migrate=False) as db:
        yield db


def _upgrade_to_before_accounts(database: Database) -> None:
    """The schema as the lambdad before accounts left it: every revision the accounts migration follows."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    before = ScriptDirectory.from_config(config).get_revision("0010_accounts").down_revision
    assert isinstance(before, tuple)
    with database.write() as connection:
        config.attributes["connection"] = connection
        for revision in before:
            command.upgrade(config, revision)


def _insert_old(connection: Connection, table_name: str, /, **row: Any) -> None:
    """A row as the older schema holds it (no ``account``), with today's column types."""
    types = metadata.tables[table_name].c
    old = table(table_name, *(column(key, types[key].type) for key in row))
    connection.execute(insert(old).values(**row))


def test_the_migration_gives_existing_rows_to_the_configured_account(empty_database: Database) -> None:
    database = empty_database
    _upgrade_to_before_accounts(database)
    old = Scope("000000000000", "us-east-1")
    latest = version("old", handler="old.handler")
    with database.write() as connection:
        _insert_old(connection, "functions", region="us-east-1", name="old", created_at=NOW, last_version=0)
        row = version_to_row(old, latest)
        del row["account"]
        _insert_old(connection, "function_versions", **row)
        alias = alias_to_row(old, Alias("old", "live", "$LATEST", "r1"))
        del alias["account"]
        _insert_old(connection, "aliases", **alias)
        _insert_old(connection, "layers", region="us-east-1", name="lib", last_version=1)
        _insert_old(
            connection,
            "layer_versions",
            region="us-east-1",
            layer_name="lib",
            version=1,
            description="",
            code_sha256="ab" * 32,
            code_size=5,
            unzipped_size=9,
            created_at=NOW,
            policy=[],
        )
        _insert_old(
            connection, "schedule_groups", region="us-east-1", name="g", created_at=NOW, last_modified=NOW
        )
        _insert_old(
            connection,
            "schedules",
            region="us-east-1",
            group_name="g",
            name="s",
            state="ENABLED",
            config={"ScheduleExpression": "rate(1 minute)"},
            created_at=NOW,
            last_modified=NOW,
        )
        _insert_old(
            connection,
            "event_source_mappings",
            uuid="m1",
            region="us-east-1",
            function_arn="arn:aws:lambda:us-east-1:123456789012:function:old",
            event_source_arn="arn:aws:sqs:us-east-1:123456789012:q",
            state="Enabled",
            state_transition_reason="USER_INITIATED",
            enabled=1,
            last_modified=NOW,
            config={},
        )
        old_region = {"region": "us-east-1", "created_at": NOW, "tags": {}}
        _insert_old(connection, "vpcs", vpc_id="vpc-1", cidr_block="10.0.0.0/16", **old_region)
        subnet = {"subnet_id": "subnet-1", "vpc_id": "vpc-1", "cidr_block": "10.0.1.0/24"}
        _insert_old(connection, "subnets", availability_zone="us-east-1a", **subnet, **old_region)
        group = {"group_id": "sg-1", "vpc_id": "vpc-1", "group_name": "web", "description": ""}
        _insert_old(connection, "security_groups", **group, **old_region)
        _insert_old(
            connection,
            "security_group_rules",
            region="us-east-1",
            rule_id="sgr-1",
            group_id="sg-1",
            is_egress=True,
            ip_protocol="-1",
            from_port=-1,
            to_port=-1,
            cidr_ipv4="0.0.0.0/0",
            description="",
            created_at=NOW,
        )
    database.migrate("123456789012")  # the server's configured account (--account-id)

    configured = Scope("123456789012", "us-east-1")
    with database.read() as connection:
        carried = records.get_version(connection, configured, "old")
        assert carried is not None and carried.handler == "old.handler"
        assert records.get_version(connection, old, "old") is None
        assert alias_records.get_alias(connection, configured, "old", "live") is not None
        assert layer_records.get_version(connection, configured, "lib", 1) is not None
        assert schedule_records.get_schedule(connection, configured, "g", "s") is not None
        assert [m.scope for m in mapping_records.list_mappings(connection)] == [configured]
        assert [v.vpc_id for v in network_records.list_vpcs(connection, configured)] == ["vpc-1"]
        assert [r.rule_id for r in network_records.list_rules(connection, configured, ["sg-1"])] == ["sgr-1"]
        carried_tables = (
            "functions",
            "function_versions",
            "aliases",
            "layers",
            "layer_versions",
            "schedules",
        )
        for name in (*carried_tables, "vpcs", "subnets", "security_groups", "security_group_rules"):
            accounts = connection.execute(select(metadata.tables[name].c.account).distinct()).scalars()
            assert list(accounts) == ["123456789012"], name
    with database.write() as connection:  # the carried rows still cascade from their function
        records.delete_function(connection, configured, "old")
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
