"""Queries on the durable queue of Event (asynchronous) invocations (table ``async_events``).

Each function takes the caller's open connection, so that a caller can make an event part of a larger
transaction: the scheduler claims a schedule slot and enqueues its event in one commit, and finishing an
event deletes it in the same commit that enqueues its record for a Lambda destination.

A row is *held* by a worker while its ``lease_until`` lies in the future; ``claim`` takes rows that are
due and not held. Times are epoch milliseconds (``now_ms``).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy import insert as sql_insert

from lambdad.models import parse_function_ref
from lambdad.store.schema import async_events

# The queue is cut into this many partitions, each owned by one node of a cluster at a time (a single
# server owns them all). Changing the number moves events between partitions: never change it.
PARTITIONS = 16


def partition_of(region: str, function_name: str) -> int:
    """The partition of an event of ``function_name`` (a name, or a partial or full ARN, maybe qualified):
    the same for every way of naming one function, so its events stay in one partition."""
    ref = parse_function_ref(function_name)
    name = ref.name if ref is not None else function_name
    return zlib.crc32(f"{region}/{name}".encode()) % PARTITIONS


def now_ms() -> int:
    """The current time as the table stores it."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class NewEvent:
    """An Event invocation to enqueue, as the Invoke API received it."""

    request_id: str
    account: str
    region: str
    # FunctionName as given (name, partial or full ARN, maybe qualified) and the Qualifier parameter.
    function_name: str
    qualifier: str | None
    payload: bytes
    client_context: str | None = None
    # When it was accepted (its age counts from here); now when None.
    created_at: int | None = None


@dataclass(frozen=True)
class StoredEvent:
    """One row of the queue."""

    request_id: str
    account: str
    region: str
    function_name: str
    qualifier: str | None
    payload: bytes
    client_context: str | None
    created_at: int
    due_at: int
    attempts: int
    requeues: int
    owner: str | None
    lease_until: int
    response: dict[str, Any] | None
    outcome: str | None
    deliveries: list[dict[str, Any]] | None
    finished_at: int | None


def _values(event: NewEvent, now: int) -> dict[str, Any]:
    created = now if event.created_at is None else event.created_at
    return {
        "request_id": event.request_id,
        "account": event.account,
        "region": event.region,
        "function_name": event.function_name,
        "qualifier": event.qualifier,
        "payload": event.payload,
        "client_context": event.client_context,
        "created_at": created,
        "due_at": created,
        "attempts": 0,
        "requeues": 0,
        "owner": None,
        "lease_until": 0,
        "partition": partition_of(event.region, event.function_name),
    }


def insert(connection: Connection, event: NewEvent) -> None:
    """Enqueue one Event invocation inside the caller's transaction (``with database.write() as c``).

    The event is durable once that transaction commits, and runs at least once from then on: the queue's
    workers find it on their next poll (within about a second), or at once if the caller then calls
    ``EventQueue.wake()``. ``request_id`` must be unique (it is the row's key and the invocation's
    ``aws_request_id``); inserting an id twice fails the transaction with an IntegrityError.
    """
    connection.execute(sql_insert(async_events).values(**_values(event, now_ms())))


def insert_many(connection: Connection, events: Sequence[NewEvent]) -> None:
    """Enqueue several events in one statement (the group commit of concurrent submits)."""
    if events:
        now = now_ms()
        connection.execute(sql_insert(async_events), [_values(event, now) for event in events])


def _from_row(row: Any) -> StoredEvent:
    return StoredEvent(
        request_id=row.request_id,
        account=row.account,
        region=row.region,
        function_name=row.function_name,
        qualifier=row.qualifier,
        payload=bytes(row.payload),
        client_context=row.client_context,
        created_at=int(row.created_at),
        due_at=int(row.due_at),
        attempts=int(row.attempts),
        requeues=int(row.requeues),
        owner=row.owner,
        lease_until=int(row.lease_until),
        response=dict(row.response) if row.response is not None else None,
        outcome=row.outcome,
        deliveries=list(row.deliveries) if row.deliveries is not None else None,
        finished_at=None if row.finished_at is None else int(row.finished_at),
    )


def claim(
    connection: Connection,
    owner: str,
    now: int,
    lease_ms: int,
    limit: int,
    partitions: Sequence[int] | None = None,
) -> list[StoredEvent]:
    """Hold up to ``limit`` due events that nobody holds (oldest due first) for ``lease_ms``; only events
    of ``partitions`` when given (the partitions this node of a cluster owns).

    On PostgreSQL rows another transaction is claiming are skipped (``SKIP LOCKED``); on SQLite the write
    transaction's lock already serialises claims.
    """
    query = (
        select(async_events.c.request_id)
        .where(async_events.c.due_at <= now, async_events.c.lease_until < now)
        .order_by(async_events.c.due_at)
        .limit(limit)
    )
    if partitions is not None:
        if not partitions:
            return []
        query = query.where(async_events.c.partition.in_(list(partitions)))
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = [row[0] for row in connection.execute(query)]
    if not ids:
        return []
    connection.execute(
        update(async_events)
        .where(async_events.c.request_id.in_(ids))
        .values(owner=owner, lease_until=now + lease_ms)
    )
    rows = connection.execute(select(async_events).where(async_events.c.request_id.in_(ids)))
    return sorted((_from_row(row) for row in rows), key=lambda event: event.due_at)


def renew(connection: Connection, owner: str, until: int, request_ids: Sequence[str] | None = None) -> int:
    """Extend the leases ``owner`` holds (only those of ``request_ids`` if given) to ``until``; the number
    of rows renewed."""
    query = update(async_events).where(async_events.c.owner == owner)
    if request_ids is not None:
        if not request_ids:
            return 0
        query = query.where(async_events.c.request_id.in_(list(request_ids)))
    return int(connection.execute(query.values(lease_until=until)).rowcount)


def owners(connection: Connection) -> set[str]:
    """Every process that holds at least one event."""
    query = select(async_events.c.owner).where(async_events.c.owner.is_not(None)).distinct()
    return {str(row[0]) for row in connection.execute(query)}


def release_owners(connection: Connection, gone: Iterable[str]) -> int:
    """Let go of every event the ``gone`` owners hold, so that any worker can take them at once."""
    gone = list(gone)
    if not gone:
        return 0
    result = connection.execute(
        update(async_events).where(async_events.c.owner.in_(gone)).values(owner=None, lease_until=0)
    )
    return int(result.rowcount)


def release_partition(connection: Connection, partition: int, owner: str) -> int:
    """Let go of the events of ``partition`` that ``owner`` holds (a dead node whose partition changed
    hands: its events run again now rather than when their leases run out)."""
    result = connection.execute(
        update(async_events)
        .where(async_events.c.partition == partition, async_events.c.owner == owner)
        .values(owner=None, lease_until=0)
    )
    return int(result.rowcount)


def reschedule(connection: Connection, request_id: str, owner: str, **changes: Any) -> bool:
    """Let go of a held event with ``changes`` (due_at, attempts, requeues, response, outcome,
    deliveries, finished_at); False when ``owner`` no longer holds it (its lease ran out and another
    worker took it)."""
    result = connection.execute(
        update(async_events)
        .where(async_events.c.request_id == request_id, async_events.c.owner == owner)
        .values(owner=None, lease_until=0, **changes)
    )
    return bool(result.rowcount)


def delete_events(connection: Connection, request_ids: Sequence[str]) -> None:
    """Remove finished events."""
    if request_ids:
        connection.execute(delete(async_events).where(async_events.c.request_id.in_(list(request_ids))))


def get_event(connection: Connection, request_id: str) -> StoredEvent | None:
    """One event, or None once it is finished and gone."""
    row = connection.execute(select(async_events).where(async_events.c.request_id == request_id)).first()
    return _from_row(row) if row else None


def count(connection: Connection) -> int:
    """Events in the queue (waiting, running or delivering)."""
    return int(connection.execute(select(func.count()).select_from(async_events)).scalar_one())
