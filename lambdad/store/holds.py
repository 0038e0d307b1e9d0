"""What keeps code on disk besides the database's records: holds.

Code (a package's zip and its unpacked tree, both named by the package's digest, and a function's layers
merged under a name of their own) may be removed once no record refers to it AND nothing holds it. A
hold is taken by whoever is about to use code the records may not (yet, or any longer) name: a create
or update between storing its zip and committing its record, a preparation or cold start while it
unpacks, an execution environment while it lives (an environment of an old version keeps its files until
it is drained).

A reclaimer removes code in two steps so that it never reads the database under the lock that holds
wait on: ``condemn`` marks the unheld candidates; the reclaimer then reads which digests the records
name; ``execute`` removes the candidates that are still condemned and not named. A hold taken in between
pardons its key, so whatever a record named after the read was held across it and survives.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager


class CodeHolds:
    """Counted holds on code keys (digests, merged-layer names), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._condemned: set[str] = set()
        # Keys a reclaim found unreferenced but held: their last release calls ``on_free``.
        self._deferred: set[str] = set()
        #: Called (outside the lock) when code may have become free to remove; set by the reclaimer.
        self.on_free: Callable[[], None] = lambda: None

    def hold(self, keys: Iterable[str]) -> None:
        """Keep ``keys`` (one count each) until ``release``."""
        with self._lock:
            for key in keys:
                self._counts[key] += 1
                self._condemned.discard(key)

    def release(self, keys: Iterable[str]) -> None:
        """Give back holds taken with ``hold``."""
        freed = False
        with self._lock:
            for key in keys:
                self._counts[key] -= 1
                if self._counts[key] <= 0:
                    del self._counts[key]
                    if key in self._deferred:
                        self._deferred.discard(key)
                        freed = True
        if freed:
            self.on_free()

    @contextmanager
    def holding(self, keys: Collection[str]) -> Iterator[None]:
        """Hold ``keys`` for the duration of a block."""
        self.hold(keys)
        try:
            yield
        finally:
            self.release(keys)

    def dereferenced(self) -> None:
        """Records may no longer name some code (a layer version was deleted): look for it soon."""
        self.on_free()

    def condemn(self, candidates: Iterable[str]) -> set[str]:
        """Mark the unheld ``candidates`` for removal; returns them."""
        with self._lock:
            self._condemned = {key for key in candidates if key not in self._counts}
            return set(self._condemned)

    def execute(
        self, on_disk: Collection[str], referenced: Collection[str], remove: Callable[[str], None]
    ) -> tuple[set[str], bool]:
        """Call ``remove(key)`` (under the lock: it should only rename) for every key still condemned
        that ``referenced`` does not name; the unreferenced keys still held are removed later, when
        their last hold is released (``on_free``). Returns the keys removed, and whether some key
        was released between ``condemn`` and now (unheld, unreferenced, not removed: look again)."""
        with self._lock:
            unreferenced = set(on_disk) - set(referenced)
            removed = self._condemned & unreferenced
            for key in removed:
                remove(key)
            self._condemned.clear()
            held = {key for key in unreferenced if key in self._counts}
            self._deferred = (self._deferred | held) & set(self._counts)
            return removed, bool(unreferenced - removed - held)

    def held(self, key: str) -> bool:
        """Whether ``key`` is held now."""
        with self._lock:
            return key in self._counts
