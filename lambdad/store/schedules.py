"""Queries on schedule groups and schedules (EventBridge Scheduler). Each takes the transaction's
connection; ``claim_slot`` is the compare-and-set that keeps a slot from firing twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from lambdad.models import Scope
from lambdad.store.records import as_utc
from lambdad.store.schema import schedule_groups as groups
from lambdad.store.schema import schedules
from lambdad.store.scoping import in_scope, scope_of, scoped

DEFAULT_GROUP = "default"


@dataclass(frozen=True)
class GroupRecord:
    """A schedule group as stored."""

    scope: Scope
    name: str
    created_at: datetime
    last_modified: datetime


@dataclass(frozen=True)
class ScheduleRecord:
    """A schedule as stored: AWS's members in ``config``, plus lambdad's firing bookkeeping."""

    scope: Scope
    group_name: str
    name: str
    state: str
    config: dict[str, Any]
    created_at: datetime
    last_modified: datetime
    client_token: str | None = None
    last_slot: datetime | None = None
    last_fired_at: datetime | None = None
    last_result: str | None = field(default=None)

    @property
    def region(self) -> str:
        return self.scope.region


# --- groups ------------------------------------------------------------------------------------------


def ensure_default_group(connection: Connection, scope: Scope, now: datetime) -> None:
    """Make the region's ``default`` group if it is not there yet (it always exists on AWS)."""
    if get_group(connection, scope, DEFAULT_GROUP) is None:
        insert_group(connection, GroupRecord(scope, DEFAULT_GROUP, now, now))


def insert_group(connection: Connection, group: GroupRecord) -> None:
    """Store a new group."""
    connection.execute(
        insert(groups).values(
            **scoped(group.scope),
            name=group.name,
            created_at=group.created_at,
            last_modified=group.last_modified,
        )
    )


def get_group(connection: Connection, scope: Scope, name: str) -> GroupRecord | None:
    """One group, or None."""
    row = connection.execute(select(groups).where(in_scope(groups, scope), groups.c.name == name)).first()
    if row is None:
        return None
    return GroupRecord(scope_of(row), row.name, as_utc(row.created_at), as_utc(row.last_modified))


def list_groups(connection: Connection, scope: Scope, prefix: str | None = None) -> list[GroupRecord]:
    """The region's groups by name."""
    query = select(groups).where(in_scope(groups, scope)).order_by(groups.c.name)
    if prefix:
        query = query.where(groups.c.name.startswith(prefix, autoescape=True))
    return [
        GroupRecord(scope_of(row), row.name, as_utc(row.created_at), as_utc(row.last_modified))
        for row in connection.execute(query)
    ]


def delete_group(connection: Connection, scope: Scope, name: str) -> None:
    """Remove a group and its schedules."""
    connection.execute(delete(schedules).where(in_scope(schedules, scope), schedules.c.group_name == name))
    connection.execute(delete(groups).where(in_scope(groups, scope), groups.c.name == name))


def count_schedules(connection: Connection, scope: Scope) -> int:
    """How many schedules the region holds (AWS's quota counts them per account and region)."""
    query = select(func.count()).select_from(schedules).where(in_scope(schedules, scope))
    return int(connection.execute(query).scalar_one())


# --- schedules ---------------------------------------------------------------------------------------


def insert_schedule(connection: Connection, record: ScheduleRecord) -> None:
    """Store a new schedule."""
    connection.execute(insert(schedules).values(**_values(record)))


def replace_schedule(connection: Connection, record: ScheduleRecord) -> None:
    """Overwrite a schedule's members (UpdateSchedule); its firing bookkeeping stays."""
    values = _values(record)
    for kept in (
        "account",
        "region",
        "group_name",
        "name",
        "created_at",
        "last_slot",
        "last_fired_at",
        "last_result",
    ):
        values.pop(kept)
    connection.execute(
        update(schedules).where(*_key(record.scope, record.group_name, record.name)).values(**values)
    )


def get_schedule(connection: Connection, scope: Scope, group: str, name: str) -> ScheduleRecord | None:
    """One schedule, or None."""
    row = connection.execute(select(schedules).where(*_key(scope, group, name))).first()
    return _from_row(row) if row else None


def list_schedules(
    connection: Connection,
    scope: Scope,
    group: str | None = None,
    prefix: str | None = None,
    state: str | None = None,
) -> list[ScheduleRecord]:
    """The region's schedules by group and name, filtered."""
    query = (
        select(schedules).where(in_scope(schedules, scope)).order_by(schedules.c.group_name, schedules.c.name)
    )
    if group is not None:
        query = query.where(schedules.c.group_name == group)
    if prefix:
        query = query.where(schedules.c.name.startswith(prefix, autoescape=True))
    if state is not None:
        query = query.where(schedules.c.state == state)
    return [_from_row(row) for row in connection.execute(query)]


def all_schedules(connection: Connection) -> list[ScheduleRecord]:
    """Every schedule of every region (what the firing loop watches)."""
    query = select(schedules).order_by(
        schedules.c.account, schedules.c.region, schedules.c.group_name, schedules.c.name
    )
    return [_from_row(row) for row in connection.execute(query)]


def delete_schedule(connection: Connection, scope: Scope, group: str, name: str) -> bool:
    """Remove one schedule; False if there was none."""
    return bool(connection.execute(delete(schedules).where(*_key(scope, group, name))).rowcount)


def claim_slot(
    connection: Connection,
    scope: Scope,
    group: str,
    name: str,
    expected: datetime | None,
    slot: datetime,
    fired_at: datetime,
) -> bool:
    """Record ``slot`` as fired if the schedule's last slot is still ``expected`` (compare-and-set);
    False when another claim (or a delete) got there first."""
    current = schedules.c.last_slot.is_(None) if expected is None else schedules.c.last_slot == expected
    result = connection.execute(
        update(schedules)
        .where(*_key(scope, group, name), current)
        .values(last_slot=slot, last_fired_at=fired_at)
    )
    return bool(result.rowcount)


def record_result(connection: Connection, scope: Scope, group: str, name: str, result: str) -> None:
    """Note how the last firing went."""
    connection.execute(update(schedules).where(*_key(scope, group, name)).values(last_result=result[:512]))


def _key(scope: Scope, group: str, name: str) -> tuple[Any, ...]:
    return (in_scope(schedules, scope), schedules.c.group_name == group, schedules.c.name == name)


def _values(record: ScheduleRecord) -> dict[str, Any]:
    return {
        **scoped(record.scope),
        "group_name": record.group_name,
        "name": record.name,
        "state": record.state,
        "config": record.config,
        "created_at": record.created_at,
        "last_modified": record.last_modified,
        "client_token": record.client_token,
        "last_slot": record.last_slot,
        "last_fired_at": record.last_fired_at,
        "last_result": record.last_result,
    }


def _maybe_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


def _from_row(row: Any) -> ScheduleRecord:
    return ScheduleRecord(
        scope=scope_of(row),
        group_name=row.group_name,
        name=row.name,
        state=row.state,
        config=dict(row.config),
        created_at=as_utc(row.created_at),
        last_modified=as_utc(row.last_modified),
        client_token=row.client_token,
        last_slot=_maybe_utc(row.last_slot),
        last_fired_at=_maybe_utc(row.last_fired_at),
        last_result=row.last_result,
    )
