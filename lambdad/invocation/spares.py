"""Spare environments kept ready per key, so that a cold start only specialises one (see
``lambdad.environment.spare``).

For every key used within the idle timeout (a cold or warm start of a function whose image has that
key), ``per_key`` spares are kept: one taken by a cold start is replaced in the background. A key unused
for the idle timeout loses its spares, so an idle server ends with no sandbox at all (scale to zero).
A key whose spares keep failing to start is given up on (logged), and cold starts take the usual path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from lambdad.environment import Spare, SpareKey

log = logging.getLogger(__name__)

SpareMaker = Callable[[SpareKey], Spare]
MAX_FAILURES = 3  # consecutive failed starts after which a key gets no more spares


class SparePool:
    """Spares of one server, by key. Lives on the server's event loop."""

    def __init__(self, make_spare: SpareMaker, per_key: int = 1, idle_timeout_s: float = 300) -> None:
        self._make_spare = make_spare
        self.per_key = per_key
        self.idle_timeout_s = idle_timeout_s
        self._ready: dict[SpareKey, list[Spare]] = {}
        self._filling: dict[SpareKey, set[asyncio.Task[None]]] = {}
        self._last_used: dict[SpareKey, float] = {}
        self._failures: dict[SpareKey, int] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def spares(self) -> int:
        """Spares ready now (not counting those starting)."""
        return sum(len(ready) for ready in self._ready.values())

    @property
    def starting(self) -> int:
        return sum(len(tasks) for tasks in self._filling.values())

    def take(self, key: SpareKey, fits: Callable[[Spare], bool]) -> Spare | None:
        """A ready spare of ``key`` that ``fits`` the function, or None. No replacement starts here: the
        caller calls ``note`` once its cold start is done, so refilling never competes with it for CPU."""
        if not self._closed:
            self._last_used[key] = time.monotonic()
        ready = self._ready.get(key)
        chosen: Spare | None = None
        while ready:
            spare = ready[-1]
            if not spare.ready:  # its runtime died meanwhile
                ready.pop()
                self._stop(spare)
                continue
            if fits(spare):
                chosen = ready.pop()
            break  # spares of one key are alike: if this one does not fit, none does
        return chosen

    def note(self, key: SpareKey) -> None:
        """``key`` is in use: keep (or start) its spares for another idle timeout."""
        if self._closed:
            return
        self._last_used[key] = time.monotonic()
        ready = self._ready.get(key)
        if ready is None or len(ready) + len(self._filling.get(key, ())) < self.per_key:
            self._refill(key)

    def reap(self, now: float | None = None) -> int:
        """Drop the spares of keys unused for the idle timeout; returns how many keys."""
        moment = time.monotonic() if now is None else now
        stale = [key for key, used in self._last_used.items() if moment - used >= self.idle_timeout_s]
        for key in stale:
            self._drop(key)
        return len(stale)

    async def close(self) -> None:
        """Stop every spare (and those starting) and wait until they are gone."""
        self._closed = True
        for key in list({*self._ready, *self._filling, *self._last_used}):
            self._drop(key)
        await self.settle()

    async def settle(self) -> None:
        """Wait for spares being started or stopped (tests, shutdown)."""
        while self._stopping or any(self._filling.values()):
            pending = [*self._stopping, *(t for tasks in self._filling.values() for t in tasks)]
            await asyncio.gather(*pending, return_exceptions=True)

    # --- internals ---------------------------------------------------------------------------------

    def _drop(self, key: SpareKey) -> None:
        self._last_used.pop(key, None)
        for spare in self._ready.pop(key, []):
            self._stop(spare)
        for task in self._filling.get(key, set()):
            task.cancel()  # Spare.start cleans up after itself

    def _refill(self, key: SpareKey) -> None:
        if self._closed or key not in self._last_used or self._failures.get(key, 0) >= MAX_FAILURES:
            return
        ready = self._ready.setdefault(key, [])
        filling = self._filling.setdefault(key, set())
        loop = asyncio.get_running_loop()
        while len(ready) + len(filling) < self.per_key:
            task = loop.create_task(self._fill(key))
            filling.add(task)
            task.add_done_callback(filling.discard)

    async def _fill(self, key: SpareKey) -> None:
        spare = self._make_spare(key)
        try:
            await spare.start()
        except asyncio.CancelledError:
            return
        except Exception as error:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            log.warning("starting a spare %s environment failed (%d): %s", key.runtime, failures, error)
            if failures >= MAX_FAILURES:
                log.warning("no more spares for %s: cold starts take the full path", key.runtime)
            return
        self._failures.pop(key, None)
        if self._closed or key not in self._last_used:
            self._stop(spare)
            return
        self._ready.setdefault(key, []).append(spare)

    def _stop(self, spare: Spare) -> None:
        task = asyncio.get_running_loop().create_task(self._destroy(spare))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    @staticmethod
    async def _destroy(spare: Spare) -> None:
        with contextlib.suppress(Exception):
            await spare.destroy()
