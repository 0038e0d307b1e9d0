"""Reading a sandbox's output pipe without blocking the event loop."""

from __future__ import annotations

import asyncio
import errno
import os

READ_LIMIT = 256 * 1024  # bytes read per call: one noisy sandbox cannot hold the event loop for long


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
