"""A function's output as log events, and what lambdad keeps of it in memory.

Output is bytes from the sandbox's pipe; a log event is a line of it. A line longer than AWS's event
limit (256 KB, less CloudWatch's 26 bytes of overhead) becomes several events, as AWS splits it, so a
line with no newline never grows without bound. Of an invocation's log lambdad keeps only the end
(``Tail``): the Invoke API's ``LogResult`` is its last 4 KB, the rest is in the log stream.
"""

from __future__ import annotations

from collections import deque

MAX_EVENT_BYTES = 256 * 1024 - 26  # CloudWatch's event limit, less its per-event overhead
TAIL_BYTES = 4096


class LineSplitter:
    """Bytes in, log events out: one per line, lines past ``limit`` bytes cut into several events."""

    def __init__(self, limit: int = MAX_EVENT_BYTES) -> None:
        self._limit = limit
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        """The events ``data`` completes; a line without its newline yet waits (up to ``limit``)."""
        *lines, rest = (self._partial + data).split(b"\n")
        events: list[str] = []
        for line in lines:
            rest_of_line = self._cut(line, events)
            events.append(_decode(rest_of_line))
        self._partial = self._cut(rest, events)
        return events

    def break_line(self) -> list[str]:
        """Output was dropped: the line in progress ends here (as an event of its own) rather than run on
        into whatever comes after the gap."""
        partial, self._partial = self._partial, b""
        return [_decode(partial)] if partial else []

    def _cut(self, data: bytes, events: list[str]) -> bytes:
        """Append the full-size events at the start of ``data``; what is left (at most ``limit``)."""
        while len(data) > self._limit:
            cut = self._limit
            while cut > self._limit - 3 and data[cut] & 0xC0 == 0x80:  # not inside a UTF-8 character
                cut -= 1
            events.append(_decode(data[:cut]))
            data = data[cut:]
        return data


def _decode(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    if "\ufffd" in text and len(text.encode()) > MAX_EVENT_BYTES:
        # Bytes that are not UTF-8 become U+FFFD, three bytes each: keep the event under the limit.
        text = text[: MAX_EVENT_BYTES // 3]
    return text


class Tail:
    """The last ``limit`` bytes (at least) of a log, as whole lines where they fit."""

    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self._limit = limit
        self._lines: deque[tuple[str, int]] = deque()
        self._size = 0

    def add(self, line: str) -> None:
        if len(line) > self._limit:
            line = line[-self._limit :]  # as many characters are at least as many bytes
        size = len(line.encode()) + 1
        self._lines.append((line, size))
        self._size += size
        while self._size - self._lines[0][1] >= self._limit:
            self._size -= self._lines.popleft()[1]

    def text(self) -> str:
        """The lines kept, each ending in a newline."""
        return "".join(line + "\n" for line, _ in self._lines)
