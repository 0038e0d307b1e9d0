"""Queries on aliases. Each takes the transaction's connection."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from lambdad.models import Alias, Scope
from lambdad.store.function_configs import remove_attached
from lambdad.store.records import alias_from_row, alias_to_row
from lambdad.store.schema import aliases
from lambdad.store.scoping import in_scope


def get_alias(
    connection: Connection, scope: Scope, function_name: str, name: str, *, for_update: bool = False
) -> Alias | None:
    """One alias of a function, or None."""
    query = select(aliases).where(
        in_scope(aliases, scope), aliases.c.function_name == function_name, aliases.c.name == name
    )
    if for_update:
        query = query.with_for_update()
    row = connection.execute(query).first()
    return alias_from_row(row) if row else None


def insert_alias(connection: Connection, scope: Scope, alias: Alias) -> None:
    """Store a new alias. The caller has checked the name is free."""
    connection.execute(insert(aliases).values(**alias_to_row(scope, alias)))


def save_alias(connection: Connection, scope: Scope, alias: Alias) -> None:
    """Replace a stored alias with ``alias``."""
    connection.execute(
        update(aliases)
        .where(
            in_scope(aliases, scope),
            aliases.c.function_name == alias.function_name,
            aliases.c.name == alias.name,
        )
        .values(**alias_to_row(scope, alias))
    )


def delete_alias(connection: Connection, scope: Scope, function_name: str, name: str) -> bool:
    """Remove an alias (and what is attached to it); False if there was none."""
    remove_attached(connection, scope, function_name, name)
    result = connection.execute(
        delete(aliases).where(
            in_scope(aliases, scope), aliases.c.function_name == function_name, aliases.c.name == name
        )
    )
    return bool(result.rowcount)


def list_aliases(
    connection: Connection,
    scope: Scope,
    function_name: str,
    *,
    after: str | None = None,
    limit: int | None = None,
) -> list[Alias]:
    """A function's aliases in name order, starting after the alias named ``after``."""
    query = select(aliases).where(in_scope(aliases, scope), aliases.c.function_name == function_name)
    if after is not None:
        query = query.where(aliases.c.name > after)
    query = query.order_by(aliases.c.name)
    if limit is not None:
        query = query.limit(limit)
    return [alias_from_row(row) for row in connection.execute(query)]
