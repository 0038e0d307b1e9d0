"""Function logs, kept as AWS keeps them: log groups (``/aws/lambda/NAME``) of streams of events.

Each stream is one file of JSON lines (``{"timestamp": ms, "message": text}``) under
``logs/<group>/<stream>``, with ``/`` in names escaped, so ``lambdad logs`` and tests read them with no
server running.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class LogEvent:
    """One log event."""

    timestamp_ms: int
    message: str
    stream: str


class LogStream:
    """An open stream: events are appended and flushed at each ``flush`` (the end of an invocation)."""

    def __init__(self, path: Path, name: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.name = name
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, message: str, timestamp_ms: int | None = None) -> None:
        """Append one event."""
        stamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        self._file.write(json.dumps({"timestamp": stamp, "message": message}, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        """Make written events visible to readers."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close."""
        self._file.close()


class LogStore:
    """All log groups under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def open_stream(self, group: str, stream: str) -> LogStream:
        """A stream to append to (created if new)."""
        return LogStream(self._group_dir(group) / quote(stream, safe=""), stream)

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
        paths = sorted(directory.iterdir(), key=lambda p: p.stat().st_mtime)
        return [unquote(p.name) for p in paths]

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
                with path.open("rb") as handle:
                    handle.seek(offsets.get(stream, 0))
                    while (line := handle.readline()).endswith(b"\n"):  # a half-written line waits
                        offsets[stream] = handle.tell()
                        fresh.append(_event(line.decode("utf-8"), stream))
            yield from sorted(fresh, key=lambda e: e.timestamp_ms)
            time.sleep(poll_seconds)

    def _read(self, group: str, stream: str) -> Iterator[LogEvent]:
        path = self._group_dir(group) / quote(stream, safe="")
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):
                    yield _event(line, stream)

    def _group_dir(self, group: str) -> Path:
        return self.root / quote(group, safe="")


def _event(line: str, stream: str) -> LogEvent:
    record = json.loads(line)
    return LogEvent(int(record["timestamp"]), str(record["message"]), stream)
