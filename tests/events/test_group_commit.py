"""Group commit: concurrent writes share transactions, multi-row writers get one call per batch, and a
faulty write fails alone."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Connection

from lambdad.events.group_commit import GroupCommitter
from lambdad.store import Database
from lambdad.store import async_events as store
from lambdad.store.async_events import NewEvent


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    return db


def new_event() -> NewEvent:
    return NewEvent(str(uuid.uuid4()), "000000000000", "us-east-1", "f", None, b"{}")


def test_concurrent_writes_share_few_transactions(database: Database) -> None:
    calls: list[int] = []

    def insert_many(connection: Connection, events: list[NewEvent]) -> None:
        calls.append(len(events))
        store.insert_many(connection, events)

    async def main() -> int:
        committer = GroupCommitter(database)
        await asyncio.gather(*(committer.add(insert_many, new_event()) for _ in range(2000)))
        await committer.close()
        return committer.commits

    commits = asyncio.run(main())
    with database.read() as connection:
        assert store.count(connection) == 2000
    assert commits <= 20, f"{commits} commits for 2,000 concurrent writes"
    assert len(calls) == commits and sum(calls) == 2000, "one multi-row call per transaction"


def test_a_failing_write_fails_alone(database: Database) -> None:
    async def main() -> tuple[list[object], int]:
        committer = GroupCommitter(database)
        good = [new_event() for _ in range(5)]

        def broken(connection: Connection) -> None:
            raise ValueError("this write is wrong")

        results = await asyncio.gather(
            *(committer.write(lambda c, e=e: store.insert(c, e)) for e in good[:2]),
            committer.write(broken),
            *(committer.write(lambda c, e=e: store.insert(c, e)) for e in good[2:]),
            return_exceptions=True,
        )
        await committer.close()
        with database.read() as connection:
            return results, store.count(connection)

    results, stored = asyncio.run(main())
    assert [type(r).__name__ for r in results] == ["NoneType"] * 2 + ["ValueError"] + ["NoneType"] * 3
    assert stored == 5
