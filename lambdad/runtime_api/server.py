"""A lean HTTP/1.1 server for one execution environment's Runtime API 2018-06-01 (asyncio + httptools).

The route table mirrors the Runtime Interface Emulator's ``rapi/router.go``; one handler per endpoint asks
the channel (and so the state table) before acting and answers AWS's error document when refused. It is
callback driven: a request is answered from the parser's callbacks, and a ``next`` long-poll is answered
from inside ``RuntimeChannel.invoke``, so a round trip costs no task switches beyond the owner's await.
Connections are kept alive (awslambdaric reuses one for every call); clients must not pipeline.
The function's code can reach the server too, so every connection is held to ``Limits`` (limits.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import socket
import sys
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, cast

import httptools

from lambdad.runtime_api.channel import RuntimeChannel, init_error_result
from lambdad.runtime_api.limits import SHARED_BUDGET, ConnectionBudget, Limits
from lambdad.runtime_api.model import (
    MAX_PAYLOAD_SIZE,
    ApiError,
    ChannelClosed,
    Invocation,
    InvocationResult,
    ResponseStream,
    ResultKind,
    oversized_response_result,
    payload_too_large,
)
from lambdad.runtime_api.states import Move

PREFIX = b"/2018-06-01/runtime/"
#: lambdad's own endpoint, outside AWS's API: a pre-initialised runtime (a spare) long-polls it for the
#: function it becomes. Answered once, with JSON ``{"env": {...}, "handler": "..."}``.
SPECIALIZE_ROUTE = b"lambdad/specialize"
ERROR_TYPE_HEADER = b"lambda-runtime-function-error-type"
ERROR_BODY_TRAILER = b"lambda-runtime-function-error-body"
RESPONSE_MODE_HEADER = b"lambda-runtime-function-response-mode"
_ACCEPTED = b'{"status":"OK"}\n'
_JSON = b"Content-Type: application/json\r\n"
_TEXT = b"Content-Type: text/plain; charset=utf-8\r\n"
_NOT_FOUND = b"404 page not found\n"
# Go's net/http answers for a head too large, and a connection over the cap (net/http has no cap).
_HEAD_TOO_LARGE = b"431 Request Header Fields Too Large"
_TOO_MANY_CONNECTIONS = b"503 Service Unavailable: too many connections to the Runtime API\n"
_BODY_TOO_LARGE = b'{"message":"Request too large for the in-sandbox Lambda endpoint"}'
_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_UNSAFE = bytes.maketrans(b"\r\n", b"  ")

# Requests outside the Runtime API (the Lambda API a function calls through AWS_ENDPOINT_URL_LAMBDA) are
# handed to the forwarder: (method, path with query, lower-cased headers, body) -> (status, headers, body).
Forwarder = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, list[tuple[str, str]], bytes]]]


SpecializeWaiter = Callable[[bytes | None], None]


class Specialization:
    """The hand-over of a spare runtime to a function: its waiter, and the answer once there is one."""

    def __init__(self) -> None:
        self._answer: bytes | None = None
        self._closed = False
        self._waiters: list[SpecializeWaiter] = []
        #: Done once the runtime is waiting for its answer (its pre-initialisation is complete).
        self.polled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def answered(self) -> bool:
        return self._answer is not None

    def request(self, waiter: SpecializeWaiter) -> None:
        """The runtime's long-poll; refused (403) once an answer was given."""
        if self._closed:
            raise ChannelClosed("the spare was discarded")
        if self._answer is not None:
            raise ApiError(403, "InvalidStateTransition", "The runtime has already been specialized")
        self._waiters.append(waiter)
        if not self.polled.done():
            self.polled.set_result(None)

    def cancel(self, waiter: SpecializeWaiter) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def answer(self, payload: bytes) -> bool:
        """Give the waiting runtime its function; False if no runtime is waiting (nothing is sent)."""
        if self._answer is not None or self._closed or not self._waiters:
            return False
        self._answer = payload
        waiter = self._waiters.pop(0)
        waiter(payload)
        return True

    def close(self) -> None:
        self._closed = True
        if not self.polled.done():
            self.polled.cancel()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter(None)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop reading a head over ``Limits``."""


class _Request:
    """What the parser has told about the request being received; ``finish`` answers it."""

    __slots__ = (
        "body",
        "fields",
        "finish",
        "headers",
        "kept",
        "limit",
        "method",
        "size",
        "stream",
        "trailers",
        "url",
    )

    def __init__(self, limit: int) -> None:
        self.url = b""
        self.method = b""
        self.headers: dict[bytes, bytes] = {}
        self.trailers: dict[bytes, bytes] = {}
        self.fields = 0  # header and trailer fields seen
        self.body = bytearray()
        self.kept = MAX_PAYLOAD_SIZE  # how much of the body to keep in ``body``
        self.limit = limit  # how much body is read before the request is refused (413)
        self.size = 0
        self.stream: ResponseStream | None = None  # set for a streamed response
        self.finish: Callable[[_Request], None] | None = None  # set once the headers are complete

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")


class _Connection(asyncio.Protocol):
    """One keep-alive connection from the runtime (or a test client)."""

    def __init__(self, server: RuntimeApiServer) -> None:
        self._server = server
        self._channel = server.channel
        self._limits = server.limits
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._request: _Request | None = None
        self._polling: Callable[[Invocation | None], None] | None = None  # our pending ``next``, if any
        self._specializing: SpecializeWaiter | None = None  # our pending ``lambdad/specialize``, if any
        self._keep_alive = True
        self._head = 0  # bytes received since the current request head began, while it is incomplete
        self._in_head = True
        #: loop.time() of the last byte received or answer sent, for the idle sweep (RuntimeApiServer).
        self.active = server.now()
        self.owed = False  # an invocation was handed out on this connection and its result is due
        #: The request id handed out on this connection, until its response or error is complete.
        self._open_id: str | None = None
        #: The request id last handed out on this connection: the invocation its worker runs (or ran last).
        self.last_id: str | None = None
        self.forwarding = 0  # forwarded calls in flight
        self.refused = False

    # -- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports implement the interface without
        # subclassing asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if not self._server.admit(self):
            self.refused = True
            self._keep_alive = False
            self._write(503, _TOO_MANY_CONNECTIONS, _TEXT)
            return
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # read and dropped while the refusal lingers
        self.active = self._server.now()
        if self._in_head:
            self._head += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, _HeadTooLarge):
                self._head_too_large()
            else:
                self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            self.close()
            return
        # Counted before parsing, checked after: httptools joins the pieces of a URL or header value by
        # concatenation, so what one head costs is bounded by the cap plus one read.
        if self._in_head and self._head > self._limits.max_head_bytes:
            self._head_too_large()

    def _bad_request(self) -> None:
        self._keep_alive = False
        self._write(400, b"400 Bad Request\n", _TEXT)

    def _head_too_large(self) -> None:
        # The request stays: closing the connection ends a streamed response it carried as truncated.
        self._keep_alive = False
        self._write(431, _HEAD_TOO_LARGE, _TEXT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.discard(self)
        if self._polling is not None:
            self._channel.cancel_next(self._polling)
            self._polling = None
        if self._specializing is not None and self._server.specialization is not None:
            self._server.specialization.cancel(self._specializing)
            self._specializing = None
        request, self._request = self._request, None
        if request is not None and request.stream is not None:
            request.stream.finish(truncated=True)
        if self._open_id is not None:  # a worker of a multi-concurrency runtime went away mid-invocation
            self._channel.connection_lost(self._open_id)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def peer_port(self) -> int | None:
        peer = self._transport.get_extra_info("peername") if self._transport is not None else None
        return peer[1] if isinstance(peer, tuple) and len(peer) >= 2 else None

    # -- httptools callbacks -----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._polling is not None or self._specializing is not None:  # pipelined behind a long-poll
            self.close()
        self._request = _Request(self._limits.max_body)

    def on_url(self, url: bytes) -> None:
        if self._request is not None:
            self._request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self._request
        if request is None:
            return
        request.fields += 1
        if request.fields > self._limits.max_headers:
            raise _HeadTooLarge
        target = request.headers if request.finish is None else request.trailers
        target[name.lower()] = value

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head = 0
        request = self._request
        if request is None:
            return
        request.method = self._parser.get_method()
        if request.headers.get(b"expect", b"").lower() == b"100-continue":
            self._raw(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            request.finish = self._route(request)
        except ApiError as error:
            request.kept = 0
            request.finish = functools.partial(self._refuse_after_body, error)
        except ChannelClosed:
            request.kept = 0
            request.finish = lambda _: self.close()

    def on_body(self, body: bytes) -> None:
        request = self._request
        if request is None:
            return
        request.size += len(body)
        if request.size > request.limit:
            self._request = None
            self._keep_alive = False
            self._write(413, _BODY_TOO_LARGE, _JSON)
            return
        if request.stream is not None:
            request.stream.feed(bytes(body))
        elif len(request.body) < request.kept:
            request.body += body[: request.kept - len(request.body)]

    def on_message_complete(self) -> None:
        self._in_head = True
        request, self._request = self._request, None
        if request is None or request.finish is None:
            return
        self._keep_alive = self._parser.should_keep_alive()
        try:
            request.finish(request)
        except ApiError as error:
            self._refuse(error)
        except ChannelClosed:
            self.close()

    # -- routing: one handler per endpoint, as in the RIE's router ---------------------------------------

    def _route(self, request: _Request) -> Callable[[_Request], None]:
        """Pick the handler; checks that must precede the body (request id, state) happen here."""
        path = request.url.split(b"?", 1)[0]
        if not path.startswith(PREFIX):
            return self._forward if self._server.forward is not None else self._not_found
        route = path[len(PREFIX) :]
        if route == b"invocation/next":
            return self._next if request.method == b"GET" else self._not_allowed
        if route == SPECIALIZE_ROUTE and self._server.specialization is not None:
            return self._specialize if request.method == b"GET" else self._not_allowed
        if route == b"init/error":
            request.limit = sys.maxsize  # a result: bounded by the init timeout, kept up to 6 MB
            return self._init_error if request.method == b"POST" else self._not_allowed
        parts = route.split(b"/")
        if len(parts) == 3 and parts[0] == b"invocation" and parts[1] and parts[2] in (b"response", b"error"):
            if request.method != b"POST":
                return self._not_allowed
            request.limit = sys.maxsize  # a result: bounded by the function's timeout, kept up to 6 MB
            self.owed = False
            request_id = parts[1].decode("latin-1")
            if parts[2] == b"error":
                self._channel.start_response(request_id, Move.ERROR)
                self._open_id = request_id
                return self._error
            return self._start_response(request, request_id)
        return self._not_found

    def _forward(self, request: _Request) -> None:
        forward = self._server.forward
        assert forward is not None
        if request.size > len(request.body):
            self._write(413, _BODY_TOO_LARGE, _JSON)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.items()}
        call = forward(request.method.decode(), request.url.decode("latin-1"), headers, bytes(request.body))
        task = asyncio.ensure_future(call)
        self._server.track(task)
        self.forwarding += 1

        def answer(done: asyncio.Future[tuple[int, list[tuple[str, str]], bytes]]) -> None:
            self.forwarding -= 1
            if done.cancelled() or done.exception() is not None:
                self._write(500, b'{"message":"lambdad failed to forward the request"}', _JSON)
                return
            status, response_headers, body = done.result()
            raw = b"".join(
                b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1").translate(_UNSAFE))
                for k, v in response_headers
                if k.lower() not in ("content-length", "connection", "transfer-encoding")
            )
            self._write(status, body, raw)

        task.add_done_callback(answer)

    def _not_found(self, request: _Request) -> None:
        self._write(404, _NOT_FOUND, _TEXT)

    def _not_allowed(self, request: _Request) -> None:
        self._write(405, b"", b"")

    def _next(self, request: _Request) -> None:
        def render(invocation: Invocation | None) -> None:
            self._polling = None
            if invocation is None:  # the channel closed under the long-poll
                self.close()
            else:
                self.owed = True
                self._open_id = self.last_id = invocation.request_id
                self._write(200, invocation.payload, _event_headers(invocation))

        self._polling = render
        try:
            self._channel.request_next(render)
        except BaseException:
            self._polling = None
            raise

    def _specialize(self, request: _Request) -> None:
        specialization = self._server.specialization
        assert specialization is not None

        def render(payload: bytes | None) -> None:
            self._specializing = None
            if payload is None:  # the spare is being discarded
                self.close()
            else:
                self._write(200, payload, _JSON)

        self._specializing = render
        try:
            specialization.request(render)
        except BaseException:
            self._specializing = None
            raise

    def _start_response(self, request: _Request, request_id: str) -> Callable[[_Request], None]:
        mode = (request.header(RESPONSE_MODE_HEADER) or "buffered").lower()
        if mode not in ("buffered", "streaming"):
            raise ApiError(400, "InvalidFunctionResponseMode", "Invalid function response mode")
        self._channel.start_response(request_id, Move.RESPONSE)
        self._open_id = request_id
        if mode == "streaming":
            request.stream = ResponseStream()
            result = InvocationResult(
                ResultKind.SUCCESS, content_type=request.header(b"content-type"), stream=request.stream
            )
            self._channel.deliver(result, self._open_id)
            return self._end_stream
        return self._response

    def _response(self, request: _Request) -> None:
        if request.size > MAX_PAYLOAD_SIZE:
            self._channel.deliver(oversized_response_result(request.size), self._open_id)
            self._sent()
            self._refuse(payload_too_large())
            return
        self._channel.deliver(
            InvocationResult(
                ResultKind.SUCCESS, bytes(request.body), content_type=request.header(b"content-type")
            ),
            self._open_id,
        )
        self._sent()
        self._write(202, _ACCEPTED, _JSON)

    def _end_stream(self, request: _Request) -> None:
        assert request.stream is not None
        error_type = request.trailers.get(ERROR_TYPE_HEADER)
        error_body = request.trailers.get(ERROR_BODY_TRAILER)
        request.stream.finish(
            error_type.decode("latin-1") if error_type else None, _b64(error_body) if error_body else None
        )
        self._sent()
        self._write(202, _ACCEPTED, _JSON)

    def _error(self, request: _Request) -> None:
        result = InvocationResult(
            ResultKind.FUNCTION_ERROR,
            bytes(request.body),
            request.header(ERROR_TYPE_HEADER),
            request.header(b"content-type"),
        )
        self._channel.deliver(result, self._open_id)
        self._sent()
        self._write(202, _ACCEPTED, _JSON)

    def _sent(self) -> None:
        request_id, self._open_id = self._open_id, None
        self._channel.response_sent(request_id)

    def _init_error(self, request: _Request) -> None:
        result = init_error_result(
            bytes(request.body), request.header(ERROR_TYPE_HEADER), request.header(b"content-type")
        )
        self._channel.init_error(result)
        self._write(202, _ACCEPTED, _JSON)

    # -- writing -----------------------------------------------------------------------------------------

    def _refuse_after_body(self, error: ApiError, request: _Request) -> None:
        self._refuse(error)

    def _refuse(self, error: ApiError) -> None:
        self._write(error.status, error.body() + b"\n", _JSON)

    @property
    def waiting_on_lambdad(self) -> bool:
        """Whether the connection is quiet because lambdad owes it something (never idle, then)."""
        request = self._request
        return (
            self._polling is not None
            or self._specializing is not None
            or self.owed
            or self.forwarding > 0
            or (request is not None and request.stream is not None)
        )

    def _write(self, status: int, body: bytes, headers: bytes) -> None:
        head = b"%s%sContent-Length: %d\r\n" % (_STATUS_LINES[status], headers, len(body))
        if not self._keep_alive:
            head += b"Connection: close\r\n"
        self._raw(head + b"\r\n" + body)
        if self.refused:
            return  # closed by the server once the refusal has lingered
        self.active = self._server.now()
        if not self._keep_alive:
            self.close()

    def _raw(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)


class RuntimeApiServer:
    """Serves one environment's Runtime API; every call goes through ``channel``."""

    def __init__(
        self,
        channel: RuntimeChannel,
        forward: Forwarder | None = None,
        specialization: Specialization | None = None,
        limits: Limits | None = None,
        budget: ConnectionBudget = SHARED_BUDGET,
    ) -> None:
        self.channel = channel
        self.forward = forward
        #: Set for a spare runtime: serves ``lambdad/specialize``.
        self.specialization = specialization
        self.limits = limits or Limits()
        self._budget = budget
        self._loop = asyncio.get_running_loop()
        self.now = self._loop.time
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._lingering: set[_Connection] = set()
        self._forwarding: set[asyncio.Future[Any]] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def admit(self, connection: _Connection) -> bool:
        """Count a new connection in, or say it is one too many (it is then answered 503 and lingers)."""
        held, limits, budget = len(self._connections), self.limits, self._budget
        if held < limits.max_connections and (held < limits.floor or not budget.spent):
            self._connections.add(connection)
            budget.open += 1
            if self._sweeper is None:
                self._sweeper = self._loop.call_later(limits.idle_timeout / 2, self._sweep)
            return True
        if len(self._lingering) < limits.max_lingering and not budget.spent:
            self._lingering.add(connection)
            budget.open += 1
            self._loop.call_later(limits.linger, connection.close)
        else:
            self._loop.call_soon(connection.close)
        return False

    def discard(self, connection: _Connection) -> None:
        if connection in self._connections or connection in self._lingering:
            self._budget.open -= 1
            self._connections.discard(connection)
            self._lingering.discard(connection)

    def _sweep(self) -> None:
        """Close connections idle for longer than the limit; runs while there are connections."""
        self._sweeper = None
        deadline = self.now() - self.limits.idle_timeout
        for connection in list(self._connections):
            if connection.active < deadline and not connection.waiting_on_lambdad:
                connection.close()
        if self._connections:
            self._sweeper = self._loop.call_later(self.limits.idle_timeout / 2, self._sweep)

    def last_request_of(self, port: int) -> str | None:
        """The request id last handed to the runtime connected from TCP ``port`` (which worker of a
        multi-concurrency runtime runs which invocation: its output is attributed by this)."""
        for connection in self._connections:
            if connection.peer_port == port:
                return connection.last_id
        return None

    def track(self, task: asyncio.Future[Any]) -> None:
        """Keep a forwarded request's task alive until it ends (and cancel it at close)."""
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)

    async def serve(self, sock: socket.socket) -> None:
        """Serve HTTP on ``sock`` (a listening TCP or Unix socket) until ``close()`` or cancellation."""
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        if sock.family == socket.AF_UNIX:
            server = await loop.create_unix_server(lambda: _Connection(self), sock=sock)
        else:
            server = await loop.create_server(lambda: _Connection(self), sock=sock)
        self._server = server
        try:
            await server.serve_forever()
        except asyncio.CancelledError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Stop accepting and drop every open connection (long-polls included)."""
        if self.specialization is not None:
            self.specialization.close()
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in [*self._connections, *self._lingering]:
            connection.close()
        for task in list(self._forwarding):
            task.cancel()


def _event_headers(invocation: Invocation) -> bytes:
    """The ``next`` response headers, as the RIE renders them (optional ones only when set)."""
    fields = [
        (b"Lambda-Runtime-Aws-Request-Id", invocation.request_id),
        (b"Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms)),
        (b"Lambda-Runtime-Invoked-Function-Arn", invocation.invoked_function_arn),
        (b"Lambda-Runtime-Trace-Id", invocation.trace_id),
        (b"Lambda-Runtime-Client-Context", invocation.client_context),
        (b"Lambda-Runtime-Cognito-Identity", invocation.cognito_identity),
        (b"Content-Type", invocation.content_type),
    ]
    return b"".join(
        b"%s: %s\r\n" % (name, value.encode().translate(_UNSAFE)) for name, value in fields if value
    )


def _b64(value: bytes) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value
