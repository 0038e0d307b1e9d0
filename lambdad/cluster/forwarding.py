"""Forwarding invocations between nodes: an invoke arriving at any node runs where ``placement`` says,
passed on as the HTTP request it arrived as.

The invoke router is a port with two implementations, chosen once by the composition root: on a single
server it is nothing at all (the request goes straight to the app: no cost), in a cluster it is this ASGI
middleware, outermost, in front of the function URLs and the Lambda API. It recognises

- Invoke (``POST /2015-03-31/functions/{name}/invocations``),
- InvokeWithResponseStream (``POST /2021-11-15/functions/{name}/response-streaming-invocations``),
- function URL requests, by host and by path (``api/url_serving.url_target``),

resolves the function from the in-memory caches (``Invoker.find``, ``UrlService.cached``: no PostgreSQL
once warm), chooses a node, and either passes the request to the local app or sends the raw request to
the chosen node's advertise URL. Forwarding whole HTTP requests rather than invocations means the target
answers exactly what it would answer the client: payload limits, ``LogType: Tail``,
``X-Amz-Executed-Version``, function errors, AWS's error shapes, status codes, URL response headers and
streamed bodies (relayed chunk by chunk as they arrive) pass through unchanged, and no invoke feature
needs a second implementation. What stays where it arrives: Event invocations (the queue is PostgreSQL,
shared, and any node's dispatcher runs them), DryRun, requests no function could be resolved for (the local
app gives the error) and CORS preflights (answered without running anything). An AWS_IAM URL's request
and a signed Invoke are forwarded as they are, signature and all: the target verifies the signature and
decides the request (once, where it runs; this node neither authenticates nor authorises what it
forwards), against the identity store every node shares.

A forwarded request carries ``x-lambdad-forwarded``: the client's address, the port and scheme it came in
on, and an HMAC of those and the request line under a key every node derives from the key ring they all
read (``KeyRing.derive``). The target runs such a request itself (never forwards it again) and restores
the client's address, so a URL event's ``sourceIp`` and ``X-Forwarded-*`` are the client's. A client
cannot forge the header; a wrong one is removed and the request placed as any other. (It covers the
request line and the origin, not the body: a header replayed by someone who saw it between nodes only
skips placement, which grants nothing.)

The request body is read before choosing (AWS caps it at 6 MB; a larger one runs here, whose answer is the
413): a target that cannot be connected to is then simply the next candidate, and the last resort is
this node. A target that fails after the request was sent is answered as AWS answers a service fault
(Lambda's ServiceException 500; a URL's 502), never retried (the function may have run). Connections are
kept alive per node (``node_http.py``: a lean client, as httpx cost more CPU than the invoke itself);
connecting is bounded by CONNECT_TIMEOUT, reading by the function's own timeout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import parse_qs, unquote

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lambdad.api.dispatch import error_response
from lambdad.api.url_serving import REQUEST_MAX, url_target
from lambdad.cluster.membership import Membership, NodeLoad, NodeState
from lambdad.cluster.node_http import Broken, NodeClient, Response, Unreachable, close_all
from lambdad.cluster.placement import Candidate, Eligibility, Forwarded, choose, every_node
from lambdad.errors import ServiceException
from lambdad.invocation import Invoker
from lambdad.models import LATEST, parse_function_ref
from lambdad.models import Scope as LambdaScope
from lambdad.services.lookup import RunnableFunction
from lambdad.services.urls import UrlService

log = logging.getLogger(__name__)

HEADER = b"x-lambdad-forwarded"
CONNECT_TIMEOUT = 1.0
# Beyond the function's timeout: the target's own answer to a timed-out function is still relayed.
READ_GRACE = 15.0
_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
_STREAM = re.compile(r"^/2021-11-15/functions/([^/]+)/response-streaming-invocations$")
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
# Not passed on: hop-by-hop headers, and what the sending side sets itself (the length; uvicorn's date and
# server headers, which the first node adds again).
_REQUEST_DROPPED = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"expect", b"content-length"}
)
_RESPONSE_DROPPED = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"date", b"server"})


class Kind(Enum):
    """What a request asks for, as far as forwarding cares."""

    INVOKE = "invoke"  # Invoke and InvokeWithResponseStream: faults are AWS-shaped JSON errors
    URL = "url"  # a function URL: faults are the URL front end's 502


@dataclass(frozen=True)
class Placed:
    """A request to place: what it is, the function it runs and the ARN its environments have."""

    kind: Kind
    runnable: RunnableFunction
    arn: str


@dataclass(frozen=True)
class Origin:
    """Where a forwarded request first arrived: what the target restores in its ASGI scope."""

    client: str
    port: int
    scheme: str


class Signer:
    """Signs and checks ``x-lambdad-forwarded`` with the key every node shares."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, scope: Scope, origin: Origin) -> str:
        line = f"{scope['method']} {_target(scope)}\n{origin.client}\n{origin.port}\n{origin.scheme}"
        return hmac.new(self._key, line.encode("latin-1"), hashlib.sha256).hexdigest()

    def sign(self, scope: Scope) -> bytes:
        client = scope.get("client") or ("127.0.0.1", 0)
        server = scope.get("server") or ("127.0.0.1", 0)
        origin = Origin(str(client[0]), int(server[1] or 0), str(scope.get("scheme", "http")))
        mac = self._mac(scope, origin)
        return f"{origin.client};{origin.port};{origin.scheme};{mac}".encode("latin-1")

    def verify(self, scope: Scope, value: bytes) -> Origin | None:
        try:
            client, port, scheme, mac = value.decode("latin-1").split(";")
            origin = Origin(client, int(port), scheme)
        except ValueError:
            return None
        return origin if hmac.compare_digest(mac, self._mac(scope, origin)) else None


class Forwarder:
    """This node's side of forwarding: placement inputs, the signer, a connection pool per node."""

    def __init__(
        self,
        membership: Membership,
        load: Callable[[], NodeLoad],
        invoker: Invoker,
        urls: UrlService,
        account: str,
        region: str,
        key: bytes,
        eligible: Eligibility = every_node,
    ) -> None:
        self._membership = membership
        self._load = load
        self._invoker = invoker
        self._urls = urls
        self._account = account
        self._region = region
        self.signer = Signer(key)
        self._eligible = eligible
        self.node_id = membership.node_id
        self.forwarded = Forwarded()
        # Invocations placed here that have not taken an environment yet, per function ARN: between the
        # choice and the pool's hand-over a request is authenticated and authorised (database reads), and
        # the next request must not count the same idle environment as free.
        self._placed_here: dict[str, list[object]] = {}
        self._clients: dict[str, NodeClient] = {}

    async def close(self) -> None:
        await close_all(self._clients)
        self._clients.clear()

    # What a request is ----------------------------------------------------------------------------------

    async def resolve(self, scope: Scope) -> Placed | None:
        """The function a request would run, if it is one to place (else None: run it here)."""
        if scope["method"] == "POST":
            path = scope["path"]
            match = _INVOKE.match(path) or _STREAM.match(path)
            if match is not None:
                headers = dict(scope["headers"])
                if headers.get(b"x-amz-invocation-type", b"RequestResponse") != b"RequestResponse":
                    return None  # Event (the queue is shared) and DryRun run where they arrive
                query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
                qualifier = query.get("Qualifier", [None])[0]
                credential = _CREDENTIAL_SCOPE.search(headers.get(b"authorization", b"").decode("latin-1"))
                region = credential.group(1) if credential else self._region
                name = unquote(match.group(1))
                # The caller's account is known once the request is authenticated, on the node that runs
                # it; a full ARN names its account, else the default account is the placement's guess.
                ref = parse_function_ref(name)
                account = (ref.account if ref is not None else None) or self._account
                return await self._find(Kind.INVOKE, LambdaScope(account, region), name, qualifier)
        target = url_target(scope)
        if target is None or scope["method"] == "OPTIONS":
            return None
        url = self._urls.cached(target[0])
        if url is None:
            try:
                url = await anyio.to_thread.run_sync(self._urls.find, target[0])
            except Exception:  # the database is away: the local app answers as a URL does (502)
                return None
        if url is None:
            return None
        return await self._find(Kind.URL, url.scope, url.function_name, url.qualifier)

    async def _find(self, kind: Kind, where: LambdaScope, name: str, qualifier: str | None) -> Placed | None:
        try:
            runnable = await self._invoker.find(where, name, qualifier, here=False)
        except Exception:
            # Missing, not ready, malformed (LambdaError), or the database is away: the local app answers
            # AWS's error for it.
            return None
        version = runnable.version
        # The ARN the pools key environments by (``idle_by_function``, heartbeats).
        arn = where.function_arn(version.name, None if version.version == LATEST else version.version)
        return Placed(kind, runnable, arn)

    # Where it runs -------------------------------------------------------------------------------------

    def candidates(self, placed: Placed) -> list[Candidate]:
        """The nodes to try, best first; this node among them (or none: run here)."""
        here: Candidate | None = None
        others: list[Candidate] = []
        for node in self._membership.nodes():
            if node.node_id == self.node_id:
                here = Candidate(node.node_id, node.heartbeat.url, self._load(), node.heartbeat)
            elif node.state is NodeState.LIVE:  # a suspect node may be unreachable: not worth a try
                others.append(
                    Candidate(node.node_id, node.heartbeat.url, node.heartbeat.load, node.heartbeat)
                )
        if here is None:  # before this node's first heartbeat
            return []
        waiting = len(self._placed_here.get(placed.arn, ()))
        if waiting:
            load = here.load
            idle = {**load.idle, placed.arn: max(0, load.idle.get(placed.arn, 0) - waiting)}
            here = dataclasses.replace(here, load=dataclasses.replace(load, idle=idle))
        version = placed.runnable.version
        now = time.monotonic()
        return choose(
            placed.arn, here, others, self.forwarded, now, lambda node: self._eligible(version, node)
        )

    def placed_here(self, arn: str) -> object:
        """Count an invocation of ``arn`` placed here until it takes an environment (or ends)."""
        token = object()
        self._placed_here.setdefault(arn, []).append(token)
        return token

    def took_environment(self, arn: str) -> None:
        """The pool handed out an environment of ``arn`` (``ClusterNode`` tells): one placement less."""
        waiting = self._placed_here.get(arn)
        if waiting:
            waiting.pop(0)
            if not waiting:
                del self._placed_here[arn]

    def ended_here(self, arn: str, token: object) -> None:
        """An invocation placed here ended (refused before it took an environment, perhaps)."""
        waiting = self._placed_here.get(arn)
        if waiting and token in waiting:
            waiting.remove(token)
            if not waiting:
                del self._placed_here[arn]

    # Sending ---------------------------------------------------------------------------------------------

    def _client(self, url: str) -> NodeClient:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = NodeClient(url)
        return client

    async def forward(self, node: Candidate, placed: Placed, scope: Scope, body: bytes, send: Send) -> bool:
        """Send the request to ``node`` and relay its answer; False if it could not be sent at all."""
        headers = [(k, v) for k, v in scope["headers"] if k not in _REQUEST_DROPPED]
        headers.append((HEADER, self.signer.sign(scope)))
        self.forwarded.sent(node.node_id, placed.arn)
        answered_at: float | None = None
        try:
            try:
                response = await self._client(node.url).request(
                    scope["method"],
                    _target(scope),
                    headers,
                    body,
                    connect_timeout=CONNECT_TIMEOUT,
                    read_timeout=placed.runnable.version.timeout + READ_GRACE,
                )
            except Unreachable as error:
                log.info("node %s unreachable (%s): trying the next", node.node_id, error)
                return False
            except Broken as error:
                log.warning("node %s failed a forwarded request: %s", node.node_id, error)
                await _fault(placed.kind, scope, send)
                return True
            if await _relay(response, send, node.node_id):
                answered_at = time.monotonic()
            return True
        finally:
            self.forwarded.done(node.node_id, placed.arn, answered_at)


class ForwardingRouter:
    """ASGI middleware: places invocations and runs each here or on the node chosen."""

    def __init__(self, app: ASGIApp, forwarder: Forwarder) -> None:
        self.app = app
        self.forwarder = forwarder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        mark = next((value for name, value in scope["headers"] if name == HEADER), None)
        if mark is not None:
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != HEADER]}
            origin = self.forwarder.signer.verify(scope, mark)
            if origin is not None:  # sent by a node that chose this one: run it here
                scope["client"] = (origin.client, 0)
                scope["server"] = (scope.get("server") or ("127.0.0.1", 0))[0], origin.port
                scope["scheme"] = origin.scheme
                await self.app(scope, receive, send)
                return
            log.warning("ignoring a forwarding header that does not verify (from %s)", scope.get("client"))
        placed = await self.forwarder.resolve(scope)
        if placed is None:
            await self.app(scope, receive, send)
            return
        chunks, complete = await _read_body(receive)
        replay = _replaying(chunks, complete, receive)
        if complete:
            body = b"".join(chunks)
            for node in self.forwarder.candidates(placed):
                if node.node_id == self.forwarder.node_id:
                    break
                if await self.forwarder.forward(node, placed, scope, body, send):
                    return
        # Here: chosen, the last resort, or a body past AWS's limit (the local app answers the 413).
        token = self.forwarder.placed_here(placed.arn)
        try:
            await self.app(scope, replay, send)
        finally:
            self.forwarder.ended_here(placed.arn, token)


async def _read_body(receive: Receive) -> tuple[list[bytes], bool]:
    """The request body's chunks, and whether it ended within AWS's 6 MB (else: the chunks read so far)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return chunks, True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return chunks, True
        if size > REQUEST_MAX:
            return chunks, False


def _replaying(chunks: list[bytes], complete: bool, receive: Receive) -> Receive:
    """A ``receive`` that gives the chunks already read, then whatever the client still sends."""
    queued = list(chunks) or [b""]

    async def replay() -> Message:
        if queued:
            chunk = queued.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(queued) or not complete}
        return await receive()

    return replay


async def _relay(response: Response, send: Send, node_id: str) -> bool:
    """The target's answer, status, headers and body, chunk by chunk as they arrive; whether all of it
    came."""
    headers = [(name, value) for name, value in response.headers if name.lower() not in _RESPONSE_DROPPED]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    complete = True
    try:
        async for chunk in response.chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except Broken as error:
        # The answer has begun: its status cannot change any more. The body ends where the target's did.
        log.warning("node %s stopped answering a forwarded request: %s", node_id, error)
        complete = False
    await send({"type": "http.response.body", "body": b""})
    return complete


async def _fault(kind: Kind, scope: Scope, send: Send) -> None:
    """AWS's answer when the service fails: Lambda's ServiceException, or a function URL's 502."""

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    if kind is Kind.URL:
        await send(
            {
                "type": "http.response.start",
                "status": 502,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"21")],
            }
        )
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
        return
    request_id = str(uuid.uuid4())
    log.error("request %s: the node running it failed before answering", request_id)
    error = ServiceException(f"lambdad failed to process the request; see the server log for {request_id}")
    await error_response(error, request_id)(scope, nothing, send)


def _target(scope: Scope) -> str:
    """The request's path and query as they arrived (percent-encoding kept)."""
    raw = bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    return f"{raw}?{query}" if query else raw
