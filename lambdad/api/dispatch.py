"""The AWS APIs lambdad serves (Lambda, EventBridge Scheduler, and any service of botocore's rest-json,
query or ec2 protocols) as one ASGI app on one port: choose the service, find the operation, parse,
validate, call a handler, render.

Each service is a ``ServiceApi``: a botocore model (which names its protocol), a table of handlers and
the service's error conventions. The service is the one the request was signed for (the SigV4
credential scope of the Authorization header or of a presigned URL's ``X-Amz-Credential``); a request
signed for no service lambdad serves goes to the first rest-json service with a route for its method and
path (their paths do not overlap, a test keeps it so), else to the query service naming its form's
``Action``. The protocols themselves live in their own modules (``wire.WireProtocol``). Every answer,
including every failure, is AWS-shaped in the service's protocol: an unexpected failure is logged with
the request id and answered as the service's internal error (Lambda's ServiceException, the scheduler's
InternalServerException), never as a traceback; a database outage is answered the same way, with words
that say so and one log line rather than a traceback.
"""

from __future__ import annotations

import errno
import inspect
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial

import anyio.to_thread
from botocore.model import ServiceModel
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from lambdad.api.authorization import Authorizer, NoIdentities, caller_principal
from lambdad.api.ec2_protocol import Ec2
from lambdad.api.json_protocol import Json
from lambdad.api.operations import Call, OperationTable, Services
from lambdad.api.protocol import RestJson
from lambdad.api.query_protocol import Query
from lambdad.api.service_model import service_model
from lambdad.api.sigv4 import Authenticator, SignatureFailure, SignedRequest, aws_error
from lambdad.api.throttle import RateLimiter
from lambdad.api.validation import validate
from lambdad.api.wire import Answer, Found, Incoming, WireProtocol
from lambdad.errors import (
    LambdaError,
    NotImplementedException,
    ServiceException,
    TooManyRequestsException,
)
from lambdad.models import Caller, Principal, Scope
from lambdad.policy.actions import owner_scope
from lambdad.store import outage
from lambdad.store.reserve import DiskReserve

log = logging.getLogger(__name__)

# The credential scope of a signed request: Credential=AKID/DATE/REGION/SERVICE/aws4_request (in the
# Authorization header, or a presigned URL's X-Amz-Credential).
_CREDENTIAL_SCOPE = re.compile(r"^[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request$")
_AUTHORIZATION_CREDENTIAL = re.compile(r"Credential=([^,\s]+)")
#: The ASGI scope key holding the ``Caller`` of a request a function sent from its sandbox. Only the
#: composition root's in-sandbox client sets it; requests from the network never carry it (uvicorn
#: builds their scope).
CALLER_KEY = "lambdad.caller"

#: The wire protocols by the name botocore's models give them (``metadata.protocol``).
PROTOCOLS: dict[str, WireProtocol] = {"rest-json": RestJson(), "query": Query(), "ec2": Ec2(), "json": Json()}


def _lambda_throttled() -> LambdaError:
    return TooManyRequestsException.rate_exceeded("CallerRateLimitExceeded")


@dataclass(frozen=True)
class ServiceApi:
    """One AWS service on the server: its botocore model, its handlers and how its errors look."""

    model: str  # botocore's service name: "lambda", "scheduler", "iam", "sts", "ec2", "signer"
    table: OperationTable
    # The error an unexpected failure is answered with.
    internal_error: type[LambdaError] = ServiceException
    # The error answered when the control plane's rate limit is reached.
    throttled: Callable[[], LambdaError] = _lambda_throttled
    # rest-json: the body's message member for every error of this service (None: each error's own
    # spelling), and whether bodies carry Lambda's "Type": "User" | "Service".
    message_key: str | None = None
    fault_in_body: bool = True

    @property
    def service_model(self) -> ServiceModel:
        """botocore's model of the service."""
        return service_model(self.model)

    @property
    def protocol(self) -> str:
        """The model's wire protocol: ``rest-json``, ``query``, ``ec2`` or ``json``."""
        return str(self.service_model.metadata["protocol"])

    @property
    def signing_name(self) -> str:
        """The service name of the SigV4 credential scope its clients sign with."""
        return str(self.service_model.signing_name)

    @cached_property
    def wire(self) -> WireProtocol:
        """The protocol's reader and writer."""
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"lambdad serves no {self.protocol} protocol (the {self.model} service)")
        return PROTOCOLS[self.protocol]


class AwsApi:
    """An ASGI app serving every operation of ``apis``; operations without a handler answer
    NotImplemented, requests no service serves answer the protocol's unknown operation."""

    def __init__(
        self,
        apis: Sequence[ServiceApi],
        services: Services,
        account: str,
        default_region: str,
        throttle: RateLimiter | None = None,
        reserve: DiskReserve | None = None,
        authenticator: Authenticator | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        self._apis = tuple(apis)
        # None: authentication off, every request acts as ``account``'s root.
        self._authenticator = authenticator
        # Decides signed requests, and always requests functions send from their sandboxes (as their
        # execution role). Without an identity store every role keeps the default role policy.
        self._authorizer = authorizer or Authorizer(NoIdentities(), check_roles=False)
        self._by_signing_name = {api.signing_name: api for api in reversed(self._apis)}
        for api in self._apis:
            api.wire  # noqa: B018 - a protocol lambdad does not serve fails here, at start-up
        # Room on the data directory's disk, given up when a request finds the disk full.
        self._reserve = reserve
        self._services = services
        self._account = account
        self._default_region = default_region
        self._throttle = throttle

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request_id = str(uuid.uuid4())
        incoming = Incoming(request)
        api = self._apis[0]
        try:
            api = await self._service(incoming)
            principal = await self._principal(api, incoming)
            found = await api.wire.find(api, incoming)
            if found is None:
                raise api.wire.unknown(api, incoming)
            response = await self._handle(api, found, incoming, request_id, principal)
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

    async def authorize_own(
        self, request: Request, action: str, resource: Callable[[Scope], str]
    ) -> Principal | Response | None:
        """lambdad's own endpoints (``/_lambdad/...``) with authentication on: the request must be signed
        for Lambda (service ``lambda``, as ``lambdad logs``/``nodes``/... sign it) and its signer allowed
        ``action`` on ``resource(scope)``, the IAM action AWS asks for the same information. The signer
        when it may; else the AWS error to answer (Lambda's words: 403 MissingAuthenticationToken,
        AccessDenied...). None with authentication off: anyone on the loopback may read them, as before."""
        if self._authenticator is None:
            return None
        request_id = str(uuid.uuid4())
        api = self._by_signing_name.get("lambda", self._apis[0])
        incoming = Incoming(request)
        try:
            principal = await self._principal(api, incoming)
            scope = Scope(principal.account, _signed_region(incoming) or self._default_region)
            context = {
                "aws:SourceIp": request.client.host if request.client else "127.0.0.1",
                "aws:SecureTransport": request.url.scheme == "https",
            }
            check = partial(
                self._authorizer.authorize_action, principal, action, resource(scope), scope, context
            )
            await anyio.to_thread.run_sync(check)  # reads the store
        except LambdaError as error:
            return error_response(error, request_id, api)
        return principal

    async def _service(self, incoming: Incoming) -> ServiceApi:
        """The service a request is for.

        The credential scope decides; without one naming a service served here, the first rest-json
        service with a route for the method and path, then the json service its ``X-Amz-Target`` names,
        then the query service whose operations include the
        form's ``Action`` (of the API version its ``Version`` names, first), then the first service (whose
        protocol answers that it has no such operation).
        """
        signed_for = _signed_service(incoming)
        api = self._by_signing_name.get(signed_for) if signed_for else None
        if api is not None:
            return api
        for api in self._apis:
            if api.protocol == "rest-json" and await api.wire.find(api, incoming) is not None:
                return api
        target_prefix = incoming.headers.get("x-amz-target", "").rpartition(".")[0]
        for api in self._apis:
            if api.protocol == "json" and api.service_model.metadata.get("targetPrefix") == target_prefix:
                return api
        queries = [api for api in self._apis if api.protocol in ("query", "ec2")]
        if queries and (incoming.method == "POST" or "Action" in incoming.query):
            form = await incoming.form()
            if "Action" in form:
                version = form.get("Version")
                queries.sort(key=lambda api: api.service_model.api_version != version)
                for api in queries:
                    if await api.wire.find(api, incoming) is not None:
                        return api
                return queries[0]
        return self._apis[0]

    async def _principal(self, api: ServiceApi, incoming: Incoming) -> Principal:
        """Who sent the request: a function's role session (from its sandbox), the signer SigV4 proves,
        or with authentication off the default account's root. Refused with the service's own error."""
        caller = incoming.request.scope.get(CALLER_KEY)
        if isinstance(caller, Caller):
            return caller_principal(caller)
        if self._authenticator is None:
            return Principal.root(self._account)
        request = incoming.request
        headers: dict[str, str] = {}
        for key, value in request.headers.items():  # a repeated header is signed as its values joined
            key = key.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        signed = SignedRequest(
            request.method,
            incoming.raw_path,
            bytes(request.scope.get("query_string", b"")).decode("latin-1"),
            headers,
            secure=request.url.scheme == "https",
        )
        try:
            # The body is read only for a key that exists: strangers cannot make the server buffer it.
            return await self._authenticator.authenticate(
                signed, api.signing_name, partial(api.wire.body, api, incoming)
            )
        except SignatureFailure as failure:
            raise aws_error(failure, api.protocol) from None

    async def _handle(
        self, api: ServiceApi, found: Found, incoming: Incoming, request_id: str, principal: Principal
    ) -> Response:
        operation = found.operation
        handler = api.table.handlers.get(operation.name)
        if handler is None:
            raise NotImplementedException(f"lambdad does not implement the {operation.name} operation yet")
        if self._throttle is not None and not self._throttle.try_acquire():
            raise api.throttled()
        params = await api.wire.parse(api, found, incoming)
        headers = incoming.headers
        scope = Scope(principal.account, _signed_region(incoming) or self._default_region)
        request = incoming.request
        caller = request.scope.get(CALLER_KEY)
        # Authorised before validation, as AWS: a caller who may not act learns nothing of its input.
        if isinstance(caller, Caller):
            authorize_caller = partial(self._authorizer.authorize_caller, caller, api.model, operation.name)
            await anyio.to_thread.run_sync(authorize_caller, params, scope)  # reads the store
        elif self._authenticator is not None:
            transport = {
                "aws:SourceIp": request.client.host if request.client else "127.0.0.1",
                "aws:SecureTransport": request.url.scheme == "https",
            }
            authorize = partial(self._authorizer.authorize, principal, api.model, operation.name)
            await anyio.to_thread.run_sync(authorize, params, scope, transport)  # reads the store
        validate(operation.input_shape, params)
        # Another account's function or layer, by its ARN: the records of its owner (allowed above).
        scope = owner_scope(api.model, operation.name, params, scope)
        call = Call(
            operation=operation.name,
            params=params,
            scope=scope,
            services=self._services,
            base_url=f"{request.url.scheme}://{headers.get('host', request.url.netloc)}",
            request_id=request_id,
            principal=principal,
        )
        if inspect.iscoroutinefunction(handler):
            output = await handler(call)
        else:
            output = await anyio.to_thread.run_sync(handler, call)
        return _response(api.wire.serialize(api, found, output, request_id))


def _credential_scope(incoming: Incoming) -> tuple[str, str] | None:
    """(region, service) of the request's SigV4 credential scope, if it has one."""
    credential = incoming.query.get("X-Amz-Credential", [""])[-1]
    if not credential:
        match = _AUTHORIZATION_CREDENTIAL.search(incoming.headers.get("authorization", ""))
        credential = match.group(1) if match else ""
    scoped = _CREDENTIAL_SCOPE.match(credential)
    return (scoped.group(1), scoped.group(2)) if scoped else None


def _signed_service(incoming: Incoming) -> str | None:
    scope = _credential_scope(incoming)
    return scope[1] if scope else None


def _signed_region(incoming: Incoming) -> str | None:
    scope = _credential_scope(incoming)
    return scope[0] if scope else None


def _response(answer: Answer) -> Response:
    if answer.stream is not None:
        return StreamingResponse(answer.stream, answer.status, answer.headers)
    return Response(answer.body, answer.status, answer.headers)


def error_response(error: LambdaError, request_id: str, api: ServiceApi | None = None) -> Response:
    """An AWS error answer in ``api``'s protocol and conventions (Lambda's without one)."""
    wire = api.wire if api is not None else PROTOCOLS["rest-json"]
    return _response(wire.error(api, error, request_id))


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
