"""Queries on functions and their versions. Each takes the transaction's connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update

from lambdad.models import LATEST, FunctionVersion, Scope
from lambdad.store import layers as layer_records
from lambdad.store.function_configs import remove_attached
from lambdad.store.records import version_from_row, version_number, version_to_row
from lambdad.store.schema import aliases, function_versions, functions
from lambdad.store.scoping import in_scope, scope_of, scoped
from lambdad.store.sealing import ring_of


def get_version(
    connection: Connection, scope: Scope, name: str, version: str = LATEST, *, for_update: bool = False
) -> FunctionVersion | None:
    """One version of a function, or None. ``for_update`` locks the row until the transaction ends."""
    query = select(function_versions).where(
        in_scope(function_versions, scope),
        function_versions.c.function_name == name,
        function_versions.c.version == version,
    )
    if for_update:
        query = query.with_for_update()
    row = connection.execute(query).first()
    return version_from_row(row, ring_of(connection)) if row else None


def insert_function(connection: Connection, scope: Scope, latest: FunctionVersion, created: datetime) -> None:
    """A new function with its ``$LATEST`` version. The caller has checked the name is free."""
    connection.execute(insert(functions).values(**scoped(scope), name=latest.name, created_at=created))
    connection.execute(insert(function_versions).values(**version_to_row(scope, latest, ring_of(connection))))


def function_exists(connection: Connection, scope: Scope, name: str) -> bool:
    """Whether a function of this name exists in the region."""
    query = select(functions.c.name).where(in_scope(functions, scope), functions.c.name == name)
    return connection.execute(query).first() is not None


def save_version(connection: Connection, scope: Scope, version: FunctionVersion) -> None:
    """Replace a stored version with ``version``."""
    row = version_to_row(scope, version, ring_of(connection))
    connection.execute(
        update(function_versions)
        .where(
            in_scope(function_versions, scope),
            function_versions.c.function_name == version.name,
            function_versions.c.version == version.version,
        )
        .values(**row)
    )


def insert_version(connection: Connection, scope: Scope, version: FunctionVersion) -> None:
    """Store a newly published version."""
    connection.execute(
        insert(function_versions).values(**version_to_row(scope, version, ring_of(connection)))
    )


def next_version_number(connection: Connection, scope: Scope, name: str) -> int:
    """Take the function's next version number (never one used before, even if since deleted)."""
    connection.execute(
        update(functions)
        .where(in_scope(functions, scope), functions.c.name == name)
        .values(last_version=functions.c.last_version + 1)
    )
    query = select(functions.c.last_version).where(in_scope(functions, scope), functions.c.name == name)
    return int(connection.execute(query).scalar_one())


def newest_published(connection: Connection, scope: Scope, name: str) -> FunctionVersion | None:
    """The function's highest-numbered published version, or None."""
    query = (
        select(function_versions)
        .where(
            in_scope(function_versions, scope),
            function_versions.c.function_name == name,
            function_versions.c.version_number > 0,
        )
        .order_by(function_versions.c.version_number.desc())
        .limit(1)
    )
    row = connection.execute(query).first()
    return version_from_row(row, ring_of(connection)) if row else None


def delete_version(connection: Connection, scope: Scope, name: str, version: str) -> bool:
    """Remove one published version (and what is attached to it); False if there was none."""
    remove_attached(connection, scope, name, version)
    result = connection.execute(
        delete(function_versions).where(
            in_scope(function_versions, scope),
            function_versions.c.function_name == name,
            function_versions.c.version == version,
        )
    )
    return bool(result.rowcount)


def function_versions_page(
    connection: Connection, scope: Scope, name: str, *, after: str | None, limit: int
) -> list[FunctionVersion]:
    """One function's versions, ``$LATEST`` first then by number, starting after version ``after``."""
    query = select(function_versions).where(
        in_scope(function_versions, scope), function_versions.c.function_name == name
    )
    if after is not None:
        query = query.where(function_versions.c.version_number > version_number(after))
    query = query.order_by(function_versions.c.version_number).limit(limit)
    return [version_from_row(row, ring_of(connection)) for row in connection.execute(query)]


def delete_function(connection: Connection, scope: Scope, name: str) -> None:
    """Remove a function with all its versions and aliases (and what is attached to them)."""
    remove_attached(connection, scope, name)
    connection.execute(delete(aliases).where(in_scope(aliases, scope), aliases.c.function_name == name))
    connection.execute(
        delete(function_versions).where(
            in_scope(function_versions, scope), function_versions.c.function_name == name
        )
    )
    connection.execute(delete(functions).where(in_scope(functions, scope), functions.c.name == name))


def list_versions(
    connection: Connection,
    scope: Scope,
    *,
    after: tuple[str, str] | None,
    limit: int,
    all_versions: bool,
) -> list[FunctionVersion]:
    """Versions ordered by function name, then ``$LATEST`` and published versions by number, starting
    after ``after`` (name, version); ``$LATEST`` only unless ``all_versions``."""
    query = select(function_versions).where(in_scope(function_versions, scope))
    if not all_versions:
        query = query.where(function_versions.c.version == LATEST)
    if after is not None:
        name, version = after
        number = version_number(version)
        query = query.where(
            (function_versions.c.function_name > name)
            | ((function_versions.c.function_name == name) & (function_versions.c.version_number > number))
        )
    query = query.order_by(function_versions.c.function_name, function_versions.c.version_number).limit(limit)
    return [version_from_row(row, ring_of(connection)) for row in connection.execute(query)]


def pending_versions(connection: Connection) -> list[tuple[Scope, FunctionVersion]]:
    """(scope, version) of every version whose state or last update has not settled."""
    rows = connection.execute(select(function_versions))
    result = []
    for row in rows:
        version = version_from_row(row, ring_of(connection))
        if not version.is_settled:
            result.append((scope_of(row), version))
    return result


def usage(connection: Connection, scope: Scope) -> tuple[int, int]:
    """(function count, total code size in bytes) in a region, as GetAccountSettings reports them."""
    count = connection.execute(
        select(func.count()).select_from(functions).where(in_scope(functions, scope))
    ).scalar_one()
    size = connection.execute(
        select(func.coalesce(func.sum(function_versions.c.code_size), 0)).where(
            in_scope(function_versions, scope)
        )
    ).scalar_one()
    return int(count), int(size)


@dataclass(frozen=True)
class CodeInUse:
    """The code the records name, across regions: each package's digest with the bytes it takes on disk
    (``CodePackage.stored_size``), and each function's ordered layer digests."""

    packages: dict[str, int]
    layer_sets: set[tuple[str, ...]]


def code_in_use(connection: Connection) -> CodeInUse:
    """What every function version (with the layers it keeps) and every layer version uses."""
    packages: dict[str, int] = {}
    layer_sets: set[tuple[str, ...]] = set()
    for row in connection.execute(select(function_versions)):
        version = version_from_row(row, ring_of(connection))
        packages[version.code.sha256_hex] = version.code.stored_size
        for layer in version.layers:
            packages[layer.code.sha256_hex] = layer.code.stored_size
        if version.layers:
            layer_sets.add(tuple(layer.code.sha256_hex for layer in version.layers))
    packages.update(layer_records.stored_packages(connection))
    return CodeInUse(packages, layer_sets)


def get_reserved_concurrency(connection: Connection, scope: Scope, name: str) -> int | None:
    """A function's reserved concurrency, or None."""
    query = select(functions.c.reserved_concurrency).where(
        in_scope(functions, scope), functions.c.name == name
    )
    value = connection.execute(query).scalar_one_or_none()
    return None if value is None else int(value)


def set_reserved_concurrency(connection: Connection, scope: Scope, name: str, value: int | None) -> None:
    """Set (or, with None, remove) a function's reserved concurrency."""
    connection.execute(
        update(functions)
        .where(in_scope(functions, scope), functions.c.name == name)
        .values(reserved_concurrency=value)
    )


def total_reserved_concurrency(connection: Connection, scope: Scope, excluding: str | None = None) -> int:
    """The sum of every reservation in a region (optionally leaving one function out)."""
    query = select(func.coalesce(func.sum(functions.c.reserved_concurrency), 0)).where(
        in_scope(functions, scope)
    )
    if excluding is not None:
        query = query.where(functions.c.name != excluding)
    return int(connection.execute(query).scalar_one())
