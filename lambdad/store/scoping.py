"""Rows kept per account and region: the two conditions every query on them starts with.

Every Lambda and Scheduler resource belongs to one account in one region, as on AWS: two accounts'
functions of one name are two functions. A query takes the request's ``Scope`` (or the scope of the
record it acts on, for background work), never a region alone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, and_

from lambdad.models import Scope


def in_scope(table: Table, scope: Scope) -> ColumnElement[bool]:
    """The rows of ``table`` in ``scope``'s account and region."""
    return and_(table.c.account == scope.account, table.c.region == scope.region)


def scoped(scope: Scope) -> dict[str, Any]:
    """The key columns a new row in ``scope`` takes."""
    return {"account": scope.account, "region": scope.region}


def scope_of(row: Any) -> Scope:
    """The scope a stored row belongs to."""
    return Scope(row.account, row.region)
