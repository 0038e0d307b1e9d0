"""Queries on capacity providers and function scaling configs. Each takes the transaction's connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from lambdad.store.records import as_utc
from lambdad.store.schema import capacity_providers as providers
from lambdad.store.schema import function_scaling_configs as scaling


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


def insert_provider(connection: Connection, region: str, record: CapacityProviderRecord) -> None:
    connection.execute(
        insert(providers).values(
            region=region,
            name=record.name,
            state=record.state,
            config=record.config,
            last_modified=record.last_modified,
        )
    )


def get_provider(connection: Connection, region: str, name: str) -> CapacityProviderRecord | None:
    query = select(providers).where(providers.c.region == region, providers.c.name == name)
    row = connection.execute(query).first()
    return _provider(row) if row else None


def save_provider(connection: Connection, region: str, record: CapacityProviderRecord) -> None:
    connection.execute(
        update(providers)
        .where(providers.c.region == region, providers.c.name == record.name)
        .values(state=record.state, config=record.config, last_modified=record.last_modified)
    )


def set_state(connection: Connection, region: str, name: str, state: str, *, only_from: str) -> bool:
    """Move a provider from ``only_from`` to ``state`` (compare-and-set: another node may have)."""
    result = connection.execute(
        update(providers)
        .where(providers.c.region == region, providers.c.name == name, providers.c.state == only_from)
        .values(state=state)
    )
    return bool(result.rowcount)


def delete_provider(connection: Connection, region: str, name: str) -> bool:
    result = connection.execute(
        delete(providers).where(providers.c.region == region, providers.c.name == name)
    )
    return bool(result.rowcount)


def list_providers(
    connection: Connection, region: str, *, after: str | None = None, state: str | None = None, limit: int
) -> list[CapacityProviderRecord]:
    """Providers in name order, after ``after``, optionally in one state only."""
    query = select(providers).where(providers.c.region == region)
    if after is not None:
        query = query.where(providers.c.name > after)
    if state is not None:
        query = query.where(providers.c.state == state)
    query = query.order_by(providers.c.name).limit(limit)
    return [_provider(row) for row in connection.execute(query)]


def count_providers(connection: Connection, region: str) -> int:
    return len(connection.execute(select(providers.c.name).where(providers.c.region == region)).all())


def unsettled(connection: Connection) -> list[tuple[str, str, str]]:
    """(region, name, state) of every provider still Pending or Deleting."""
    query = select(providers.c.region, providers.c.name, providers.c.state).where(
        providers.c.state.in_(("Pending", "Deleting"))
    )
    return [(row.region, row.name, row.state) for row in connection.execute(query)]


def save_scaling(connection: Connection, region: str, record: ScalingRecord) -> None:
    """Store ``record``, replacing the version's previous one."""
    key = (
        scaling.c.region == region,
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
            region=region, function_name=record.function_name, qualifier=record.qualifier, **values
        )
    )


def get_scaling(connection: Connection, region: str, name: str, qualifier: str) -> ScalingRecord | None:
    query = select(scaling).where(
        scaling.c.region == region, scaling.c.function_name == name, scaling.c.qualifier == qualifier
    )
    row = connection.execute(query).first()
    if row is None:
        return None
    modified = as_utc(row.last_modified)
    return ScalingRecord(
        row.function_name, row.qualifier, row.min_environments, row.max_environments, modified
    )


def list_scaling(
    connection: Connection, region: str | None = None, name: str | None = None
) -> list[tuple[str, ScalingRecord]]:
    """(region, config) of one function's scaling configs, or of every function's."""
    query = select(scaling)
    if region is not None:
        query = query.where(scaling.c.region == region)
    if name is not None:
        query = query.where(scaling.c.function_name == name)
    return [(row.region, _scaling(row)) for row in connection.execute(query)]


def _scaling(row: Any) -> ScalingRecord:
    modified = as_utc(row.last_modified)
    return ScalingRecord(
        row.function_name, row.qualifier, row.min_environments, row.max_environments, modified
    )


def _provider(row: Any) -> CapacityProviderRecord:
    return CapacityProviderRecord(row.name, row.state, dict(row.config), as_utc(row.last_modified))
