"""Invoke and the legacy InvokeAsync."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Any

from lambdad.api.eventstream import invoke_complete, payload_chunk
from lambdad.api.operations import Call, OperationTable
from lambdad.errors import InvalidRequestContentException, RequestTooLargeException
from lambdad.invocation import InvokeRequest
from lambdad.invocation.invoker import check_json

table = OperationTable()

SYNC_PAYLOAD_MAX = 6_291_456  # 6 MB each way
ASYNC_PAYLOAD_MAX = 1_048_576  # 1 MB for Event invocations


@table.operation("Invoke")
async def invoke(call: Call) -> dict[str, Any]:
    params = call.params
    invocation_type = params.get("InvocationType", "RequestResponse")
    request = InvokeRequest(
        scope=call.scope,
        function_name=params["FunctionName"],
        qualifier=params.get("Qualifier"),
        payload=params.get("Payload") or b"",
        request_id=call.request_id,
        client_context=_client_context(params.get("ClientContext")),
    )
    invoker = call.services.invoker
    if invocation_type == "DryRun":
        await invoker.find(call.scope, request.function_name, request.qualifier)
        return {"StatusCode": 204}
    if invocation_type == "Event":
        _check_size(request.payload, ASYNC_PAYLOAD_MAX)
        check_json(request.payload or b"{}")
        await invoker.find(call.scope, request.function_name, request.qualifier)
        await call.services.events.submit(request)
        return {"StatusCode": 202}
    _check_size(request.payload, SYNC_PAYLOAD_MAX)
    result = await invoker.invoke(request)
    answer: dict[str, Any] = {
        "StatusCode": 200,
        "Payload": result.payload,
        "ExecutedVersion": result.executed_version,
        "FunctionError": result.function_error,
    }
    if params.get("LogType") == "Tail":
        answer["LogResult"] = base64.b64encode(result.outcome.log_tail.encode()).decode()
    return answer


@table.operation("InvokeWithResponseStream")
async def invoke_with_response_stream(call: Call) -> dict[str, Any]:
    """The response as an event stream: a PayloadChunk per chunk the function sends (one for a buffered
    response), then InvokeComplete with the error (if any) and the log tail (LogType Tail).

    Sent as the function produces it; AWS's limit on a streamed response is 200 MB (see environment)."""
    params = call.params
    request = InvokeRequest(
        scope=call.scope,
        function_name=params["FunctionName"],
        qualifier=params.get("Qualifier"),
        payload=params.get("Payload") or b"",
        request_id=call.request_id,
        client_context=_client_context(params.get("ClientContext")),
    )
    invoker = call.services.invoker
    if params.get("InvocationType") == "DryRun":
        await invoker.find(call.scope, request.function_name, request.qualifier)
        return {"StatusCode": 204}
    _check_size(request.payload, SYNC_PAYLOAD_MAX)
    result = await invoker.invoke_streaming(request)
    tail = params.get("LogType") == "Tail"

    async def events() -> AsyncIterator[bytes]:
        async for chunk in result.stream:
            yield payload_chunk(chunk)
        outcome = result.stream.outcome
        if outcome is None:
            yield invoke_complete("ServiceException", "lambdad failed to run the invocation", None)
            return
        code = details = None
        if outcome.function_error:
            code = outcome.error_type or "Unhandled"
            details = _error_details(outcome.payload)
        log_result = base64.b64encode(outcome.log_tail.encode()).decode() if tail else None
        yield invoke_complete(code, details, log_result)

    return {"StatusCode": 200, "ExecutedVersion": result.executed_version, "EventStream": events()}


def _error_details(payload: bytes) -> str:
    """An error document's message (the document itself if it has none)."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):  # the function's own bytes: anything goes
        return payload.decode(errors="replace")
    if isinstance(document, dict) and isinstance(document.get("errorMessage"), str):
        return str(document["errorMessage"])
    return payload.decode(errors="replace")


@table.operation("InvokeAsync")
async def invoke_async(call: Call) -> dict[str, Any]:
    payload = call.params.get("InvokeArgs") or b"{}"
    _check_size(payload, ASYNC_PAYLOAD_MAX)
    check_json(payload)
    request = InvokeRequest(call.scope, call.params["FunctionName"], None, payload, call.request_id)
    await call.services.invoker.find(call.scope, request.function_name, None)
    await call.services.events.submit(request)
    return {"Status": 202}


def _check_size(payload: bytes, limit: int) -> None:
    if len(payload) > limit:
        raise RequestTooLargeException(
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
        )


def _client_context(header: str | None) -> str | None:
    """The runtime receives the client context as JSON text; the caller sends it base64-encoded."""
    if not header:
        return None
    try:
        text = base64.b64decode(header, validate=True).decode()
        json.loads(text)
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise InvalidRequestContentException(
            "Client context must be a valid Base64-encoded JSON object."
        ) from error
    return text
