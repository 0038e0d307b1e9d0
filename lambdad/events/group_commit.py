"""One writer task that commits whatever writes arrive together in one transaction (group commit).

A commit costs the same whether it carries one row or a thousand: SQLite takes its write lock, writes the
WAL and (at checkpoints) syncs, PostgreSQL waits for its WAL flush. Concurrent callers each hand over a
small write (a function of the open connection) and wait; the writer collects what arrives within a
couple of milliseconds, runs it all in one transaction in a worker thread, and answers each caller.
A write that fails is retried alone, so one bad write fails only its own caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio.to_thread
from sqlalchemy import Connection

from lambdad.store import Database

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Write(Generic[T]):
    run: Callable[[Connection], T] | None
    done: asyncio.Future[T] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    # For ``add``: a writer of many items at once, and this write's item.
    many: Callable[[Connection, list[Any]], None] | None = None
    item: Any = None


class GroupCommitter:
    """Runs writes handed to ``write`` in shared transactions, in the order they arrived."""

    def __init__(self, database: Database, window: float = 0.0, max_batch: int = 2000) -> None:
        self._database = database
        # How long the writer waits for company after the first write of a batch arrives. 0 is fastest
        # (measured: bench/async_events.py): writes arriving while a commit runs form the next batch.
        self._window = window
        self._max_batch = max_batch
        self._pending: asyncio.Queue[_Write[Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed (tests and benchmarks read it)

    async def write(self, run: Callable[[Connection], T]) -> T:
        """Run ``run(connection)`` in a write transaction; return its result once committed."""
        return await self._hand_over(_Write(run))

    async def add(self, many: Callable[[Connection, list[Any]], None], item: Any) -> None:
        """Write ``item`` with ``many(connection, items)``, called once per batch for all the items
        handed to the same ``many`` (one multi-row statement rather than one statement per row)."""
        await self._hand_over(_Write(None, many=many, item=item))

    async def _hand_over(self, write: _Write[T]) -> T:
        if self._task is None or self._pending is None or self._task.done():
            if self._task is not None and self._task.done() and not self._task.cancelled():
                log.error("the group-commit writer stopped: %r; starting another", self._task.exception())
            while self._pending is not None and not self._pending.empty():  # nobody will write these
                _answer(self._pending.get_nowait(), None, RuntimeError("the group-commit writer stopped"))
            self._pending = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._writer(self._pending))
        self._pending.put_nowait(write)
        return await write.done

    async def close(self) -> None:
        """Stop the writer; writes already handed over are finished first."""
        task, pending = self._task, self._pending
        self._task = self._pending = None
        if task is None or pending is None:
            return
        while not pending.empty() and not task.done():  # a writer that died answers nothing more
            await asyncio.sleep(0.001)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _writer(self, pending: asyncio.Queue[_Write[Any]]) -> None:
        while True:
            batch = [await pending.get()]
            if self._window > 0:
                await asyncio.sleep(self._window)
            while len(batch) < self._max_batch and not pending.empty():
                batch.append(pending.get_nowait())
            try:
                results = await anyio.to_thread.run_sync(self._commit, batch)
            except asyncio.CancelledError:
                for item in batch:
                    if not item.done.done():
                        item.done.cancel()
                raise
            except Exception:
                # Something in the batch failed and the whole transaction rolled back: run each write in
                # a transaction of its own so that only the faulty one fails.
                log.debug("a group commit of %d writes failed; retrying them one by one", len(batch))
                for item in batch:
                    try:
                        result = await anyio.to_thread.run_sync(self._commit, [item])
                        _answer(item, result[0], None)
                    except Exception as error:
                        _answer(item, None, error)
                continue
            for item, result in zip(batch, results, strict=True):
                _answer(item, result, None)

    def _commit(self, batch: list[_Write[Any]]) -> list[Any]:
        # Items for the same ``many`` writer go in one call, where the first of them stood.
        grouped: dict[Any, list[Any]] = {}
        for write in batch:
            if write.many is not None:
                grouped.setdefault(write.many, []).append(write.item)
        results: list[Any] = []
        with self._database.write() as connection:
            for write in batch:
                if write.run is not None:
                    results.append(write.run(connection))
                    continue
                items = grouped.pop(write.many, None)
                if items is not None and write.many is not None:
                    write.many(connection, items)
                results.append(None)
        self.commits += 1
        return results


def _answer(item: _Write[Any], result: Any, error: BaseException | None) -> None:
    if item.done.done():  # the caller gave up waiting (cancelled)
        return
    if error is not None:
        item.done.set_exception(error)
    else:
        item.done.set_result(result)
