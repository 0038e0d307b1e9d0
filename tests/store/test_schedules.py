"""Schedule groups and schedules in the store, on SQLite and PostgreSQL: the slot claim is a
compare-and-set, a group's deletion takes its schedules, times come back aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lambdad.models import Scope
from lambdad.store import Database
from lambdad.store import schedules as records
from lambdad.store.schedules import DEFAULT_GROUP, GroupRecord, ScheduleRecord

REGION = "us-east-1"
SCOPE = Scope("000000000000", REGION)
NOW = datetime(2026, 12, 1, 12, 0, 0, 123000, tzinfo=UTC)


def schedule(name: str, group: str = DEFAULT_GROUP, state: str = "ENABLED") -> ScheduleRecord:
    config = {"ScheduleExpression": "rate(1 minute)", "Target": {"Arn": "arn:aws:lambda:x"}}
    return ScheduleRecord(SCOPE, group, name, state, config, NOW, NOW)


def test_a_slot_is_claimed_once(database: Database) -> None:
    slot = NOW + timedelta(minutes=1)
    with database.write() as connection:
        records.ensure_default_group(connection, SCOPE, NOW)
        records.insert_schedule(connection, schedule("s"))
    with database.write() as connection:
        assert records.claim_slot(connection, SCOPE, DEFAULT_GROUP, "s", None, slot, NOW)
    with database.write() as connection:
        # A second claimant that read the schedule before the first claim loses.
        assert not records.claim_slot(connection, SCOPE, DEFAULT_GROUP, "s", None, slot, NOW)
        following = slot + timedelta(minutes=1)
        assert records.claim_slot(connection, SCOPE, DEFAULT_GROUP, "s", slot, following, NOW)
        assert not records.claim_slot(connection, SCOPE, DEFAULT_GROUP, "s", slot, following, NOW)
        assert not records.claim_slot(connection, SCOPE, DEFAULT_GROUP, "gone", None, slot, NOW)
    with database.read() as connection:
        stored = records.get_schedule(connection, SCOPE, DEFAULT_GROUP, "s")
    assert stored is not None
    assert stored.last_slot == slot + timedelta(minutes=1)
    assert stored.last_fired_at == NOW and stored.created_at == NOW


def test_deleting_a_group_deletes_its_schedules(database: Database) -> None:
    with database.write() as connection:
        records.ensure_default_group(connection, SCOPE, NOW)
        records.insert_group(connection, GroupRecord(SCOPE, "g", NOW, NOW))
        records.insert_schedule(connection, schedule("a", "g"))
        records.insert_schedule(connection, schedule("b", "g", state="DISABLED"))
        records.insert_schedule(connection, schedule("a"))
    with database.read() as connection:
        assert [s.name for s in records.list_schedules(connection, SCOPE, "g")] == ["a", "b"]
        assert [s.name for s in records.list_schedules(connection, SCOPE, state="DISABLED")] == ["b"]
        assert [s.name for s in records.list_schedules(connection, SCOPE, prefix="b")] == ["b"]
        assert records.count_schedules(connection, SCOPE) == 3
    with database.write() as connection:
        records.delete_group(connection, SCOPE, "g")
    with database.read() as connection:
        assert [(s.group_name, s.name) for s in records.all_schedules(connection)] == [(DEFAULT_GROUP, "a")]
        assert [g.name for g in records.list_groups(connection, SCOPE)] == [DEFAULT_GROUP]


def test_replacing_a_schedule_keeps_its_firing_bookkeeping(database: Database) -> None:
    slot = NOW + timedelta(minutes=1)
    with database.write() as connection:
        records.ensure_default_group(connection, SCOPE, NOW)
        records.insert_schedule(connection, schedule("s"))
        records.claim_slot(connection, SCOPE, DEFAULT_GROUP, "s", None, slot, NOW)
        records.record_result(connection, SCOPE, DEFAULT_GROUP, "s", "Invoked (Event)")
        later = NOW + timedelta(hours=1)
        changed = ScheduleRecord(
            SCOPE, DEFAULT_GROUP, "s", "DISABLED", {"ScheduleExpression": "x"}, later, later
        )
        records.replace_schedule(connection, changed)
    with database.read() as connection:
        stored = records.get_schedule(connection, SCOPE, DEFAULT_GROUP, "s")
    assert stored is not None
    assert (stored.state, stored.config, stored.last_modified) == (
        "DISABLED",
        {"ScheduleExpression": "x"},
        later,
    )
    assert stored.created_at == NOW, "creation date is not replaced"
    assert (stored.last_slot, stored.last_result) == (slot, "Invoked (Event)")
