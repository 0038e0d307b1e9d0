"""The output of a multi-concurrency runtime's workers, one stream per worker, told apart.

AWS's runtimes for Managed Instances connect each worker's stdout and stderr to the Unix socket named by
``_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET`` (awslambdaric: ``MultiConcurrentRunner._redirect_output``), so
that workers writing at the same moment do not interleave within a line as they would in one shared pipe.
lambdad listens on that socket (in a directory of its own, mounted into the sandbox) and reads each
connection on its own. Whose output a connection carries: the kernel says which process connected
(``SO_PEERCRED``), /proc says which TCP connection to the Runtime API that process holds, and the Runtime
API server says which request id it last handed out on that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

from lambdad.environment.output import LineSplitter

log = logging.getLogger(__name__)

SOCKET_VARIABLE = "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"
SANDBOX_DIR = "/var/lambdad/workers"  # where the socket's directory is mounted in the sandbox
SOCKET_NAME = "output.sock"
READ_BYTES = 65536
FINAL_READ_BYTES = 1024 * 1024  # per worker stream, when an invocation ends
_UCRED = struct.Struct("3i")

#: (pid of the writer, bytes read) -> how many of them the log admits (the rest is dropped).
Admit = Callable[[int], int]
#: (pid of the writer, one line).
OnLine = Callable[[int, str], None]


class _Stream:
    __slots__ = ("lines", "pid", "sock")

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock, self.pid, self.lines = sock, pid, LineSplitter()


class WorkerOutput:
    """The listening socket and every worker stream connected to it. Lives on the event loop."""

    def __init__(self, on_line: OnLine, admit: Admit) -> None:
        self._on_line = on_line
        self._admit = admit
        self.dropped = 0
        # A short host path (a Unix socket's path is at most 107 bytes), readable by the sandbox's uid.
        self.host_dir = Path(tempfile.mkdtemp(prefix="lambdad-workers-"))
        self.host_dir.chmod(0o755)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = self.host_dir / SOCKET_NAME
        self._listener.bind(str(path))
        path.chmod(0o777)  # connecting needs write permission on the socket, for any uid
        self._listener.listen(64)
        self._listener.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._listener.fileno(), self._accept)
        self._streams: dict[int, _Stream] = {}  # by file descriptor

    @property
    def sandbox_path(self) -> str:
        return f"{SANDBOX_DIR}/{SOCKET_NAME}"

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        pid, _, _ = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
        stream = _Stream(sock, pid)
        self._streams[sock.fileno()] = stream
        self._loop.add_reader(sock.fileno(), self._read, stream, READ_BYTES)

    def _read(self, stream: _Stream, limit: int) -> None:
        """Read up to ``limit`` bytes of ``stream`` (what is there: never waits) and pass on its lines."""
        read = 0
        while read < limit:
            try:
                data = stream.sock.recv(min(READ_BYTES, limit - read))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # the worker closed it (exited)
                for line in stream.lines.break_line():
                    self._on_line(stream.pid, line)
                self._forget(stream)
                return
            read += len(data)
            admitted = self._admit(len(data))
            self.dropped += len(data) - admitted
            for line in stream.lines.feed(data[:admitted]):
                self._on_line(stream.pid, line)

    def drain(self) -> None:
        """Read what every worker has written so far (an invocation ends: its output is all there)."""
        for stream in list(self._streams.values()):
            self._read(stream, FINAL_READ_BYTES)

    def _forget(self, stream: _Stream) -> None:
        fd = stream.sock.fileno()
        if self._streams.pop(fd, None) is not None:
            self._loop.remove_reader(fd)
        stream.sock.close()

    def close(self) -> None:
        """Stop listening, close every stream, remove the directory (idempotent)."""
        if self._listener.fileno() >= 0:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
        for stream in list(self._streams.values()):
            self._forget(stream)
        shutil.rmtree(self.host_dir, ignore_errors=True)


def tcp_ports_of(pid: int) -> set[int]:
    """The local ports of the TCP sockets process ``pid`` holds (empty if it is gone or hidden)."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        ports = set()
        for table in ("tcp", "tcp6"):
            with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/net/{table}") as entries:
                next(entries, None)
                for entry in entries:
                    fields = entry.split()
                    if len(fields) > 9 and fields[9] in inodes:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports
    except OSError as error:
        log.debug("cannot read the sockets of process %d: %s", pid, error)
        return set()
