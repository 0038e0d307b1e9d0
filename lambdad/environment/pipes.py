"""Reading a sandbox's output pipe without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os

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
    size = 0
    while size < limit:
        try:
            chunk = os.read(fd, min(65536, limit - size))
        except BlockingIOError:
            break
        except OSError as error:
            if error.errno == errno.EBADF:
                break
            raise
        if not chunk:
            asyncio.get_running_loop().remove_reader(fd)
            return None if not chunks else b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def discard_available(fd: int, limit: int = READ_LIMIT) -> int | None:
    """Throw away what the pipe holds right now, up to ``limit`` bytes, without copying it into lambdad
    (``splice`` to /dev/null moves the pipe's pages in the kernel): the number of bytes discarded, or
    None at end of file, when the event loop's reader on ``fd`` is removed. Output over the log's budget
    goes this way, so that a flood costs lambdad next to nothing."""
    global _devnull
    if _devnull < 0:
        _devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    discarded = 0
    while discarded < limit:
        try:
            moved = os.splice(fd, _devnull, limit - discarded, flags=os.SPLICE_F_NONBLOCK)
        except BlockingIOError:
            break
        except OSError as error:
            if error.errno == errno.EBADF:
                break
            raise
        if not moved:
            asyncio.get_running_loop().remove_reader(fd)
            return discarded or None
        discarded += moved
    return discarded
