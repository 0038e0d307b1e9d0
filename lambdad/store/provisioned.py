"""Queries on provisioned concurrency configs (per published version or alias). Each takes the
transaction's connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from lambdad.models import Scope
from lambdad.store.records import as_utc
from lambdad.store.schema import provisioned_concurrency_configs as configs
from lambdad.store.scoping import in_scope, scope_of, scoped


@dataclass(frozen=True)
class ProvisionedConfig:
    """A PutProvisionedConcurrencyConfig as stored: what was asked for, and when."""

    function_name: str
    qualifier: str
    requested: int
    last_modified: datetime


def save_config(connection: Connection, scope: Scope, config: ProvisionedConfig) -> None:
    """Store ``config``, replacing the qualifier's previous one."""
    key = (
        in_scope(configs, scope),
        configs.c.function_name == config.function_name,
        configs.c.qualifier == config.qualifier,
    )
    # A new request is IN_PROGRESS until the provisioner reports again.
    values = {
        "requested": config.requested,
        "last_modified": config.last_modified,
        "status": None,
        "allocated": 0,
        "status_reason": None,
    }
    if connection.execute(update(configs).where(*key).values(**values)).rowcount:
        return
    connection.execute(
        insert(configs).values(
            **scoped(scope), function_name=config.function_name, qualifier=config.qualifier, **values
        )
    )


def get_config(connection: Connection, scope: Scope, name: str, qualifier: str) -> ProvisionedConfig | None:
    """The config of one version or alias, or None."""
    query = select(configs).where(
        in_scope(configs, scope), configs.c.function_name == name, configs.c.qualifier == qualifier
    )
    row = connection.execute(query).first()
    return _from_row(row) if row else None


def delete_config(connection: Connection, scope: Scope, name: str, qualifier: str) -> bool:
    """Remove one config; False if there was none."""
    result = connection.execute(
        delete(configs).where(
            in_scope(configs, scope), configs.c.function_name == name, configs.c.qualifier == qualifier
        )
    )
    return bool(result.rowcount)


def list_configs(connection: Connection, scope: Scope, name: str | None = None) -> list[ProvisionedConfig]:
    """The configs of one function, or of every function in the region (in no particular order)."""
    query = select(configs).where(in_scope(configs, scope))
    if name is not None:
        query = query.where(configs.c.function_name == name)
    return [_from_row(row) for row in connection.execute(query)]


def get_status(
    connection: Connection, scope: Scope, name: str, qualifier: str
) -> tuple[str | None, int, str | None]:
    """(status, allocated, reason) as last reported; status None while IN_PROGRESS or without a config."""
    row = connection.execute(
        select(configs.c.status, configs.c.allocated, configs.c.status_reason).where(
            in_scope(configs, scope), configs.c.function_name == name, configs.c.qualifier == qualifier
        )
    ).first()
    return (row.status, int(row.allocated), row.status_reason) if row else (None, 0, None)


def save_status(
    connection: Connection,
    scope: Scope,
    name: str,
    qualifier: str,
    status: str,
    allocated: int,
    reason: str | None,
) -> None:
    """Record how provisioning a config went (nothing if the config is gone)."""
    connection.execute(
        update(configs)
        .where(in_scope(configs, scope), configs.c.function_name == name, configs.c.qualifier == qualifier)
        .values(status=status, allocated=allocated, status_reason=reason)
    )


def all_scopes(connection: Connection) -> list[Scope]:
    """The accounts' regions holding at least one config."""
    query = select(configs.c.account, configs.c.region).distinct()
    return sorted({scope_of(row) for row in connection.execute(query)})


def _from_row(row: object) -> ProvisionedConfig:
    modified = as_utc(row.last_modified)  # type: ignore[attr-defined]
    return ProvisionedConfig(row.function_name, row.qualifier, row.requested, modified)  # type: ignore[attr-defined]
