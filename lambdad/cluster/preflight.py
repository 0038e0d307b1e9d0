"""What a node checks before it serves: each problem is one line for the operator, and a non-zero exit."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import SQLAlchemyError

from lambdad.cluster.connection import ClusterConnection
from lambdad.cluster.membership import BUCKET, FORGET_AFTER, NodeIdInUse, check_node_id_free
from lambdad.settings import Settings
from lambdad.store import Database


class CannotJoin(Exception):
    """This node cannot join its cluster; the message says why and what to do."""


def check_database(settings: Settings, database: Database) -> None:
    """PostgreSQL answers and holds this code's schema; a new database is initialised."""
    try:
        current, newest = database.schema_status()
    except SQLAlchemyError as error:
        reason = (str(getattr(error, "orig", None) or error).strip().splitlines() or ["no answer"])[0]
        raise CannotJoin(f"PostgreSQL is unreachable at {_safe(settings.database_url)}: {reason}") from None
    if not current:
        database.migrate(settings.account_id)  # the first node of a new cluster creates the schema
        return
    if current == newest:
        return
    if database.unknown_revisions(current):
        raise CannotJoin(
            f"the database schema ({', '.join(sorted(current))}) is newer than this lambdad's "
            f"({', '.join(sorted(newest))}): upgrade lambdad on this node"
        )
    raise CannotJoin(
        f"the database schema ({', '.join(sorted(current))}) is older than this lambdad's "
        f"({', '.join(sorted(newest))}): run `lambdad migrate --database-url ...` once, then start the nodes"
    )


async def check_nats(settings: Settings) -> None:
    """NATS answers, has JetStream, and no live node has this node's id."""
    connection = ClusterConnection(settings.nats_url, settings.cluster_name, settings.resolved_node_id)
    try:
        await asyncio.wait_for(connection.connect(connect_timeout=2.0), 5)
    except Exception as error:
        raise CannotJoin(
            f"NATS is unreachable at {settings.nats_url}: {str(error) or type(error).__name__}"
        ) from None
    try:
        try:
            kv = await connection.key_value(BUCKET, ttl=FORGET_AFTER)
        except Exception as error:
            raise CannotJoin(
                f"NATS at {settings.nats_url} has no JetStream (start nats-server with -js): {error}"
            ) from None
        try:
            await check_node_id_free(kv, settings.resolved_node_id)
        except NodeIdInUse as error:
            raise CannotJoin(str(error)) from None
    finally:
        await connection.close()


def _safe(url: str) -> str:
    """A database URL without its password."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    return f"{scheme}//{credentials.split(':', 1)[0]}:***@{tail}"
