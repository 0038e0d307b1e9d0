"""Queries on resource tags."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from lambdad.store.schema import tags


def get_tags(connection: Connection, resource_arn: str) -> dict[str, str]:
    """A resource's tags."""
    rows = connection.execute(select(tags.c.key, tags.c.value).where(tags.c.resource_arn == resource_arn))
    return {row.key: row.value for row in rows}


def put_tags(connection: Connection, resource_arn: str, new_tags: dict[str, str]) -> None:
    """Add tags, replacing the values of keys already present."""
    if not new_tags:
        return
    connection.execute(
        delete(tags).where(tags.c.resource_arn == resource_arn, tags.c.key.in_(list(new_tags)))
    )
    connection.execute(
        insert(tags), [{"resource_arn": resource_arn, "key": k, "value": v} for k, v in new_tags.items()]
    )


def remove_tags(connection: Connection, resource_arn: str, keys: list[str] | None = None) -> None:
    """Remove the given keys (absent ones are ignored), or every tag when ``keys`` is None."""
    query = delete(tags).where(tags.c.resource_arn == resource_arn)
    if keys is not None:
        query = query.where(tags.c.key.in_(keys))
    connection.execute(query)
