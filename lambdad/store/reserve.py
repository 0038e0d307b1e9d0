"""Room kept back on the data directory's disk, so that a full disk can be dug out of without a restart.

With no byte free, the database cannot write its journal, so DeleteFunction fails like every other
write, and the space functions hold could never be given back. lambdad holds a few MB in a file of its
own, gives them up the first time a request finds the disk full (deletes then succeed), and takes them
back once the disk has room again.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_BYTES = 4 * 1024 * 1024


class DiskReserve:
    """``size`` bytes allocated to ``path`` while the disk has room for them twice over."""

    def __init__(self, path: Path, size: int = RESERVE_BYTES) -> None:
        self.path = path
        self.size = size
        self.held = path.exists() and path.stat().st_size >= size

    def hold(self) -> bool:
        """Take the room back if it is free (cheap when already held); whether it is held."""
        if self.held:
            return True
        try:
            stats = os.statvfs(self.path.parent)
            if stats.f_bavail * stats.f_frsize < 2 * self.size:
                return False
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)  # blocks really allocated, not a sparse file
            finally:
                os.close(fd)
        except OSError as error:
            log.debug("the disk reserve %s could not be taken: %s", self.path, error)
            with contextlib.suppress(OSError):
                self.path.unlink()
            return False
        self.held = True
        return True

    def release(self) -> bool:
        """Give the room up (the disk is full); whether there was any to give."""
        if not self.held:
            return False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.held = False
        log.warning(
            "the disk is full: released the %d MB kept in reserve, so deletes can free space",
            self.size // (1024 * 1024),
        )
        return True
