"""What a finished Event invocation sends: AWS's invocation record (destinations) and its dead-letter
message (the function's DeadLetterConfig).

The record, as AWS sends it (recorded in tests/aws-recordings/lambda/test_lambda_destinations)::

    {"version": "1.0", "timestamp": "2019-11-14T18:16:05.568Z",
     "requestContext": {"requestId": ..., "functionArn": "...:function:NAME:$LATEST",
                        "condition": "Success" | "RetriesExhausted" | "EventAgeExceeded" | ...,
                        "approximateInvokeCount": 1},
     "requestPayload": {...},
     "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
     "responsePayload": {...}}

``responseContext`` and ``responsePayload`` are there only when the function ran (not for
ZeroReservedConcurrency). A dead-letter message is the original event with the attributes RequestID,
ErrorCode (the last attempt's HTTP status: 200 for a function error; a number, DataType ``Number`` on SQS as
AWS sends it) and ErrorMessage (its first 1 KB).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from lambdad.events.sources.base import NumberAttribute

ERROR_MESSAGE_MAX = 1024


def function_response(payload: bytes, function_error: str | None, executed_version: str) -> dict[str, Any]:
    """What is kept of an attempt where the function ran (``async_events.response``)."""
    response: dict[str, Any] = {
        "statusCode": 200,
        "executedVersion": executed_version,
        "payload": payload.decode(errors="replace"),
    }
    if function_error:
        response["functionError"] = function_error
    return response


def service_error(status: int, code: str, message: str) -> dict[str, Any]:
    """What is kept of an attempt that did not reach the function (throttle, system error)."""
    return {"statusCode": status, "errorCode": code, "errorMessage": message}


def _json(text: str | bytes) -> Any:
    """A payload as a JSON value; text that is not JSON stays a string."""
    try:
        return json.loads(text or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return text.decode(errors="replace") if isinstance(text, bytes) else text


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    attempts: int,
    request_payload: bytes,
    response: dict[str, Any] | None,
    moment: datetime | None = None,
) -> dict[str, Any]:
    """AWS's invocation record for a destination."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": _json(request_payload),
    }
    if response is not None and "payload" in response:
        context: dict[str, Any] = {
            "statusCode": response["statusCode"],
            "executedVersion": response["executedVersion"],
        }
        if response.get("functionError"):
            context["functionError"] = response["functionError"]
        record["responseContext"] = context
        record["responsePayload"] = _json(response["payload"])
    return record


def dead_letter_attributes(
    request_id: str, condition: str, response: dict[str, Any] | None
) -> dict[str, str]:
    """The attributes of a dead-letter message: RequestID, ErrorCode, ErrorMessage."""
    if response is None:
        status, message = 429, condition
    elif "payload" in response:
        status, message = int(response["statusCode"]), _error_message(response["payload"])
    else:
        status, message = int(response["statusCode"]), str(response.get("errorMessage", ""))
    return {
        "RequestID": request_id,
        "ErrorCode": NumberAttribute(status),
        "ErrorMessage": message.encode()[:ERROR_MESSAGE_MAX].decode(errors="ignore"),
    }


def _error_message(payload: str) -> str:
    document = _json(payload)
    if isinstance(document, dict) and isinstance(document.get("errorMessage"), str):
        return str(document["errorMessage"])
    return payload
