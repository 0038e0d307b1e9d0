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
    run: Callable[[Connection], T]
    done: asyncio.Future[T] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitter:
    """Runs writes handed to ``write`` in shared transactions, in the order they arrived."""

    def __init__(self, database: Database, window: float = 0.001, max_batch: int = 2000) -> None:
        self._database = database
        # How long the writer waits for company after the first write of a batch arrives.
        self._window = window
        self._max_batch = max_batch
        self._pending: asyncio.Queue[_Write[Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed (tests and benchmarks read it)

    async def write(self, run: Callable[[Connection], T]) -> T:
        """Run ``run(connection)`` in a write transaction; return its result once committed."""
        if self._task is None or self._pending is None:
            self._pending = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._writer(self._pending))
        item: _Write[T] = _Write(run)
        self._pending.put_nowait(item)
        return await item.done

    async def close(self) -> None:
        """Stop the writer; writes already handed over are finished first."""
        task, pending = self._task, self._pending
        self._task = self._pending = None
        if task is None or pending is None:
            return
        while not pending.empty():
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
                results = await anyio.to_thread.run_sync(self._commit, [item.run for item in batch])
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
                        result = await anyio.to_thread.run_sync(self._commit, [item.run])
                        _answer(item, result[0], None)
                    except Exception as error:
                        _answer(item, None, error)
                continue
            for item, result in zip(batch, results, strict=True):
                _answer(item, result, None)

    def _commit(self, runs: list[Callable[[Connection], Any]]) -> list[Any]:
        with self._database.write() as connection:
            results = [run(connection) for run in runs]
        self.commits += 1
        return results


def _answer(item: _Write[Any], result: Any, error: BaseException | None) -> None:
    if item.done.done():  # the caller gave up waiting (cancelled)
        return
    if error is not None:
        item.done.set_exception(error)
    else:
        item.done.set_result(result)
