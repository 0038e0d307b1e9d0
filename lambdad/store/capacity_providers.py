"""Queries on capacity providers and function scaling configs. Each takes the transaction's connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from lambdad.models import Scope
from lambdad.store.records import as_utc
from lambdad.store.schema import capacity_providers as providers
from lambdad.store.schema import function_scaling_configs as scaling
from lambdad.store.scoping import in_scope, scope_of, scoped


@dataclass(frozen=True)
class CapacityProviderRecord:
    """A capacity provider as stored: its state and the members AWS echoes (``config``)."""

    name: str
    state: str
    config: dict[str, Any]
    last_modified: datetime


@dataclass(frozen=True)
class ScalingRecord:
    """PutFunctionScalingConfig's request for one published version (None: not given)."""

    function_name: str
    qualifier: str
    minimum: int | None
    maximum: int | None
    last_modified: datetime


def insert_provider(connection: Connection, scope: Scope, record: CapacityProviderRecord) -> None:
    connection.execute(
        insert(providers).values(
            **scoped(scope),
            name=record.name,
            state=record.state,
            config=record.config,
            last_modified=record.last_modified,
        )
    )


def get_provider(connection: Connection, scope: Scope, name: str) -> CapacityProviderRecord | None:
    query = select(providers).where(in_scope(providers, scope), providers.c.name == name)
    row = connection.execute(query).first()
    return _provider(row) if row else None


def save_provider(connection: Connection, scope: Scope, record: CapacityProviderRecord) -> None:
    connection.execute(
        update(providers)
        .where(in_scope(providers, scope), providers.c.name == record.name)
        .values(state=record.state, config=record.config, last_modified=record.last_modified)
    )


def set_state(connection: Connection, scope: Scope, name: str, state: str, *, only_from: str) -> bool:
    """Move a provider from ``only_from`` to ``state`` (compare-and-set: another node may have)."""
    result = connection.execute(
        update(providers)
        .where(in_scope(providers, scope), providers.c.name == name, providers.c.state == only_from)
        .values(state=state)
    )
    return bool(result.rowcount)


def delete_provider(connection: Connection, scope: Scope, name: str) -> bool:
    result = connection.execute(delete(providers).where(in_scope(providers, scope), providers.c.name == name))
    return bool(result.rowcount)


def list_providers(
    connection: Connection, scope: Scope, *, after: str | None = None, state: str | None = None, limit: int
) -> list[CapacityProviderRecord]:
    """Providers in name order, after ``after``, optionally in one state only."""
    query = select(providers).where(in_scope(providers, scope))
    if after is not None:
        query = query.where(providers.c.name > after)
    if state is not None:
        query = query.where(providers.c.state == state)
    query = query.order_by(providers.c.name).limit(limit)
    return [_provider(row) for row in connection.execute(query)]


def count_providers(connection: Connection, scope: Scope) -> int:
    return len(connection.execute(select(providers.c.name).where(in_scope(providers, scope))).all())


def unsettled(connection: Connection) -> list[tuple[Scope, str, str]]:
    """(scope, name, state) of every provider still Pending or Deleting."""
    query = select(providers.c.account, providers.c.region, providers.c.name, providers.c.state).where(
        providers.c.state.in_(("Pending", "Deleting"))
    )
    return [(scope_of(row), row.name, row.state) for row in connection.execute(query)]


def save_scaling(connection: Connection, scope: Scope, record: ScalingRecord) -> None:
    """Store ``record``, replacing the version's previous one."""
    key = (
        in_scope(scaling, scope),
        scaling.c.function_name == record.function_name,
        scaling.c.qualifier == record.qualifier,
    )
    values = {
        "min_environments": record.minimum,
        "max_environments": record.maximum,
        "last_modified": record.last_modified,
    }
    if connection.execute(update(scaling).where(*key).values(**values)).rowcount:
        return
    connection.execute(
        insert(scaling).values(
            **scoped(scope), function_name=record.function_name, qualifier=record.qualifier, **values
        )
    )


def get_scaling(connection: Connection, scope: Scope, name: str, qualifier: str) -> ScalingRecord | None:
    query = select(scaling).where(
        in_scope(scaling, scope), scaling.c.function_name == name, scaling.c.qualifier == qualifier
    )
    row = connection.execute(query).first()
    if row is None:
        return None
    modified = as_utc(row.last_modified)
    return ScalingRecord(
        row.function_name, row.qualifier, row.min_environments, row.max_environments, modified
    )


def list_scaling(
    connection: Connection, scope: Scope | None = None, name: str | None = None
) -> list[tuple[Scope, ScalingRecord]]:
    """(scope, config) of one function's scaling configs, or of every function's."""
    query = select(scaling)
    if scope is not None:
        query = query.where(in_scope(scaling, scope))
    if name is not None:
        query = query.where(scaling.c.function_name == name)
    return [(scope_of(row), _scaling(row)) for row in connection.execute(query)]


def _scaling(row: Any) -> ScalingRecord:
    modified = as_utc(row.last_modified)
    return ScalingRecord(
        row.function_name, row.qualifier, row.min_environments, row.max_environments, modified
    )


def _provider(row: Any) -> CapacityProviderRecord:
    return CapacityProviderRecord(row.name, row.state, dict(row.config), as_utc(row.last_modified))
