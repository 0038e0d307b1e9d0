"""Numbers leased from a range shared by every lambdad process on the machine (host uids, addresses).

A lease is a file ``<directory>/<number>`` held under an exclusive ``flock`` for as long as the
lease lives. The lock is the allocation: the kernel drops it when the holder closes the file or
dies, so a SIGKILLed server's numbers come back by themselves, with no clean-up pass and no pid
files to judge. Files are never deleted (deleting a lock file races with a process about to lock
it); a released lease's file is truncated, so a file that still names an owner when it is locked
anew is the trace of a holder that died: the caller's ``reclaimable`` check decides whether the
number is safe to hand out again (for a uid: no process of a dead server's sandbox still runs as
it).

Why hand-written: the machine-wide, crash-safe part is one ``flock``; no library offers that
more simply.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import random
from collections.abc import Callable
from pathlib import Path

__all__ = ["Lease", "LeasePool"]


class Lease:
    """One number held by this process until :meth:`release` (or until the process dies)."""

    def __init__(self, number: int, fd: int, path: Path) -> None:
        self.number = number
        self.path = path
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        """Give the number back. Idempotent."""
        if self._fd < 0:
            return
        try:
            os.ftruncate(self._fd, 0)  # no owner: the next holder need not check anything
        finally:
            os.close(self._fd)  # drops the lock
            self._fd = -1


class _Traced(Lease):
    """A dead holder's lease, locked for a look: released without erasing the holder's trace."""

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class LeasePool:
    """Leases of the numbers ``first .. first + count - 1`` under ``directory``.

    ``reclaimable(number)`` is asked only about a number whose previous holder died without
    releasing it; returning False skips the number this time.
    """

    def __init__(
        self,
        directory: Path,
        first: int,
        count: int,
        *,
        reclaimable: Callable[[int], bool] | None = None,
    ) -> None:
        if count < 1 or first < 0:
            raise ValueError(f"invalid lease range: first={first} count={count}")
        self.directory = directory
        self.first = first
        self.count = count
        self._reclaimable = reclaimable

    def acquire(self, owner: str) -> Lease:
        """Lease a free number; ``owner`` is written into the lease file (for people reading it).

        Random probes first (cheap while the range is mostly free, and processes rarely collide),
        then one pass over the whole range, so a nearly full range is still found.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        probes = (self.first + random.randrange(self.count) for _ in range(min(32, self.count)))
        start = random.randrange(self.count)
        scan = (self.first + (start + i) % self.count for i in range(self.count))
        for number in itertools.chain(probes, scan):
            lease = self._try(number, owner)
            if lease is not None:
                return lease
        raise OSError(errno.EAGAIN, f"all {self.count} leases under {self.directory} are taken")

    def _try(self, number: int, owner: str) -> Lease | None:
        path = self.directory / str(number)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            stale = os.fstat(fd).st_size > 0
            if stale and self._reclaimable is not None and not self._reclaimable(number):
                os.close(fd)
                return None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {owner}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return Lease(number, fd, path)

    def dead_holders(self) -> list[Lease]:
        """The numbers whose holder died without releasing them, each locked by this process (so
        nobody can take it meanwhile) but not reclaimed: release the leases once done with them (the
        file keeps its trace, and ``reclaimable`` still decides when the number is handed out)."""
        locked: list[Lease] = []
        if not self.directory.is_dir():
            return locked
        for entry in os.scandir(self.directory):
            if not entry.name.isdigit() or not self.first <= int(entry.name) < self.first + self.count:
                continue
            if entry.stat().st_size == 0:
                continue  # released (or being written by a new holder, which holds its lock)
            path = Path(entry.path)
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_size > 0:
                    locked.append(_Traced(int(path.name), fd, path))
                    continue
            except BlockingIOError:
                pass  # held: its holder lives
            os.close(fd)
        return locked

    def held_elsewhere(self, number: int) -> bool:
        """Whether some process holds ``number`` now (tests; never used to allocate)."""
        path = self.directory / str(number)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False
