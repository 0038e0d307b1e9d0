"""One client against lambdad's API port, over raw sockets: oversized heads and too many header fields
are answered 431 and the server keeps serving; a connection trickling an endless header is closed after
the header timeout while a victim's p99 stays within 2x of idle; half-open connections past the
connection cap are refused at once, new requests succeed as soon as they go, and the server log grows by
a bounded number of lines."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.attack_support import Victim, assert_unaffected
from tests.e2e.invoke_support import start_server
from tests.support import Server, answer, status_of

MB = 1 << 20
CAP = 200
HEADER_TIMEOUT = 3.0
TRICKLERS = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("lambdad"),
        env={"LAMBDAD_HTTP_MAX_CONNECTIONS": str(CAP), "LAMBDAD_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT)},
    )
    yield running
    running.stop(timeout=60)


def connect(server: Server, timeout: float = 30) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def serves(server: Server) -> bool:
    """A fresh connection gets a real answer from the Lambda API."""
    with connect(server, timeout=10) as sock:
        sock.sendall(server.raw_head("GET", "/2015-03-31/functions", Connection="close"))
        return status_of(answer(sock)) == 200


def log_lines(server: Server) -> int:
    return len(server.log_path.read_bytes().splitlines())


@pytest.mark.parametrize("size", [1 * MB, 10 * MB, 100 * MB], ids=["1MB", "10MB", "100MB"])
def test_an_oversized_header_is_answered_431_and_the_server_keeps_serving(server: Server, size: int) -> None:
    sock = connect(server)
    sent = 0
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nX-Big: ")
        while sent < size:
            sock.sendall(b"b" * 65536)
            sent += 65536
    assert status_of(answer(sock)) == 431
    assert sent < 16 * MB, f"the server read {sent} bytes of one head"
    assert serves(server)


@pytest.mark.parametrize("count", [101, 100_000])
def test_too_many_header_fields_are_answered_431(server: Server, count: int) -> None:
    sock = connect(server)
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(count))
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert status_of(answer(sock)) == 431
    assert serves(server)


def test_a_trickled_header_is_closed_after_the_timeout_and_others_are_unaffected(
    server: Server, record_property: Any
) -> None:
    victim = Victim(server)
    victim.baseline()
    closed: list[tuple[float, bytes]] = []  # each trickling connection: how long it lived, its answer
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            sock = connect(server)
            opened = time.monotonic()
            try:
                sock.sendall(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                while not stop.is_set():
                    sock.sendall(b"s" * 16)
                    # A trickle (800 bytes a second, far under the size cap): the point is to be slow.
                    stop.wait(0.02)
            except OSError:
                sock.settimeout(1)
                with contextlib.suppress(OSError):
                    closed.append((time.monotonic() - opened, answer(sock)))
            finally:
                sock.close()

    threads = [threading.Thread(target=trickle, daemon=True) for _ in range(TRICKLERS)]
    with victim.measuring() as samples:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while len(closed) < TRICKLERS and time.monotonic() < deadline:
            time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert_unaffected(victim, samples, record_property)
    assert len(closed) >= TRICKLERS, "the server did not close the trickling connections"
    lived = sorted(round(seconds, 1) for seconds, _ in closed)
    record_property("summary_trickle", f"{len(closed)} trickling connections closed after {lived} s")
    assert all(response == b"" for _, response in closed), "closed for the timeout, not answered"
    assert min(lived) >= HEADER_TIMEOUT * 0.9


def test_a_stalled_body_is_closed_after_the_timeout(server: Server) -> None:
    sock = connect(server)
    # Signed by a known key, so the server reads the body (an unsigned one is refused before any body).
    sock.sendall(server.raw_head("POST", "/2015-03-31/functions/f/invocations", b"{" + b" " * 999) + b"{")
    opened = time.monotonic()
    assert answer(sock) == b"", "closed without an answer"
    assert time.monotonic() - opened >= HEADER_TIMEOUT * 0.9
    assert serves(server)


def test_half_open_connections_past_the_cap_are_refused_and_new_requests_succeed_once_they_go(
    server: Server,
) -> None:
    lines_before = log_lines(server)
    held = [connect(server) for _ in range(CAP * 3)]  # never send a byte
    refused = 0
    for sock in held:
        sock.settimeout(0.5)
        with contextlib.suppress(TimeoutError):
            if sock.recv(12).startswith(b"HTTP/1.1 503"):
                refused += 1
    assert refused >= CAP * 2 - 10, f"only {refused} of {CAP * 2} connections past the cap were refused"
    for sock in held:
        sock.close()
    # As soon as they go, a fresh connection is served (the closes reach the server's loop first).
    deadline = time.monotonic() + 30
    while True:
        try:
            if serves(server):
                break
        except (OSError, AssertionError):
            pass
        assert time.monotonic() < deadline, "the server did not serve again after the connections went"
        time.sleep(0.05)
    assert log_lines(server) - lines_before < 20, Path(server.log_path).read_text()[-2000:]


def test_a_flood_of_half_open_connections_leaves_open_connections_unaffected(
    server: Server, record_property: Any
) -> None:
    """The cap is shared (on loopback every client has the same address): while a flood fills it, new
    connections are refused, but connections already open (a victim's keep-alive one) keep their speed."""
    victim = Victim(server)
    victim.baseline()
    with victim.measuring() as samples:
        held = [connect(server) for _ in range(CAP * 3)]
        for sock in held:  # each is refused (503) at once or closed at the header timeout
            response = answer(sock)
            assert response == b"" or status_of(response) == 503
        for sock in held:
            sock.close()
    assert_unaffected(victim, samples, record_property)
