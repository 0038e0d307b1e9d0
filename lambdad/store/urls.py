"""Queries on function URLs. Each takes the transaction's connection."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from lambdad.models import Scope
from lambdad.store.schema import function_urls
from lambdad.store.scoping import in_scope, scope_of, scoped


@dataclass(frozen=True)
class FunctionUrl:
    """One function URL configuration; ``qualifier`` is None for the function's own URL, else an alias."""

    scope: Scope
    function_name: str
    qualifier: str | None
    url_id: str
    auth_type: str
    invoke_mode: str | None
    cors: dict[str, Any] | None
    created_at: datetime
    last_modified: datetime

    @property
    def region(self) -> str:
        return self.scope.region

    def evolve(self, **changes: Any) -> FunctionUrl:
        """A copy with some fields changed."""
        return replace(self, **changes)


def _from_row(row: Row[Any]) -> FunctionUrl:
    return FunctionUrl(
        scope=scope_of(row),
        function_name=row.function_name,
        qualifier=row.qualifier or None,
        url_id=row.url_id,
        auth_type=row.auth_type,
        invoke_mode=row.invoke_mode,
        cors=row.cors,
        created_at=row.created_at,
        last_modified=row.last_modified,
    )


def _to_row(url: FunctionUrl) -> dict[str, Any]:
    return {
        **scoped(url.scope),
        "function_name": url.function_name,
        "qualifier": url.qualifier or "",
        "url_id": url.url_id,
        "auth_type": url.auth_type,
        "invoke_mode": url.invoke_mode,
        "cors": url.cors,
        "created_at": url.created_at,
        "last_modified": url.last_modified,
    }


def get_url(
    connection: Connection, scope: Scope, function_name: str, qualifier: str | None
) -> FunctionUrl | None:
    """The URL of a function (qualifier None) or of one of its aliases, or None."""
    row = connection.execute(
        select(function_urls).where(
            in_scope(function_urls, scope),
            function_urls.c.function_name == function_name,
            function_urls.c.qualifier == (qualifier or ""),
        )
    ).first()
    return _from_row(row) if row else None


def get_url_by_id(connection: Connection, url_id: str) -> FunctionUrl | None:
    """The URL whose host carries ``url_id``, or None."""
    row = connection.execute(select(function_urls).where(function_urls.c.url_id == url_id)).first()
    return _from_row(row) if row else None


def insert_url(connection: Connection, url: FunctionUrl) -> None:
    """Store a new URL. The caller has checked that the function has none for this qualifier."""
    connection.execute(insert(function_urls).values(**_to_row(url)))


def save_url(connection: Connection, url: FunctionUrl) -> None:
    """Replace a stored URL with ``url``."""
    connection.execute(
        update(function_urls)
        .where(
            in_scope(function_urls, url.scope),
            function_urls.c.function_name == url.function_name,
            function_urls.c.qualifier == (url.qualifier or ""),
        )
        .values(**_to_row(url))
    )


def delete_url(connection: Connection, scope: Scope, function_name: str, qualifier: str | None) -> bool:
    """Remove a URL; False if there was none."""
    result = connection.execute(
        delete(function_urls).where(
            in_scope(function_urls, scope),
            function_urls.c.function_name == function_name,
            function_urls.c.qualifier == (qualifier or ""),
        )
    )
    return bool(result.rowcount)


def list_urls(
    connection: Connection, scope: Scope, function_name: str, *, after: str | None = None
) -> list[FunctionUrl]:
    """A function's URLs: its own first, then its aliases' in name order, starting after ``after``
    (a qualifier, "" for the function's own)."""
    query = select(function_urls).where(
        in_scope(function_urls, scope), function_urls.c.function_name == function_name
    )
    if after is not None:
        query = query.where(function_urls.c.qualifier > after)
    return [_from_row(row) for row in connection.execute(query.order_by(function_urls.c.qualifier))]
