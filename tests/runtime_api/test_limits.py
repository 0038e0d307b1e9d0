"""The Runtime API's limits over real sockets: what a function's own code can make lambdad hold through
its 127.0.0.1:9001 is bounded per request and per environment, and refused the way Go's net/http (AWS's
Runtime Interface Emulator) refuses it."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from lambdad.runtime_api import MAX_PAYLOAD_SIZE, Invocation, Limits
from lambdad.runtime_api.limits import ConnectionBudget
from tests.support import answer, status_of

from .conftest import BASE, Api, request

MB = 1 << 20


@contextlib.contextmanager
def api_with(limits: Limits, budget: ConnectionBudget | None = None) -> Iterator[Api]:
    server = Api(limits, budget or ConnectionBudget())
    try:
        yield server
    finally:
        server.close()


def raw(api: Api, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", api.port), timeout=timeout)


def send_until_refused(sock: socket.socket, head: bytes, filler: bytes, most: int) -> int:
    """Send ``head`` then ``filler`` repeatedly (up to ``most`` bytes) until the server stops reading;
    returns how much was sent."""
    sent = 0
    try:
        sock.sendall(head)
        while sent < most:
            sock.sendall(filler)
            sent += len(filler)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


@pytest.mark.parametrize(
    "head, filler",
    [
        (b"GET /2018-06-01/runtime/", b"a" * 65536),  # an endless request line
        (b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nX-Big: ", b"b" * 65536),  # one header
    ],
    ids=["request-line", "header"],
)
def test_a_head_over_1_mb_is_answered_431_and_closed_after_reading_about_1_mb(
    api: Api, head: bytes, filler: bytes
) -> None:
    sock = raw(api)
    started = time.perf_counter()
    sent = send_until_refused(sock, head, filler, most=200 * MB)
    response = answer(sock)
    assert status_of(response) == 431
    assert response.endswith(b"431 Request Header Fields Too Large")
    assert b"Connection: close" in response
    assert sent < 16 * MB, f"the server read {sent} bytes of one head before refusing it"
    assert time.perf_counter() - started < 10
    assert api.server._connections == set()


def test_a_head_under_1_mb_is_served(api: Api) -> None:
    conn = api.connect()
    status, _, _ = request(conn, "GET", "/nowhere", headers={"X-Big": "c" * (MB - 4096)})
    assert status == 404


def test_more_than_100_header_fields_are_answered_431(api: Api) -> None:
    conn = api.connect()
    status, _, _ = request(conn, "GET", "/nowhere", headers={f"X-{i}": "v" for i in range(95)})
    assert status == 404  # http.client adds Host and Accept-Encoding: 97 fields
    sock = raw(api)
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    sock.sendall(b"GET " + BASE.encode() + b"/nowhere HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert status_of(answer(sock)) == 431


def test_connections_over_the_cap_are_answered_503_and_a_freed_slot_serves_again() -> None:
    with api_with(Limits(max_connections=4)) as api:
        held = [api.connect() for _ in range(4)]
        for conn in held:
            assert request(conn, "GET", "/nowhere")[0] == 404
        extra = raw(api)
        extra.sendall(b"GET " + BASE.encode() + b"/nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        response = answer(extra)
        assert status_of(response) == 503
        assert b"too many connections" in response
        held.pop().close()
        deadline = time.monotonic() + 10
        while len(api.server._connections) >= 4:  # the close reaches the server's loop
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert request(api.connect(), "GET", "/nowhere")[0] == 404
        for conn in held:  # the held ones were never disturbed
            assert request(conn, "GET", "/nowhere")[0] == 404


def test_refusals_past_the_lingering_bound_are_closed_at_once() -> None:
    with api_with(Limits(max_connections=1, max_lingering=2, linger=30)) as api:
        kept = raw(api)
        refused = [raw(api) for _ in range(5)]
        for sock in refused:
            assert status_of(sock.recv(65536)) == 503
        for sock in refused[2:]:  # the first two linger 30 s; the others are closed at once
            assert answer(sock) == b""
        assert len(api.server._lingering) == 2
        kept.close()


def test_past_the_process_wide_budget_an_environment_still_gets_its_floor() -> None:
    budget = ConnectionBudget(total=3)
    with api_with(Limits(), budget) as flooded, api_with(Limits(), budget) as other:
        held = [raw(flooded) for _ in range(3)]
        assert status_of(answer(raw(flooded))) == 503  # the budget is spent
        floor = [other.connect(), other.connect()]
        for conn in floor:  # yet another environment gets its runtime's connection and one more
            assert request(conn, "GET", "/nowhere")[0] == 404
        assert status_of(answer(raw(other))) == 503
        for sock in held:
            sock.close()


def test_an_idle_connection_is_closed_but_a_pending_next_is_not() -> None:
    with api_with(Limits(idle_timeout=0.3)) as api:
        polling = api.connect()
        polling.request("GET", BASE + "/invocation/next")
        idle = raw(api)
        assert idle.recv(1) == b"", "the idle connection is closed by the server"
        # The long-poll was exactly as old when the same sweep closed the idle connection.
        assert len(api.server._connections) == 1
        api.submit(api.channel.invoke(Invocation("req-1", b"{}", 1_900_000_000_000, "arn")))
        response = polling.getresponse()
        assert response.status == 200
        response.read()
        # The connection that got an invocation is owed its result: never idle while the handler runs.
        owed = polling.sock
        assert owed is not None
        again = raw(api)
        assert again.recv(1) == b""
        status, _, _ = request(polling, "POST", "/invocation/req-1/response", b"{}")
        assert status == 202 and polling.sock is owed


def test_the_body_of_a_request_that_is_not_a_result_is_refused_past_6_mb(api: Api) -> None:
    sock = raw(api)
    size = 64 * MB
    head = b"POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % size
    sent = send_until_refused(sock, head, b"x" * 65536, most=size)
    response = answer(sock)
    assert status_of(response) == 413
    assert sent < MAX_PAYLOAD_SIZE + 8 * MB


def test_a_response_over_6_mb_is_still_read_and_answered_413(api: Api) -> None:
    pending = api.submit(api.channel.invoke(Invocation("req-1", b"{}", 1_900_000_000_000, "arn")))
    conn = api.connect()
    assert request(conn, "GET", "/invocation/next")[0] == 200
    status, _, _ = request(conn, "POST", "/invocation/req-1/response", b"x" * (MAX_PAYLOAD_SIZE + 1))
    assert status == 413
    assert pending.result(5).error_type == "Function.ResponseSizeTooLarge"
