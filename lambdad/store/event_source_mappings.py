"""Queries on event source mappings. Each takes the transaction's connection."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from lambdad.models import Scope
from lambdad.store.records import as_utc
from lambdad.store.schema import event_source_mappings as mappings
from lambdad.store.scoping import in_scope


@dataclass(frozen=True)
class MappingRecord:
    """One event source mapping as stored."""

    uuid: str
    account: str
    region: str
    # The function as the mapping names it (qualified or not): ``FunctionArn`` in AWS's answers.
    function_arn: str
    event_source_arn: str
    state: str
    state_transition_reason: str
    enabled: bool
    last_modified: datetime
    last_processing_result: str | None = None
    # BatchSize, MaximumBatchingWindowInSeconds, FilterCriteria, ... as AWS names them.
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def scope(self) -> Scope:
        """The account and region the mapping belongs to (and acts in)."""
        return Scope(self.account, self.region)

    def with_(self, **changes: Any) -> MappingRecord:
        """A copy with ``changes``."""
        return replace(self, **changes)


def insert_mapping(connection: Connection, record: MappingRecord) -> None:
    """Store a new mapping."""
    connection.execute(insert(mappings).values(**_values(record)))


def save_mapping(connection: Connection, record: MappingRecord) -> None:
    """Replace a stored mapping."""
    values = _values(record)
    del values["uuid"]
    connection.execute(update(mappings).where(mappings.c.uuid == record.uuid).values(**values))


def set_state(
    connection: Connection, uuid: str, state: str, *, last_processing_result: str | None = None
) -> None:
    """Move a mapping to ``state`` (and record its last processing result, when given)."""
    values: dict[str, Any] = {"state": state}
    if last_processing_result is not None:
        values["last_processing_result"] = last_processing_result
    connection.execute(update(mappings).where(mappings.c.uuid == uuid).values(**values))


def get_mapping(connection: Connection, uuid: str) -> MappingRecord | None:
    """One mapping, or None."""
    row = connection.execute(select(mappings).where(mappings.c.uuid == uuid)).first()
    return _from_row(row) if row else None


def list_mappings(connection: Connection, scope: Scope | None = None) -> list[MappingRecord]:
    """The mappings of one account's region (every one when None), oldest first, then by UUID."""
    query = select(mappings).order_by(mappings.c.last_modified, mappings.c.uuid)
    if scope is not None:
        query = query.where(in_scope(mappings, scope))
    return [_from_row(row) for row in connection.execute(query)]


def delete_mapping(connection: Connection, uuid: str) -> bool:
    """Remove a mapping; False if there was none."""
    return bool(connection.execute(delete(mappings).where(mappings.c.uuid == uuid)).rowcount)


def _values(record: MappingRecord) -> dict[str, Any]:
    return {
        "uuid": record.uuid,
        "account": record.account,
        "region": record.region,
        "function_arn": record.function_arn,
        "event_source_arn": record.event_source_arn,
        "state": record.state,
        "state_transition_reason": record.state_transition_reason,
        "enabled": int(record.enabled),
        "last_modified": record.last_modified,
        "last_processing_result": record.last_processing_result,
        "config": record.config,
    }


def _from_row(row: Any) -> MappingRecord:
    return MappingRecord(
        uuid=row.uuid,
        account=row.account,
        region=row.region,
        function_arn=row.function_arn,
        event_source_arn=row.event_source_arn,
        state=row.state,
        state_transition_reason=row.state_transition_reason,
        enabled=bool(row.enabled),
        last_modified=as_utc(row.last_modified),
        last_processing_result=row.last_processing_result,
        config=dict(row.config),
    )
