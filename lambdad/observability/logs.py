"""Function logs, kept as AWS keeps them: log groups (``/aws/lambda/NAME``) of streams of events.

Each stream is one file of JSON lines (``{"timestamp": ms, "message": text}``) under
``logs/<group>/<stream>``, with ``/`` in names escaped, so ``lambdad logs`` and tests read them with no
server running. What a function may log is bounded (``LogLimits``): a rate per group, and the group's
bytes on disk (oldest streams removed). A log write never fails an invocation: a full disk loses events.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote

log = logging.getLogger(__name__)

MB = 1024 * 1024
FLUSH_BYTES = 64 * 1024  # a stream's buffer is written out at this size, and at each ``flush``


@dataclass(frozen=True)
class LogLimits:
    """What a function may put in its log group.

    ``rate_bytes`` per second of the function's own output (all its environments together), in bursts
    of up to ``burst_bytes``; what goes past it is dropped (and said so). ``group_max_bytes``: the
    group's files are kept under it by removing the oldest streams (AWS keeps logs by time; a disk is
    finite). 0 turns a bound off.
    """

    rate_bytes: int = MB
    burst_bytes: int = 10 * MB
    group_max_bytes: int = 256 * MB


@dataclass(frozen=True)
class LogEvent:
    """One log event."""

    timestamp_ms: int
    message: str
    stream: str


class OutputBudget:
    """A token bucket of bytes: ``admit(n)`` says how many of ``n`` bytes fit now, never waits.

    Hand-written (a dozen lines): the rate-limit libraries on PyPI count requests and wait, or want a
    storage backend; this needs bytes, a partial answer and no wait, on the event loop.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(burst, rate)
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()

    def admit(self, wanted: int) -> int:
        if self._rate <= 0:
            return wanted
        self._refill()
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def short_of(self, wanted: int) -> bool:
        """Whether fewer than ``wanted`` bytes (or, past its capacity, than a full bucket) would be
        admitted now."""
        if self._rate <= 0:
            return False
        self._refill()
        return self._tokens < min(wanted, self._capacity)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now


class _Group:
    """One log group's accounting: its output budget and the bytes its files hold."""

    def __init__(self, directory: Path, limits: LogLimits) -> None:
        self.directory = directory
        self.limits = limits
        self.budget = OutputBudget(limits.rate_bytes, limits.burst_bytes)
        self.lost_events = 0
        self._bytes = sum(_size(path) for path in _files(directory))

    def wrote(self, size: int) -> None:
        """``size`` bytes were appended; past the bound, remove the oldest streams."""
        bound = self.limits.group_max_bytes
        self._bytes += size
        if bound <= 0 or self._bytes <= bound:
            return
        # Down to three quarters of the bound, so that the next removal is a while away.
        paths = sorted(_files(self.directory), key=_mtime)
        self._bytes = sum(_size(path) for path in paths)
        while paths and self._bytes > bound * 3 // 4:
            oldest = paths.pop(0)
            removed = _size(oldest)
            try:
                oldest.unlink()
            except OSError:
                continue
            self._bytes -= removed


class LogShipper(Protocol):
    """Where function logs go besides this disk (a cluster's shared log, ``lambdad.cluster.logs``)."""

    def ship(self, group: str, stream: str, lines: bytes) -> None:
        """Take a flushed batch of a stream's JSON lines; must not block or raise (logs never fail an
        invocation)."""


class KeepLocal:
    """A single server: its disk is where the logs are."""

    def ship(self, group: str, stream: str, lines: bytes) -> None:
        pass


class LogStream:
    """An open stream: events are buffered and appended at each ``flush`` (the end of an invocation, or
    when the buffer fills).

    Writing never raises: a disk that is full or failing loses the events (counted in ``lost_events``,
    said once in lambdad's own log), never the invocation. A stream whose file retention removed
    starts a new file of the same name.
    """

    def __init__(
        self,
        path: Path,
        name: str,
        group: _Group | None = None,
        group_name: str = "",
        shipper: LogShipper | None = None,
    ) -> None:
        self.name = name
        self._group_name = group_name
        self._shipper = shipper
        self.lost_events = 0
        self._path = path
        self._group = group
        self._fd: int | None = None
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._events = 0
        self._torn = False  # a write was cut short: the next one starts on a new line
        self._failing = False
        with contextlib.suppress(OSError):  # the stream exists from the start; if it cannot, at a flush
            self._open()

    @property
    def rate_bytes(self) -> int:
        """The group's output budget per second (0: none)."""
        return 0 if self._group is None else self._group.limits.rate_bytes

    def admit(self, size: int) -> int:
        """How many of ``size`` bytes of the function's output the group's budget takes now."""
        return size if self._group is None else self._group.budget.admit(size)

    def over_budget(self, wanted: int) -> bool:
        """Whether the group's budget takes fewer than ``wanted`` bytes of output now (a reader then
        discards rather than reads a chunk to keep a sliver of it)."""
        return self._group is not None and self._group.budget.short_of(wanted)

    def write(self, message: str, timestamp_ms: int | None = None) -> None:
        """Append one event."""
        stamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        line = json.dumps({"timestamp": stamp, "message": message}, ensure_ascii=False) + "\n"
        data = line.encode("utf-8", errors="replace")
        self._buffer.append(data)
        self._buffered += len(data)
        self._events += 1
        if self._buffered >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Make written events visible to readers."""
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        events = self._events
        self._buffer, self._buffered, self._events = [], 0, 0
        if self._shipper is not None:
            self._shipper.ship(self._group_name, self.name, data)
        if self._torn:
            data = b"\n" + data
        try:
            fd = self._open()
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        except OSError as error:
            self._lose(events, error, torn=self._fd is not None)
            return
        self._torn = False
        if self._failing:
            self._failing = False
            log.warning("log stream %s is written again", self.name)
        if self._group is not None:
            self._group.wrote(len(data))

    def close(self) -> None:
        """Flush and close."""
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        if self._fd is not None and os.fstat(self._fd).st_nlink == 0:  # removed by retention
            os.close(self._fd)
            self._fd = None
        if self._fd is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._fd

    def _lose(self, events: int, error: OSError, torn: bool) -> None:
        self.lost_events += events
        if self._group is not None:
            self._group.lost_events += events
        self._torn = self._torn or torn  # part of a line may have reached the file
        if not self._failing:
            self._failing = True
            reason = "the disk is full" if error.errno == errno.ENOSPC else str(error)
            log.warning("log stream %s: events dropped, %s", self.name, reason)


class LogStore:
    """All log groups under one directory."""

    def __init__(
        self, root: Path, limits: LogLimits | None = None, shipper: LogShipper | None = None
    ) -> None:
        self.root = root
        self.limits = limits or LogLimits()
        # None on a single server: its flushes then cost nothing more than the disk write.
        self._shipper = None if isinstance(shipper, KeepLocal) else shipper
        self._groups: dict[str, _Group] = {}

    def open_stream(self, group: str, stream: str) -> LogStream:
        """A stream to append to (created if new)."""
        accounting = self._groups.get(group)
        if accounting is None:
            accounting = self._groups[group] = _Group(self._group_dir(group), self.limits)
        return LogStream(
            self._group_dir(group) / quote(stream, safe=""), stream, accounting, group, self._shipper
        )

    @property
    def lost_events(self) -> int:
        """Events no disk write could keep, since the server started."""
        return sum(group.lost_events for group in self._groups.values())

    def groups(self) -> list[str]:
        """Every log group's name."""
        if not self.root.exists():
            return []
        return sorted(unquote(p.name) for p in self.root.iterdir() if p.is_dir())

    def streams(self, group: str) -> list[str]:
        """A group's streams, oldest first."""
        directory = self._group_dir(group)
        if not directory.exists():
            return []
        return [unquote(p.name) for p in sorted(_files(directory), key=_mtime)]

    def events(self, group: str, since_ms: int = 0) -> list[LogEvent]:
        """A group's events from every stream, in time order."""
        found = [
            e
            for stream in self.streams(group)
            for e in self._read(group, stream)
            if e.timestamp_ms >= since_ms
        ]
        return sorted(found, key=lambda e: e.timestamp_ms)

    def follow(self, group: str, poll_seconds: float = 0.5) -> Iterator[LogEvent]:
        """Every event of a group, then new ones as they arrive (until the caller stops iterating)."""
        offsets: dict[str, int] = {}
        while True:
            fresh: list[LogEvent] = []
            for stream in self.streams(group):
                path = self._group_dir(group) / quote(stream, safe="")
                try:
                    handle = path.open("rb")
                except FileNotFoundError:  # removed by retention meanwhile
                    continue
                with handle:
                    handle.seek(offsets.get(stream, 0))
                    while (line := handle.readline()).endswith(b"\n"):  # a half-written line waits
                        offsets[stream] = handle.tell()
                        if (event := parse_event(line.decode("utf-8", errors="replace"), stream)) is not None:
                            fresh.append(event)
            yield from sorted(fresh, key=lambda e: e.timestamp_ms)
            time.sleep(poll_seconds)

    def _read(self, group: str, stream: str) -> Iterator[LogEvent]:
        path = self._group_dir(group) / quote(stream, safe="")
        try:
            handle = path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:  # removed by retention meanwhile
            return
        with handle:
            for line in handle:
                if line.endswith("\n") and (event := parse_event(line, stream)) is not None:
                    yield event

    def _group_dir(self, group: str) -> Path:
        return self.root / quote(group, safe="")


def parse_event(line: str, stream: str) -> LogEvent | None:
    """The event a line holds; None for a line a full disk cut short."""
    try:
        record = json.loads(line)
        return LogEvent(int(record["timestamp"]), str(record["message"]), stream)
    except (ValueError, TypeError, KeyError):
        return None


def _files(directory: Path) -> list[Path]:
    try:
        return [path for path in directory.iterdir() if path.is_file()]
    except FileNotFoundError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
