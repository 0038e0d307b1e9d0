"""The durable Event queue's table on SQLite and PostgreSQL: enqueue inside a caller's transaction,
claims that respect due times and leases, lease renewal and release, and finishing."""

from __future__ import annotations

import uuid

import pytest

from lambdad.store import Database
from lambdad.store import async_events as store
from lambdad.store.async_events import NewEvent


def event(created_at: int | None = None, **changes: object) -> NewEvent:
    values: dict[str, object] = {
        "request_id": str(uuid.uuid4()),
        "account": "000000000000",
        "region": "us-east-1",
        "function_name": "f",
        "qualifier": None,
        "payload": b'{"n": 1}',
        "created_at": created_at,
    }
    values.update(changes)
    return NewEvent(**values)  # type: ignore[arg-type]


def test_insert_joins_the_callers_transaction(database: Database) -> None:
    kept, rolled_back = event(), event()
    with database.write() as connection:
        store.insert(connection, kept)
    with pytest.raises(RuntimeError), database.write() as connection:
        store.insert(connection, rolled_back)
        raise RuntimeError("the caller's transaction fails after the insert")
    with database.read() as connection:
        stored = store.get_event(connection, kept.request_id)
        assert store.get_event(connection, rolled_back.request_id) is None
    assert stored is not None
    assert (stored.payload, stored.attempts, stored.owner, stored.outcome) == (b'{"n": 1}', 0, None, None)
    assert stored.due_at == stored.created_at


def test_claim_takes_due_events_oldest_first_and_leases_them(database: Database) -> None:
    now = store.now_ms()
    old, newer, future = event(now - 2000), event(now - 1000), event(now + 60_000)
    with database.write() as connection:
        store.insert_many(connection, [newer, future, old])
    with database.write() as connection:
        claimed = store.claim(connection, "me", now, 30_000, 10)
    assert [e.request_id for e in claimed] == [old.request_id, newer.request_id]
    assert {(e.owner, e.lease_until) for e in claimed} == {("me", now + 30_000)}
    with database.write() as connection:
        assert store.claim(connection, "other", now, 30_000, 10) == [], "held events are not claimed twice"
        later = store.claim(connection, "other", now + 30_001, 30_000, 10)
    assert {e.request_id for e in later} == {old.request_id, newer.request_id}, "an expired lease frees them"


def test_claim_respects_its_limit(database: Database) -> None:
    with database.write() as connection:
        store.insert_many(connection, [event() for _ in range(5)])
    with database.write() as connection:
        assert len(store.claim(connection, "me", store.now_ms() + 1, 1000, 3)) == 3
        assert len(store.claim(connection, "me", store.now_ms() + 1, 1000, 3)) == 2


def test_renew_extends_only_the_owners_leases(database: Database) -> None:
    now = store.now_ms()
    with database.write() as connection:
        store.insert_many(connection, [event(now - 10) for _ in range(3)])
        mine = store.claim(connection, "me", now, 1000, 2)
        theirs = store.claim(connection, "them", now, 1000, 1)
        assert store.renew(connection, "me", now + 99_000) == 2
    with database.read() as connection:
        assert {store.get_event(connection, e.request_id).lease_until for e in mine} == {now + 99_000}  # type: ignore[union-attr]
        assert store.get_event(connection, theirs[0].request_id).lease_until == now + 1000  # type: ignore[union-attr]
        assert store.owners(connection) == {"me", "them"}


def test_renew_can_name_the_events_to_keep(database: Database) -> None:
    now = store.now_ms()
    with database.write() as connection:
        store.insert_many(connection, [event(now - 10) for _ in range(2)])
        kept, dropped = store.claim(connection, "me", now, 1000, 2)
        assert store.renew(connection, "me", now + 50_000, [kept.request_id]) == 1
        assert store.renew(connection, "me", now + 50_000, []) == 0
    with database.read() as connection:
        assert store.get_event(connection, kept.request_id).lease_until == now + 50_000  # type: ignore[union-attr]
        assert store.get_event(connection, dropped.request_id).lease_until == now + 1000  # type: ignore[union-attr]


def test_released_owners_events_can_be_claimed_at_once(database: Database) -> None:
    now = store.now_ms()
    with database.write() as connection:
        store.insert(connection, event(now - 10))
        store.claim(connection, "dead", now, 3_600_000, 1)
        assert store.release_owners(connection, ["dead"]) == 1
        assert [e.owner for e in store.claim(connection, "alive", now, 1000, 5)] == ["alive"]


def test_reschedule_needs_the_lease_and_lets_go_of_it(database: Database) -> None:
    now = store.now_ms()
    queued = event(now - 10)
    with database.write() as connection:
        store.insert(connection, queued)
        store.claim(connection, "me", now, 1000, 1)
        assert not store.reschedule(connection, queued.request_id, "someone-else", due_at=now + 5)
        assert store.reschedule(
            connection,
            queued.request_id,
            "me",
            due_at=now + 5000,
            attempts=1,
            response={"statusCode": 200, "payload": "{}"},
            outcome="Success",
            deliveries=[{"target": "arn:aws:sqs:us-east-1:000000000000:q", "body": "{}"}],
        )
    with database.read() as connection:
        stored = store.get_event(connection, queued.request_id)
    assert stored is not None
    assert (stored.owner, stored.lease_until, stored.attempts, stored.outcome) == (None, 0, 1, "Success")
    assert stored.due_at == now + 5000
    assert stored.response == {"statusCode": 200, "payload": "{}"}
    assert stored.deliveries == [{"target": "arn:aws:sqs:us-east-1:000000000000:q", "body": "{}"}]


def test_delete_removes_finished_events(database: Database) -> None:
    events = [event() for _ in range(3)]
    with database.write() as connection:
        store.insert_many(connection, events)
        store.delete_events(connection, [events[0].request_id, events[2].request_id])
    with database.read() as connection:
        assert store.count(connection) == 1
        assert store.get_event(connection, events[1].request_id) is not None


def test_a_request_id_is_enqueued_once(database: Database) -> None:
    queued = event()
    with database.write() as connection:
        store.insert(connection, queued)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), database.write() as connection:
        store.insert(connection, queued)
