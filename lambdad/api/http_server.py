"""The API port's HTTP protocol: uvicorn's httptools protocol, held to limits one client cannot outgrow.

uvicorn serves the port and keeps doing so; what it lacks against a hostile client is added here by
subclassing its protocol (``uvicorn.Config(http=...)`` takes the class), not by replacing it:

- a head (request line and headers) is capped in bytes and header fields, answered 431 and closed.
  httptools has no cap and joins a header's pieces by concatenation, so an endless header costs memory
  and quadratic CPU; the bytes are counted before they are parsed. (uvicorn's h11 protocol has
  ``h11_max_incomplete_event_size``, but answers 400 and parses in pure Python, several times slower.)
- a head must be complete within ``header_timeout`` seconds of the connection opening or the request
  beginning, and a body must not stall (no byte while lambdad is reading) for as long, or the connection
  is closed (slowloris and its slow-body variant; uvicorn's keep-alive timeout stops at the first byte).
- open connections are capped below the file descriptor limit; one more is answered 503 and closed.
  uvicorn's ``limit_concurrency`` answers 503 only once a request's headers arrived, so half-open
  connections that never send one still hold their descriptors until ``accept`` fails with EMFILE.
- refusals are counted and logged as one summary line per interval, never one line per connection, and
  ``RateLimitFilter`` does the same for whatever asyncio and uvicorn log per connection.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger("lambdad.http")

#: Refused connections kept open for a moment so that the client reads its answer (closing a socket with
#: unread input resets it, and the client may lose the answer); past this many, closed at once.
MAX_LINGERING = 256
LINGER_SECONDS = 1.0
SUMMARY_SECONDS = 10.0


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 65536
    max_headers: int = 100
    header_timeout: float = 10.0
    max_connections: int = 4096


class Refusals:
    """Counts of what the protocol refused, logged as one line per ``interval`` while refusals happen."""

    def __init__(self, interval: float = SUMMARY_SECONDS) -> None:
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self.lingering: set[asyncio.BaseTransport] = set()
        self._flush: asyncio.TimerHandle | None = None

    def count(self, what: str) -> None:
        self.counts[what] += 1
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def flush(self) -> None:
        self._flush = None
        if self.counts:
            parts = ", ".join(f"{n:,} {what}" for what, n in sorted(self.counts.items()))
            logger.warning("HTTP refusals in the last %g s: %s", self.interval, parts)
            self.counts.clear()


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop reading a head over the limits."""


def _answer(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, len(body), body)
    )


_HEAD_TOO_LARGE = _answer(b"431 Request Header Fields Too Large", b"Request Header Fields Too Large")
_BAD_REQUEST = _answer(b"400 Bad Request", b"Invalid HTTP request received.")
_TOO_MANY_CONNECTIONS = _answer(b"503 Service Unavailable", b"Too many connections; try again.")


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above; ``protocol_class`` binds them."""

    limits = HttpLimits()
    refusals: Refusals

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True  # not inside a request body
        self._head_begun = False  # a request has begun and its headers are not complete
        self._head = 0  # bytes received while reading the current head
        self._fields = 0
        self._timer: asyncio.TimerHandle | None = None  # the head's deadline, or the body's stall check
        self._last_data = 0.0  # loop.time() of the last read inside a body
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.transport = transport
            self.refusals.count("connections over the cap")
            transport.write(_TOO_MANY_CONNECTIONS)
            if len(self.refusals.lingering) < MAX_LINGERING:
                self.refusals.lingering.add(transport)
                self.loop.call_later(LINGER_SECONDS, transport.close)
            else:
                transport.close()
            return
        super().connection_made(transport)
        self._arm_header_timer()

    def shutdown(self) -> None:
        """At server shutdown, an idle TLS connection is dropped at once: closing it politely waits for the
        client's close_notify, which a keep-alive client that sends nothing never sends (uvicorn would wait
        30 s for each such connection before exiting)."""
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.transport.get_extra_info("sslcontext") is not None:
            self.transport.abort()
        else:
            super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            self.refusals.lingering.discard(self.transport)
            return
        self._disarm_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped while the refusal lingers
        self._unset_keepalive_if_required()
        if self._reading_head:
            self._head += len(data)
        else:
            self._last_data = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, _HeadTooLarge):
                self._refuse(_HEAD_TOO_LARGE, "oversized heads (431)")
            else:
                self._refuse(_BAD_REQUEST, "malformed requests (400)")
            return
        except httptools.HttpParserError:
            self._refuse(_BAD_REQUEST, "malformed requests (400)")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._reading_head and self._head > self.limits.max_header_bytes:
            self._refuse(_HEAD_TOO_LARGE, "oversized heads (431)")
        elif self._timer is None:
            # Timers only for what this read left incomplete (most requests arrive whole in one read).
            if self._head_begun:
                self._arm_header_timer()
            elif not self._reading_head:
                self._last_data = self.loop.time()
                self._timer = self.loop.call_later(self.limits.header_timeout, self._body_stalled)

    def on_message_begin(self) -> None:
        self._head_begun = True
        self._fields = 0
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > self.limits.max_headers:
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = self._head_begun = False
        self._head = 0
        self._disarm_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_head = True
        self._disarm_timer()
        super().on_message_complete()

    def _refuse(self, answer: bytes, what: str) -> None:
        self.refusals.count(what)
        self._disarm_timer()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def _arm_header_timer(self) -> None:
        self._timer = self.loop.call_later(self.limits.header_timeout, self._header_timed_out)

    def _disarm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _body_stalled(self) -> None:
        self._timer = None
        if self._reading_head or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:  # lambdad stopped reading (the app is behind): not the client's stall
            self._last_data = now
        quiet = now - self._last_data
        if quiet >= self.limits.header_timeout:
            self.refusals.count("connections closed for a stalled body")
            self.transport.close()
        else:
            self._timer = self.loop.call_later(self.limits.header_timeout - quiet, self._body_stalled)

    def _header_timed_out(self) -> None:
        self._timer = None
        waiting = self._head_begun or self.cycle is None  # a head under way, or none yet on a new connection
        if self._reading_head and waiting and not self.transport.is_closing():
            self.refusals.count("connections closed for a head not complete in time")
            self.transport.close()


def protocol_class(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to ``limits`` and one refusal counter."""
    return type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {"limits": limits, "refusals": Refusals()},
    )


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard one (what the operator allows); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(wanted: int, fd_limit: int) -> int:
    """The connection cap in force: ``wanted``, but at most half the descriptors, so that environments,
    files and the database keep the other half and ``accept`` never meets EMFILE."""
    return max(1, min(wanted, fd_limit // 2))


class RateLimitFilter(logging.Filter):
    """Lets through ``burst`` records of one kind per ``interval``; the rest are counted and the count is
    added to the next record of that kind that passes ("... (1,234 more like it suppressed)").

    A kind is the logger and the message's first ``KEY_CHARS`` characters: asyncio logs preformatted
    messages whose tail names a socket or peer, and their head says what happened."""

    KEY_CHARS = 80
    MAX_KINDS = 1024

    def __init__(self, interval: float = SUMMARY_SECONDS, burst: int = 5) -> None:
        super().__init__()
        self.interval = interval
        self.burst = burst
        self._windows: dict[tuple[str, str], tuple[float, int, int]] = {}  # start, passed, suppressed

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[: self.KEY_CHARS])
        now = time.monotonic()
        if key not in self._windows and len(self._windows) >= self.MAX_KINDS:
            # Bounded under attack: forget kinds whose window ended, else lump new kinds together.
            for kind, (start, _, dropped) in list(self._windows.items()):
                if now - start >= self.interval and not dropped:  # a count not yet reported stays
                    del self._windows[kind]
            if len(self._windows) >= self.MAX_KINDS:
                key = (record.name, "")
        start, passed, suppressed = self._windows.get(key, (now, 0, 0))
        if now - start >= self.interval:
            start, passed = now, 0
        if passed >= self.burst:
            self._windows[key] = (start, passed, suppressed + 1)
            return False
        if suppressed:
            record.msg = f"{record.msg} ({suppressed:,} more like it suppressed)"
        self._windows[key] = (start, passed + 1, 0)
        return True
