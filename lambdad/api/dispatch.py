"""The AWS REST APIs lambdad serves (Lambda, EventBridge Scheduler) as one ASGI app: route by the models,
parse, validate, call a handler, render.

Each service is a ``ServiceApi``: a botocore model, a table of handlers and the service's error
conventions. A request goes to the first service with a route for its method and path (the services'
paths do not overlap). Every answer, including every failure, is AWS-shaped: errors carry
``x-amzn-ErrorType`` and a JSON body botocore maps to its exception classes; an unexpected failure is
logged with the request id and answered as the service's internal error (Lambda's ServiceException,
the scheduler's InternalServerException), never as a traceback; a database outage is answered the same
way, with words that say so and one log line rather than a traceback.
"""

from __future__ import annotations

import errno
import inspect
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from lambdad.api.authorization import authorize
from lambdad.api.operations import Call, OperationTable, Services
from lambdad.api.protocol import parse_request, serialize_response
from lambdad.api.service_model import Route, find_route, success_status
from lambdad.api.throttle import RateLimiter
from lambdad.api.validation import validate
from lambdad.errors import (
    LambdaError,
    NotImplementedException,
    RequestTooLargeException,
    ServiceException,
    TooManyRequestsException,
    UnknownOperationException,
)
from lambdad.models import Caller, Scope
from lambdad.store import outage
from lambdad.store.reserve import DiskReserve

log = logging.getLogger(__name__)

# A 50 MB zip arrives base64-encoded inside JSON: 4/3 of it plus room for the rest of the request.
DEFAULT_BODY_LIMIT = 52_428_800 * 4 // 3 + 1_048_576
# Operations with their own limits, and the name AWS's message gives them.
BODY_LIMITS = {
    "Invoke": ("InvokeFunction", 6_291_456),
    "InvokeWithResponseStream": ("InvokeWithResponseStream", 6_291_456),
    "InvokeAsync": ("InvokeAsync", 262_144),
}
_DRAIN_CEILING = 256 * 1024 * 1024
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
#: The ASGI scope key holding the ``Caller`` of a request a function sent from its sandbox. Only the
#: composition root's in-sandbox client sets it; requests from the network never carry it (uvicorn
#: builds their scope).
CALLER_KEY = "lambdad.caller"


def _lambda_throttled() -> LambdaError:
    return TooManyRequestsException.rate_exceeded("CallerRateLimitExceeded")


@dataclass(frozen=True)
class ServiceApi:
    """One AWS service on the server: its botocore model, its handlers and how its errors look."""

    model: str  # botocore's service name: "lambda", "scheduler"
    table: OperationTable
    # The error an unexpected failure is answered with.
    internal_error: type[LambdaError] = ServiceException
    # The error answered when the control plane's rate limit is reached.
    throttled: Callable[[], LambdaError] = _lambda_throttled
    # The body's message member for every error of this service (None: each error's own spelling), and
    # whether bodies carry Lambda's "Type": "User" | "Service".
    message_key: str | None = None
    fault_in_body: bool = True


class AwsApi:
    """An ASGI app serving every operation of ``apis``; operations without a handler answer
    NotImplemented, requests no service routes answer UnknownOperation."""

    def __init__(
        self,
        apis: Sequence[ServiceApi],
        services: Services,
        account: str,
        default_region: str,
        throttle: RateLimiter | None = None,
        reserve: DiskReserve | None = None,
    ) -> None:
        self._apis = tuple(apis)
        # Room on the data directory's disk, given up when a request finds the disk full.
        self._reserve = reserve
        self._services = services
        self._account = account
        self._default_region = default_region
        self._throttle = throttle

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request_id = str(uuid.uuid4())
        raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?")[0]
        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query.setdefault(key, []).append(value)
        api, found = self._route(request.method, raw_path, query)
        try:
            if found is None:
                raise UnknownOperationException(f"No operation serves {request.method} {raw_path}")
            response = await self._handle(api, found, query, request, request_id)
            if self._reserve is not None and request.method != "GET":
                self._reserve.hold()  # after a write that worked: take the reserve back if there is room
        except LambdaError as error:
            if self._reserve is not None and disk_full(error):  # code with no room: a cause of its own
                self._reserve.release()
            response = error_response(error, request_id, api)
        except Exception as error:
            path = request.url.path
            if disk_full(error):  # the operator's to fix, not a bug: one line, and the client is told why
                log.error("request %s (%s %s): the disk is full", request_id, request.method, path)
                if self._reserve is not None:
                    self._reserve.release()
                message = "lambdad's disk is full (no space left on device): the request could not be stored"
            elif outage.unavailable(error):  # PostgreSQL away: one line, the client may retry
                log.warning(
                    "request %s (%s %s): the database is unavailable: %s",
                    request_id,
                    request.method,
                    path,
                    outage.reason(error),
                )
                message = outage.UNAVAILABLE_MESSAGE
            else:
                log.exception("request %s (%s %s) failed", request_id, request.method, path)
                message = f"lambdad failed to process the request; see the server log for {request_id}"
            response = error_response(api.internal_error(message), request_id, api)
        await response(scope, receive, send)

    def _route(
        self, method: str, raw_path: str, query: dict[str, list[str]]
    ) -> tuple[ServiceApi, tuple[Route, dict[str, str]] | None]:
        for api in self._apis:
            found = find_route(method, raw_path, query, api.model)
            if found is not None:
                return api, found
        return self._apis[0], None

    async def _handle(
        self,
        api: ServiceApi,
        found: tuple[Route, dict[str, str]],
        query: dict[str, list[str]],
        request: Request,
        request_id: str,
    ) -> Response:
        route, uri_params = found
        operation = route.operation
        handler = api.table.handlers.get(operation.name)
        if handler is None:
            raise NotImplementedException(f"lambdad does not implement the {operation.name} operation yet")
        if self._throttle is not None and not self._throttle.try_acquire():
            raise api.throttled()
        body = await _read_body(
            request, *BODY_LIMITS.get(operation.name, (operation.name, DEFAULT_BODY_LIMIT))
        )
        headers = {k.lower(): v for k, v in request.headers.items()}
        params = parse_request(operation, uri_params, query, headers, body)
        scope = Scope(self._account, self._region(headers))
        caller = request.scope.get(CALLER_KEY)
        if isinstance(caller, Caller):
            authorize(caller, api.model, operation.name, params, scope)
        validate(operation.input_shape, params)
        call = Call(
            operation=operation.name,
            params=params,
            scope=scope,
            services=self._services,
            base_url=f"{request.url.scheme}://{headers.get('host', request.url.netloc)}",
            request_id=request_id,
        )
        if inspect.iscoroutinefunction(handler):
            output = await handler(call)
        else:
            output = await anyio.to_thread.run_sync(handler, call)
        serialized = serialize_response(operation, output, success_status(operation))
        serialized.headers["x-amzn-RequestId"] = request_id
        if serialized.stream is not None:
            return StreamingResponse(serialized.stream, serialized.status, serialized.headers)
        return Response(serialized.body, serialized.status, serialized.headers)

    def _region(self, headers: dict[str, str]) -> str:
        match = _CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
        return match.group(1) if match else self._default_region


async def _read_body(request: Request, operation: str, limit: int) -> bytes:
    """The whole body, or RequestTooLargeException once it passes ``limit``.

    An oversized body is still read (and dropped) up to a ceiling: a server that answers before the
    client finished sending makes most clients see a reset connection instead of the 413.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > _DRAIN_CEILING:
            break
    if size > limit:
        raise RequestTooLargeException(
            f"Request must be smaller than {limit} bytes for the {operation} operation"
        )
    return b"".join(chunks)


def error_response(error: LambdaError, request_id: str, api: ServiceApi | None = None) -> Response:
    """An AWS error answer, in ``api``'s conventions: status, ``x-amzn-ErrorType`` and a JSON body."""
    body: dict[str, Any] = {}
    if error.fault and (api is None or api.fault_in_body):
        body["Type"] = error.fault
    body[(api.message_key if api else None) or error.message_key] = error.message
    body.update(error.fields)
    headers = {
        **error.headers,
        "x-amzn-ErrorType": error.code,
        "x-amzn-RequestId": request_id,
        "content-type": "application/json",
    }
    return Response(json.dumps(body).encode(), error.status, headers)


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the disk has no room: an OSError, or the database's
    own words for it (SQLite's "database or disk is full", PostgreSQL quoting ENOSPC)."""
    seen: BaseException | None = error
    for _ in range(8):  # a chain of causes is short; a cycle in one must not loop
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(seen) or "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
