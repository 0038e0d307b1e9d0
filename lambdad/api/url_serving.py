"""Serving function URLs: an HTTP request becomes a payload format 2.0 event, the function's result
becomes the HTTP response, by AWS's rules.

A request reaches a URL two ways, both on lambdad's own port:

- by host name, as on AWS: ``http://<url-id>.lambda-url.<region>.localhost:<port>/path?query``
  (``*.localhost`` resolves to the loopback address; any client may also send that ``Host`` header);
- by path, for clients that cannot choose a host: ``http://127.0.0.1:<port>/_lambdad/urls/<url-id>/path``
  (the function sees ``/path``).

``FunctionUrlRouter`` sits in front of the Lambda API and sends those requests to ``FunctionUrlServer``.
InvokeMode RESPONSE_STREAM sends the body as the function streams it (chunked transfer): a streamed
response that begins with the HTTP integration prelude (``awslambda.HttpResponseStream.from``: a JSON
``{statusCode, headers, cookies}`` then 8 NUL bytes) takes its status and headers from it; without one it
is a 200 ``application/octet-stream``. A function that does not stream is answered as in BUFFERED mode.

AuthType AWS_IAM URLs need a request signed with SigV4 for service ``lambda`` (the URL's host and path as
the client sent them: by host name or by path form, whichever it called) by a key the identity store
knows, whose principal may ``lambda:InvokeFunctionUrl`` on the function (its qualified ARN for an alias's
URL) with ``lambda:FunctionUrlAuthType`` = ``AWS_IAM``: in the function's account its identity policy or
the function's resource policy, from another account both. A missing signature and a denial answer AWS's
403 ``Forbidden`` (``AccessDeniedException``); a signature that does not verify, 403 with the
verifier's error (``InvalidSignatureException``, ``UnrecognizedClientException``, ...). With
authentication off (``--auth none``: no identity store to check a signature against) every request to such
a URL is refused, since a request that merely looks signed must not run the function.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from lambdad.api.authorization import Authorizer
from lambdad.api.operations import Services
from lambdad.api.sigv4 import Authenticator, Failure, SignatureFailure, SignedRequest, aws_error
from lambdad.errors import (
    AccessDeniedException,
    LambdaError,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from lambdad.invocation.invoker import InvokeRequest, StreamedResult
from lambdad.models import Principal
from lambdad.services.permissions import AccessRequest
from lambdad.services.urls import UrlService
from lambdad.store.outage import reason, unavailable
from lambdad.store.urls import FunctionUrl

log = logging.getLogger(__name__)

PATH_PREFIX = "/_lambdad/urls/"
REQUEST_MAX = 6_291_456  # AWS's synchronous payload limit
_HOST = re.compile(r"^([a-z0-9]{32})\.lambda-url\.[a-z0-9-]+\.localhost\.?(?::\d+)?$")
_URL_ID = re.compile(r"^[a-z0-9]{32}$")
_FORBIDDEN = (
    "Forbidden. For troubleshooting Function URL authorization issues, see: "
    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
)
_TEXT_TYPES = ("application/json", "application/javascript", "application/xml")
_HOP_BY_HOP = ("content-length", "transfer-encoding", "connection")
_CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
)

Headers = list[tuple[bytes, bytes]]


class FunctionUrlRouter:
    """ASGI middleware: requests addressed to a function URL (by host or by path) go to the URL server,
    everything else to the app it wraps (the Lambda API)."""

    def __init__(self, app: ASGIApp, server: FunctionUrlServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = url_target(scope)
            if target is not None:
                url_id, raw_path = target
                await self.server.serve(scope, receive, send, url_id, raw_path)
                return
        await self.app(scope, receive, send)


def url_target(scope: Scope) -> tuple[str, str] | None:
    """(url-id, raw path as the function sees it) if the request is addressed to a function URL."""
    raw_path = bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?")[0]
    for name, value in scope["headers"]:
        if name == b"host":
            match = _HOST.match(value.decode("latin-1").lower())
            if match:
                return match.group(1), raw_path or "/"
            break
    if raw_path.startswith(PATH_PREFIX):
        url_id, slash, rest = raw_path[len(PATH_PREFIX) :].partition("/")
        if _URL_ID.match(url_id):
            return url_id, slash + rest if slash else "/"
    return None


class FunctionUrlServer:
    """Answers the requests of every function URL of this server."""

    def __init__(
        self,
        services: Services,
        account: str,
        authenticator: Authenticator | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        self._services = services
        self._urls = services.urls
        self._invoker = services.invoker
        self._account = account
        # Both or neither (authentication off): what AWS_IAM URLs verify signatures and decide with.
        self._authenticator = authenticator
        self._authorizer = authorizer

    async def serve(self, scope: Scope, receive: Receive, send: Send, url_id: str, raw_path: str) -> None:
        request_id = str(uuid.uuid4())
        try:
            status, headers, body = await self._answer(scope, receive, url_id, raw_path, request_id)
        except Exception as error:
            if not unavailable(error):
                raise
            # A URL not cached, or its permissions, could not be read: one line, and the answer AWS gives
            # when it cannot make a response.
            log.warning("function URL %s: the database is unavailable: %s", url_id, reason(error))
            status, headers, body = _internal_error()
        headers.append((b"x-amzn-RequestId", request_id.encode()))
        if isinstance(body, bytes):
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
            return
        # Streamed: no content-length, so the server sends it chunked, each chunk as it comes.
        await send({"type": "http.response.start", "status": status, "headers": headers})
        async for chunk in body:
            if scope["method"] != "HEAD":
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _answer(
        self, scope: Scope, receive: Receive, url_id: str, raw_path: str, request_id: str
    ) -> tuple[int, Headers, bytes | AsyncIterator[bytes]]:
        url = self._urls.cached(url_id) or await anyio.to_thread.run_sync(self._urls.find, url_id)
        if url is None:
            return _error(403, "AccessDeniedException", None)
        body = await _read_body(receive)
        if body is None:
            return _error(
                413,
                "RequestEntityTooLargeException",
                f"Request must be smaller than {REQUEST_MAX} bytes for the InvokeFunction operation",
            )
        headers = _header_pairs(scope)
        request_headers = _joined(headers)
        origin = request_headers.get("origin")
        cors = url.cors
        if (
            cors is not None
            and scope["method"] == "OPTIONS"
            and origin is not None
            and "access-control-request-method" in request_headers
        ):
            return 200, _preflight_headers(cors, origin), b""
        caller: Principal | None = None
        if url.auth_type == "AWS_IAM":
            verdict = await self._signed_caller(scope, url, request_headers, body)
            if not isinstance(verdict, Principal):
                return verdict
            caller = verdict
        elif url.auth_type == "NONE" and not await anyio.to_thread.run_sync(self._public, url):
            return _error(403, "AccessDeniedException", _FORBIDDEN)
        event = self._event(scope, url, raw_path, headers, body, request_id, caller)
        request = InvokeRequest(
            scope=url.scope,
            function_name=url.function_name,
            qualifier=url.qualifier,
            payload=json.dumps(event).encode(),
            request_id=request_id,
        )
        answer: tuple[int, Headers, bytes | AsyncIterator[bytes]] | None
        try:
            if url.invoke_mode == "RESPONSE_STREAM":
                answer = await _streamed_answer(await self._invoker.invoke_streaming(request))
            else:
                result = await self._invoker.invoke(request)
                answer = None if result.function_error else render_response(result.payload)
        except ResourceNotFoundException:
            # The function or alias behind the URL is gone: AWS then refuses the URL.
            return _error(403, "AccessDeniedException", _FORBIDDEN)
        except TooManyRequestsException as error:
            return _error(429, "TooManyRequestsException", error.message)
        except LambdaError as error:
            log.info("function URL %s: %s: %s", url_id, error.code, error.message)
            return _internal_error()
        if answer is None:
            return _internal_error()
        status, response_headers, response_body = answer
        if cors is not None and origin is not None:
            response_headers = [(k, v) for k, v in response_headers if k.decode() not in _CORS_HEADERS]
            response_headers += _cors_headers(cors, origin)
        return status, response_headers, response_body

    async def _signed_caller(
        self, scope: Scope, url: FunctionUrl, headers: dict[str, str], body: bytes
    ) -> Principal | tuple[int, Headers, bytes]:
        """Who signed a request to an AWS_IAM URL, if they may invoke it; else the refusal to answer."""
        if self._authenticator is None or self._authorizer is None:
            # Authentication off: nothing to verify a signature against, so nothing may pass as signed.
            return _error(403, "AccessDeniedException", _FORBIDDEN)
        signed = SignedRequest(
            scope["method"],
            # Signed as sent: the host form's path, or the whole path form (/_lambdad/urls/ID/...).
            bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?")[0],
            bytes(scope.get("query_string", b"")).decode("latin-1"),
            headers,
            body,
            secure=scope.get("scheme") == "https",
        )
        try:
            principal = await self._authenticator.authenticate(signed, "lambda")
        except SignatureFailure as failure:
            if failure.kind is Failure.MISSING:
                return _error(403, "AccessDeniedException", _FORBIDDEN)
            error = aws_error(failure, "rest-json")
            return _error(403, error.code, error.message)
        region_scope = url.scope  # the function's account and region
        resource = region_scope.function_arn(url.function_name, url.qualifier)
        context = {
            "lambda:FunctionUrlAuthType": "AWS_IAM",
            "aws:SourceIp": scope["client"][0] if scope.get("client") else "127.0.0.1",
            "aws:SecureTransport": scope.get("scheme") == "https",
        }
        decide = partial(
            self._authorizer.authorize_action,
            principal,
            "lambda:InvokeFunctionUrl",
            resource,
            region_scope,
            context,
        )
        try:
            await anyio.to_thread.run_sync(decide)  # reads the identity store and the function's policy
        except AccessDeniedException as denied:
            log.info("function URL %s: %s", url.url_id, denied.message)
            return _error(403, "AccessDeniedException", _FORBIDDEN)
        return principal

    def _public(self, url: FunctionUrl) -> bool:
        """Whether the resource-based policy of the URL's function (or alias) lets anyone call it: AWS
        requires a statement allowing lambda:InvokeFunctionUrl to Principal "*" with the condition
        lambda:FunctionUrlAuthType = NONE, even on a URL whose AuthType is NONE."""
        request = AccessRequest(
            principal="*", action="lambda:InvokeFunctionUrl", function_url_auth_type="NONE"
        )
        return self._services.permissions.allows(url.scope, url.function_name, request, url.qualifier)

    def _event(
        self,
        scope: Scope,
        url: FunctionUrl,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        request_id: str,
        caller: Principal | None = None,
    ) -> dict[str, Any]:
        """The payload format 2.0 event of one request (``caller``: who signed it, for AWS_IAM)."""
        client_ip = scope["client"][0] if scope.get("client") else "127.0.0.1"
        server_port = scope["server"][1] if scope.get("server") else self._urls.port
        joined = _joined((name, value) for name, value in headers if name != "cookie")
        forwarded = joined.get("x-forwarded-for")
        joined["x-forwarded-for"] = f"{forwarded}, {client_ip}" if forwarded else client_ip
        joined["x-forwarded-proto"] = scope.get("scheme", "http")
        joined["x-forwarded-port"] = str(server_port)
        joined.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}")
        cookies = [
            cookie.strip()
            for name, value in headers
            if name == "cookie"
            for cookie in value.split(";")
            if cookie.strip()
        ]
        raw_query = bytes(scope.get("query_string", b"")).decode("latin-1")
        query: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        now = time.time()
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": raw_query,
        }
        if cookies:
            event["cookies"] = cookies
        event["headers"] = joined
        if query:
            event["queryStringParameters"] = query
        context: dict[str, Any] = {
            "accountId": "anonymous" if url.auth_type == "NONE" else self._account,
            "apiId": url.url_id,
            "domainName": UrlService.host_of(url),
            "domainPrefix": url.url_id,
            **({"authorizer": {"iam": _iam_authorizer(caller)}} if caller is not None else {}),
            "http": {
                "method": scope["method"],
                "path": raw_path,
                "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                "sourceIp": client_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        }
        event["requestContext"] = context
        if body:
            if _is_text(joined.get("content-type")):
                try:
                    event["body"] = body.decode("utf-8")
                    event["isBase64Encoded"] = False
                except UnicodeDecodeError:
                    event["body"] = base64.b64encode(body).decode()
                    event["isBase64Encoded"] = True
            else:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        else:
            event["isBase64Encoded"] = False
        return event


def _iam_authorizer(caller: Principal) -> dict[str, Any]:
    """``requestContext.authorizer.iam`` of an AWS_IAM URL's event: who signed the request, as AWS
    describes them (callerId and userId: AIDA... for a user, AROA...:SESSION for a role session)."""
    return {
        "accessKey": caller.access_key_id,
        "accountId": caller.account,
        "callerId": caller.user_id,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": caller.arn,
        "userId": caller.user_id,
    }


_PRELUDE_END = b"\0" * 8
_PRELUDE_MAX = 64 * 1024


async def _streamed_answer(
    streamed: StreamedResult,
) -> tuple[int, Headers, bytes | AsyncIterator[bytes]] | None:
    """The HTTP answer to a RESPONSE_STREAM URL's invocation, once its first bytes (and prelude) are in."""
    chunks = aiter(streamed.stream)
    head = b""
    ended = False
    # A prelude is JSON at the very start of the stream, ended by 8 NUL bytes.
    while (
        not ended
        and (not head or (head[:1] == b"{" and _PRELUDE_END not in head))
        and len(head) < _PRELUDE_MAX
    ):
        try:
            head += await anext(chunks)
        except StopAsyncIteration:
            ended = True
    if ended:
        outcome = streamed.stream.outcome
        if outcome is None or outcome.function_error:
            return None
        if outcome.result is not None and outcome.result.stream is None:
            return render_response(outcome.payload)  # the function did not stream: BUFFERED's rules
    status, headers = 200, [(b"content-type", b"application/octet-stream")]
    if head[:1] == b"{" and _PRELUDE_END in head:
        prelude_text, head = head.split(_PRELUDE_END, 1)
        prelude = _prelude(prelude_text)
        if prelude is not None:
            status, headers = prelude

    async def body() -> AsyncIterator[bytes]:
        if head:
            yield head
        if not ended:
            async for chunk in chunks:
                yield chunk

    return status, headers, body()


def _prelude(text: bytes) -> tuple[int, Headers] | None:
    """Status and headers from an HTTP integration prelude (``statusCode``, ``headers``, ``cookies``)."""
    try:
        prelude = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(prelude, dict):
        return None
    status = prelude.get("statusCode", 200)
    headers: Headers = []
    raw_headers = prelude.get("headers") or {}
    if isinstance(raw_headers, dict):
        headers = [(k.lower().encode(), _header_value(v).encode()) for k, v in raw_headers.items()]
    if not any(k == b"content-type" for k, _ in headers):
        headers.append((b"content-type", b"application/octet-stream"))
    for cookie in prelude.get("cookies") or []:
        headers.append((b"set-cookie", str(cookie).encode()))
    return (int(status) if isinstance(status, int | str) and str(status).isdigit() else 200), headers


def render_response(payload: bytes) -> tuple[int, Headers, bytes] | None:
    """The HTTP response a function's result stands for, by AWS's rules; None if it stands for none
    (AWS then answers 502).

    A JSON object with ``statusCode`` is applied as given (``headers``, ``cookies`` as ``set-cookie``,
    ``body``, ``isBase64Encoded``). Anything else is a 200 ``application/json`` whose body is the result:
    a string as it is, any other value as compact JSON.
    """
    try:
        result = json.loads(payload) if payload else None
        if not (isinstance(result, dict) and "statusCode" in result):
            body = result if isinstance(result, str) else _compact(result)
            return 200, [(b"content-type", b"application/json")], body.encode()
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth: AWS's 502
        return None
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return None
    if not 100 <= status <= 599:
        return None
    headers: Headers = []
    declared = result.get("headers") or {}
    if not isinstance(declared, dict):
        return None
    for name, value in declared.items():
        if str(name).lower() in _HOP_BY_HOP:
            continue
        headers.append((str(name).lower().encode("latin-1"), _header_value(value).encode("latin-1")))
    if not any(name == b"content-type" for name, _ in headers):
        headers.append((b"content-type", b"application/json"))
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        return None
    headers += [(b"set-cookie", str(cookie).encode("latin-1")) for cookie in cookies]
    raw = result.get("body")
    if raw is None:
        content = b""
    elif isinstance(raw, str):
        if result.get("isBase64Encoded"):
            try:
                content = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                return None
        else:
            content = raw.encode()
    else:
        try:
            content = _compact(raw).encode()
        except RecursionError:
            return None
    return status, headers, content


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _header_pairs(scope: Scope) -> list[tuple[str, str]]:
    return [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in scope["headers"]]


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-cased name; repeated headers joined with commas, as AWS does."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _is_text(content_type: str | None) -> bool:
    """Whether AWS passes a body of this type as text (else base64): ``text/*`` and JSON, XML and
    JavaScript types; a body without a type is binary."""
    if not content_type:
        return False
    media = content_type.split(";")[0].strip().lower()
    return (
        media.startswith("text/") or media in _TEXT_TYPES or media.endswith("+json") or media.endswith("+xml")
    )


def _origin_allowed(cors: dict[str, Any], origin: str) -> bool:
    allowed = cors.get("AllowOrigins") or []
    return "*" in allowed or origin.lower() in (entry.lower() for entry in allowed)


def _cors_headers(cors: dict[str, Any], origin: str) -> Headers:
    """The CORS headers of a response to ``origin``, from the URL's Cors configuration."""
    if not _origin_allowed(cors, origin):
        return []
    wildcard = "*" in (cors.get("AllowOrigins") or []) and not cors.get("AllowCredentials")
    headers: Headers = [(b"access-control-allow-origin", ("*" if wildcard else origin).encode("latin-1"))]
    if cors.get("AllowCredentials"):
        headers.append((b"access-control-allow-credentials", b"true"))
    if cors.get("ExposeHeaders"):
        headers.append((b"access-control-expose-headers", ",".join(cors["ExposeHeaders"]).encode("latin-1")))
    if not wildcard:
        headers.append((b"vary", b"Origin"))
    return headers


def _preflight_headers(cors: dict[str, Any], origin: str) -> Headers:
    """The answer to a CORS preflight (OPTIONS), made from the configuration: the function is not run."""
    headers = _cors_headers(cors, origin)
    if not headers:
        return []
    if cors.get("AllowMethods"):
        headers.append((b"access-control-allow-methods", ",".join(cors["AllowMethods"]).encode("latin-1")))
    if cors.get("AllowHeaders"):
        headers.append((b"access-control-allow-headers", ",".join(cors["AllowHeaders"]).encode("latin-1")))
    if cors.get("MaxAge") is not None:
        headers.append((b"access-control-max-age", str(cors["MaxAge"]).encode()))
    return headers


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None past AWS's 6 MB limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= REQUEST_MAX:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size <= REQUEST_MAX else None


def _error(status: int, error_type: str, message: str | None) -> tuple[int, Headers, bytes]:
    """AWS's JSON error of a function URL: ``{"Message": ...}`` with ``x-amzn-ErrorType``."""
    body = json.dumps({"Message": message}, separators=(",", ":")).encode()
    return (
        status,
        [(b"content-type", b"application/json"), (b"x-amzn-errortype", error_type.encode())],
        body,
    )


def _internal_error() -> tuple[int, Headers, bytes]:
    """What AWS answers when the function fails or returns what no HTTP response can be made of."""
    return 502, [(b"content-type", b"application/json")], b"Internal Server Error"
