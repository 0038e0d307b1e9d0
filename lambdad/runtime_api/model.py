"""What passes between an execution environment's owner and its runtime: invocations in, results out."""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

# AWS's synchronous payload limit: 6 MiB plus 100 bytes, as the Runtime Interface Emulator enforces it and as
# AWS's "Function.ResponseSizeTooLarge" message quotes it.
MAX_PAYLOAD_SIZE = 6 * 1024 * 1024 + 100
OVERSIZED_RESPONSE_ERROR_TYPE = "Function.ResponseSizeTooLarge"


@dataclass(frozen=True, slots=True)
class Invocation:
    """One event for the runtime, rendered by ``GET /runtime/invocation/next``."""

    request_id: str
    payload: bytes
    deadline_ms: int  # Unix epoch milliseconds
    invoked_function_arn: str
    trace_id: str | None = None
    client_context: str | None = None  # JSON text, as AWS passes it through
    cognito_identity: str | None = None  # JSON text
    content_type: str = "application/json"


class ResultKind(enum.StrEnum):
    SUCCESS = "success"
    FUNCTION_ERROR = "function_error"
    INIT_ERROR = "init_error"


class ResponseStream:
    """The chunks of a streamed response (``Lambda-Runtime-Function-Response-Mode: streaming``), in order.

    Iterate it to receive the chunks as the runtime sends them. When the iteration ends, ``error_type`` and
    ``error_body`` hold the ``Lambda-Runtime-Function-Error-Type``/``-Body`` trailers if the function failed
    mid-stream (the body trailer is base64 on the wire; here it is decoded), and ``truncated`` tells whether
    the runtime's connection ended before the stream was complete.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.error_type: str | None = None
        self.error_body: bytes | None = None
        self.truncated = False
        self._done = False

    def feed(self, chunk: bytes) -> None:
        if chunk and not self._done:
            self._queue.put_nowait(chunk)

    def finish(
        self, error_type: str | None = None, error_body: bytes | None = None, *, truncated: bool = False
    ) -> None:
        if self._done:
            return
        self._done = True
        self.error_type, self.error_body, self.truncated = error_type, error_body, truncated
        self._queue.put_nowait(None)

    @property
    def done(self) -> bool:
        return self._done

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def next(self) -> bytes | None:
        """The next chunk, or None once the stream has ended (safe to cancel: nothing is lost)."""
        chunk = await self._queue.get()
        if chunk is None:
            self._queue.put_nowait(None)  # later readers see the end too
        return chunk

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk

    async def read_all(self) -> bytes:
        return b"".join([chunk async for chunk in self])


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """How one invocation (or the init phase) ended, as the runtime reported it.

    ``payload`` is the response body (SUCCESS) or the error document the runtime posted (errors: usually
    ``{"errorMessage", "errorType", "stackTrace"}``). ``error_type`` is the
    ``Lambda-Runtime-Function-Error-Type`` header. For a streamed response ``stream`` carries the chunks
    and ``payload`` is empty.
    """

    kind: ResultKind
    payload: bytes = b""
    error_type: str | None = None
    content_type: str | None = None
    stream: ResponseStream | None = None

    @property
    def is_error(self) -> bool:
        return self.kind is not ResultKind.SUCCESS


def oversized_response_result(size: int) -> InvocationResult:
    """The function error AWS reports when a buffered response exceeds the payload limit (AWS's message
    names the limit, not the size)."""
    message = f"Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD_SIZE} bytes)."
    body = json.dumps({"errorMessage": message, "errorType": OVERSIZED_RESPONSE_ERROR_TYPE}).encode()
    return InvocationResult(
        ResultKind.FUNCTION_ERROR, body, OVERSIZED_RESPONSE_ERROR_TYPE, content_type="application/json"
    )


class ApiError(Exception):
    """A refusal the Runtime API answers with: HTTP status plus AWS's ``{errorType, errorMessage}`` body."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status, self.error_type, self.message = status, error_type, message

    def body(self) -> bytes:
        return json.dumps({"errorMessage": self.message, "errorType": self.error_type}).encode()


def invalid_request_id() -> ApiError:
    return ApiError(400, "InvalidRequestID", "Invalid request ID")


def payload_too_large() -> ApiError:
    return ApiError(
        413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({MAX_PAYLOAD_SIZE} bytes)."
    )


class ChannelClosed(Exception):
    """The environment's channel was closed (runtime gone or environment torn down) while something waited."""


class ChannelBusy(Exception):
    """An invocation was put while another one is still outstanding: an environment runs one at a time."""
