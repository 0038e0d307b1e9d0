"""Queries on what attaches to a function, a version or an alias: resource-based policies, event invoke
configs, recursion and runtime management configs. Each takes the transaction's connection.

A qualifier is stored as given: ``""`` for an unqualified policy, ``$LATEST``, a version or an alias.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from lambdad.models import Scope
from lambdad.store.records import as_utc
from lambdad.store.schema import (
    event_invoke_configs,
    function_policies,
    function_scaling_configs,
    recursion_configs,
    runtime_management_configs,
)
from lambdad.store.scoping import in_scope, scoped


@dataclass(frozen=True)
class Policy:
    """A resource-based policy's statements (AWS's shape, in the order added) and its RevisionId."""

    statements: list[dict[str, Any]]
    revision_id: str


@dataclass(frozen=True)
class EventInvokeConfig:
    """A FunctionEventInvokeConfig: None for a setting left unset; ``destinations`` as AWS answers
    DestinationConfig (``{"OnSuccess": {...}, "OnFailure": {...}}``)."""

    qualifier: str
    last_modified: datetime
    maximum_retry_attempts: int | None = None
    maximum_event_age: int | None = None
    destinations: dict[str, Any] = field(default_factory=dict)


# --- policies -------------------------------------------------------------------------------------------


def get_policy(
    connection: Connection, scope: Scope, name: str, qualifier: str, *, for_update: bool = False
) -> Policy | None:
    """The policy of a function (qualifier ``""``), version or alias, or None."""
    query = select(function_policies).where(
        in_scope(function_policies, scope),
        function_policies.c.function_name == name,
        function_policies.c.qualifier == qualifier,
    )
    if for_update:
        query = query.with_for_update()
    row = connection.execute(query).first()
    return Policy(list(row.statements), row.revision_id) if row else None


def save_policy(connection: Connection, scope: Scope, name: str, qualifier: str, policy: Policy) -> None:
    """Store ``policy`` (replacing any before it); a policy without statements is removed."""
    key = (
        in_scope(function_policies, scope),
        function_policies.c.function_name == name,
        function_policies.c.qualifier == qualifier,
    )
    if not policy.statements:
        connection.execute(delete(function_policies).where(*key))
        return
    values = {"statements": policy.statements, "revision_id": policy.revision_id}
    if connection.execute(update(function_policies).where(*key).values(**values)).rowcount:
        return
    connection.execute(
        insert(function_policies).values(**scoped(scope), function_name=name, qualifier=qualifier, **values)
    )


# --- event invoke configs -------------------------------------------------------------------------------


def _invoke_config_from_row(row: Any) -> EventInvokeConfig:
    return EventInvokeConfig(
        qualifier=row.qualifier,
        last_modified=as_utc(row.last_modified),
        maximum_retry_attempts=row.maximum_retry_attempts,
        maximum_event_age=row.maximum_event_age,
        destinations=dict(row.destination_config),
    )


def get_event_invoke_config(
    connection: Connection, scope: Scope, name: str, qualifier: str
) -> EventInvokeConfig | None:
    """The event invoke config of ``$LATEST``, a version or an alias, or None."""
    query = select(event_invoke_configs).where(
        in_scope(event_invoke_configs, scope),
        event_invoke_configs.c.function_name == name,
        event_invoke_configs.c.qualifier == qualifier,
    )
    row = connection.execute(query).first()
    return _invoke_config_from_row(row) if row else None


def save_event_invoke_config(
    connection: Connection, scope: Scope, name: str, config: EventInvokeConfig
) -> None:
    """Store ``config``, replacing the qualifier's previous one."""
    key = (
        in_scope(event_invoke_configs, scope),
        event_invoke_configs.c.function_name == name,
        event_invoke_configs.c.qualifier == config.qualifier,
    )
    values = {
        "maximum_retry_attempts": config.maximum_retry_attempts,
        "maximum_event_age": config.maximum_event_age,
        "destination_config": config.destinations,
        "last_modified": config.last_modified,
    }
    if connection.execute(update(event_invoke_configs).where(*key).values(**values)).rowcount:
        return
    connection.execute(
        insert(event_invoke_configs).values(
            **scoped(scope), function_name=name, qualifier=config.qualifier, **values
        )
    )


def delete_event_invoke_config(connection: Connection, scope: Scope, name: str, qualifier: str) -> bool:
    """Remove one event invoke config; False if there was none."""
    result = connection.execute(
        delete(event_invoke_configs).where(
            in_scope(event_invoke_configs, scope),
            event_invoke_configs.c.function_name == name,
            event_invoke_configs.c.qualifier == qualifier,
        )
    )
    return bool(result.rowcount)


def list_event_invoke_configs(connection: Connection, scope: Scope, name: str) -> list[EventInvokeConfig]:
    """Every event invoke config of a function (in no particular order)."""
    query = select(event_invoke_configs).where(
        in_scope(event_invoke_configs, scope), event_invoke_configs.c.function_name == name
    )
    return [_invoke_config_from_row(row) for row in connection.execute(query)]


# --- recursion and runtime management -------------------------------------------------------------------


def get_recursive_loop(connection: Connection, scope: Scope, name: str) -> str | None:
    """A function's RecursiveLoop setting, or None if never set."""
    query = select(recursion_configs.c.recursive_loop).where(
        in_scope(recursion_configs, scope), recursion_configs.c.function_name == name
    )
    value = connection.execute(query).scalar_one_or_none()
    return None if value is None else str(value)


def set_recursive_loop(connection: Connection, scope: Scope, name: str, value: str) -> None:
    """Set a function's RecursiveLoop."""
    key = (in_scope(recursion_configs, scope), recursion_configs.c.function_name == name)
    if connection.execute(update(recursion_configs).where(*key).values(recursive_loop=value)).rowcount:
        return
    connection.execute(
        insert(recursion_configs).values(**scoped(scope), function_name=name, recursive_loop=value)
    )


def get_runtime_management(
    connection: Connection, scope: Scope, name: str, qualifier: str
) -> tuple[str, str | None] | None:
    """(UpdateRuntimeOn, RuntimeVersionArn) of ``$LATEST`` or a version, or None if never set."""
    query = select(
        runtime_management_configs.c.update_runtime_on, runtime_management_configs.c.runtime_version_arn
    ).where(
        in_scope(runtime_management_configs, scope),
        runtime_management_configs.c.function_name == name,
        runtime_management_configs.c.qualifier == qualifier,
    )
    row = connection.execute(query).first()
    return (str(row[0]), row[1]) if row else None


def set_runtime_management(
    connection: Connection, scope: Scope, name: str, qualifier: str, update_on: str, arn: str | None
) -> None:
    """Set the runtime management config of ``$LATEST`` or a version."""
    key = (
        in_scope(runtime_management_configs, scope),
        runtime_management_configs.c.function_name == name,
        runtime_management_configs.c.qualifier == qualifier,
    )
    values = {"update_runtime_on": update_on, "runtime_version_arn": arn}
    if connection.execute(update(runtime_management_configs).where(*key).values(**values)).rowcount:
        return
    connection.execute(
        insert(runtime_management_configs).values(
            **scoped(scope), function_name=name, qualifier=qualifier, **values
        )
    )


# --- removal --------------------------------------------------------------------------------------------


def remove_attached(connection: Connection, scope: Scope, name: str, qualifier: str | None = None) -> None:
    """Remove what is attached to one version or alias (``qualifier``), or with None to the whole
    function: its policies, event invoke, runtime management, scaling and recursion configs."""
    for table in (
        function_policies,
        event_invoke_configs,
        runtime_management_configs,
        function_scaling_configs,
    ):
        query = delete(table).where(in_scope(table, scope), table.c.function_name == name)
        if qualifier is not None:
            query = query.where(table.c.qualifier == qualifier)
        connection.execute(query)
    if qualifier is None:
        connection.execute(
            delete(recursion_configs).where(
                in_scope(recursion_configs, scope), recursion_configs.c.function_name == name
            )
        )
