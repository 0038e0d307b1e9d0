"""Reading a sandbox's output pipe without blocking the event loop."""

from __future__ import annotations

import asyncio
import errno
import os


def read_available(fd: int) -> bytes | None:
    """Everything the pipe holds right now (``b""`` if nothing), or None at end of file, when the
    event loop's reader on ``fd`` is removed. A descriptor closed meanwhile reads as nothing."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return b"".join(chunks)
        except OSError as error:
            if error.errno == errno.EBADF:
                return b"".join(chunks)
            raise
        if not chunk:
            asyncio.get_running_loop().remove_reader(fd)
            return None if not chunks else b"".join(chunks)
        chunks.append(chunk)
