"""What every wire protocol shares: the request as the dispatcher hands it over, and the contract each
protocol module fulfils (``protocol.py`` rest-json, ``query_protocol.py`` query, ``ec2_protocol.py``,
``json_protocol.py``).

A protocol answers four questions about one service: which operation a request names (None: not one of
this service's), its parameters, how a result is written, and how an error is written. The dispatcher
(``dispatch.py``) knows nothing of paths, forms or XML; adding a protocol is one module implementing
``WireProtocol`` and one line in its registry (``dispatch.PROTOCOLS``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl

from botocore.model import OperationModel
from starlette.requests import Request

from lambdad.errors import LambdaError, RequestTooLargeException

if TYPE_CHECKING:
    from lambdad.api.dispatch import ServiceApi

# A 50 MB zip arrives base64-encoded inside JSON: 4/3 of it plus room for the rest of the request.
DEFAULT_BODY_LIMIT = 52_428_800 * 4 // 3 + 1_048_576
# A query or ec2 form: IAM's largest member (a certificate chain) is 2 MB.
FORM_BODY_LIMIT = 4 * 1_048_576
_DRAIN_CEILING = 256 * 1024 * 1024


class Incoming:
    """One HTTP request: method, raw path, query, lower-cased headers, and a body read once, on demand,
    within the limit of the operation it was read for."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.method = request.method
        self.raw_path = (
            request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?")[0]
        )
        self.query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            self.query.setdefault(key, []).append(value)
        self.headers = {k.lower(): v for k, v in request.headers.items()}
        self._body: bytes | None = None
        self._form: dict[str, str] | None = None

    async def body(self, operation: str = "", limit: int = DEFAULT_BODY_LIMIT) -> bytes:
        """The whole body, or RequestTooLargeException once it passes ``limit`` (``operation`` is the name
        AWS's message gives).

        An oversized body is still read (and dropped) up to a ceiling: a server that answers before the
        client finished sending makes most clients see a reset connection instead of the 413. A body
        read earlier under a larger limit is checked against this one.
        """
        if self._body is None:
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.request.stream():
                size += len(chunk)
                if size <= limit:
                    chunks.append(chunk)
                elif size > _DRAIN_CEILING:
                    break
            if size > limit:
                self._body = b""
                raise _too_large(operation, limit)
            self._body = b"".join(chunks)
        if len(self._body) > limit:
            raise _too_large(operation, limit)
        return self._body

    async def form(self) -> dict[str, str]:
        """The query protocols' parameters: the query string's and a form-encoded body's (the body wins;
        of a repeated name, the last)."""
        if self._form is None:
            form = {key: values[-1] for key, values in self.query.items()}
            if self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                body = await self.body("", FORM_BODY_LIMIT)
                form.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            self._form = form
        return self._form

    def peek_form(self) -> dict[str, str]:
        """The form as ``form()`` read it (empty before)."""
        return self._form or {}


def _too_large(operation: str, limit: int) -> RequestTooLargeException:
    where = f" for the {operation} operation" if operation else ""
    return RequestTooLargeException(f"Request must be smaller than {limit} bytes{where}")


@dataclass(frozen=True)
class Found:
    """The operation a request names, and what its protocol learnt finding it (rest-json's URI labels)."""

    operation: OperationModel
    uri_params: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    """Status, headers and body of an answer (``stream``: an event stream's encoded messages, sent as
    they come; the body is then empty)."""

    status: int
    headers: dict[str, str]
    body: bytes
    stream: AsyncIterable[bytes] | None = None


class WireProtocol(Protocol):
    """How one AWS protocol reads requests and writes answers, driven by botocore's shapes."""

    async def find(self, api: ServiceApi, incoming: Incoming) -> Found | None:
        """The operation of ``api`` the request names; None if it names none of them."""

    def unknown(self, api: ServiceApi, incoming: Incoming) -> LambdaError:
        """The error AWS answers a request this service has no operation for."""

    async def body(self, api: ServiceApi, incoming: Incoming) -> bytes:
        """The request's body, read within the limit this protocol sets for the request (authentication
        reads it to check the payload's hash, before ``find``)."""

    async def parse(self, api: ServiceApi, found: Found, incoming: Incoming) -> dict[str, Any]:
        """The operation's input parameters."""

    def serialize(self, api: ServiceApi, found: Found, output: Mapping[str, Any], request_id: str) -> Answer:
        """An operation's result (its output shape's members) as an answer."""

    def error(self, api: ServiceApi | None, error: LambdaError, request_id: str) -> Answer:
        """An error as this protocol writes it."""
