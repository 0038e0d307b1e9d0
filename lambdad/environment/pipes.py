"""Reading a sandbox's output pipe without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
from collections.abc import Callable

READ_LIMIT = 256 * 1024  # bytes read per call: one noisy sandbox cannot hold the event loop for long

#: A pipe's size once its output is being discarded: each wake-up then drops up to this much, so a
#: flood costs lambdad a hundred wake-ups a second rather than thousands (64 KB each).
DISCARD_PIPE_BYTES = 1024 * 1024

_devnull = -1


def widen(fd: int, size: int = DISCARD_PIPE_BYTES) -> None:
    """Let the pipe hold ``size`` bytes (its pages are only allocated as data arrives)."""
    with contextlib.suppress(OSError):  # past /proc/sys/fs/pipe-max-size: keep the pipe as it is
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)


def read_available(fd: int, limit: int = READ_LIMIT) -> bytes | None:
    """What the pipe holds right now, up to ``limit`` bytes (``b""`` if nothing), or None at end of
    file, when the event loop's reader on ``fd`` is removed. A descriptor closed meanwhile reads as
    nothing. The rest waits in the pipe (the writer blocks once it is full) for the next call."""
    chunks: list[bytes] = []

    def read(wanted: int) -> int:
        chunk = os.read(fd, min(65536, wanted))
        chunks.append(chunk)
        return len(chunk)

    size = _drain(fd, limit, read)
    return b"".join(chunks) if size or size is not None else None


def discard_available(fd: int, limit: int = READ_LIMIT) -> int | None:
    """Throw away what the pipe holds right now, up to ``limit`` bytes, without copying it into lambdad
    (``splice`` to /dev/null moves the pipe's pages in the kernel): the number of bytes discarded, or
    None at end of file, when the event loop's reader on ``fd`` is removed. Output over the log's budget
    goes this way, so that a flood costs lambdad next to nothing."""
    global _devnull
    if _devnull < 0:
        _devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    devnull = _devnull
    return _drain(fd, limit, lambda wanted: os.splice(fd, devnull, wanted, flags=os.SPLICE_F_NONBLOCK))


def _drain(fd: int, limit: int, take: Callable[[int], int]) -> int | None:
    """Call ``take(at most n bytes)`` until ``limit`` bytes were taken or the pipe is empty: the bytes
    taken, or None if the pipe reached its end with nothing taken (the reader is then removed)."""
    taken = 0
    while taken < limit:
        try:
            moved = take(limit - taken)
        except BlockingIOError:
            break
        except OSError as error:
            if error.errno == errno.EBADF:
                break
            raise
        if not moved:
            asyncio.get_running_loop().remove_reader(fd)
            return taken or None
        taken += moved
    return taken
