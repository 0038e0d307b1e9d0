"""AWS's event-stream framing (``application/vnd.amazon.eventstream``), the encoding side.

One message: a prelude (total length, headers length, both big-endian uint32, then the prelude's CRC32),
the headers, the payload, and the CRC32 of everything before it. A header is a one-byte name length, the
name, a type byte (7: string), a two-byte value length and the value. botocore's ``eventstream`` module
is the decoder this matches.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7


def encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message."""
    raw_headers = encode_headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack("!I", zlib.crc32(message))


def event(event_type: str, payload: bytes, content_type: str) -> bytes:
    """An event message (``:message-type`` event) of ``event_type``."""
    return encode_message(
        {":event-type": event_type, ":content-type": content_type, ":message-type": "event"}, payload
    )


def payload_chunk(chunk: bytes) -> bytes:
    """InvokeWithResponseStream's ``PayloadChunk`` event: the bytes as its payload."""
    return event("PayloadChunk", chunk, "application/octet-stream")


def invoke_complete(error_code: str | None, error_details: str | None, log_result: str | None) -> bytes:
    """InvokeWithResponseStream's closing ``InvokeComplete`` event (members absent when None)."""
    members: dict[str, Any] = {
        "ErrorCode": error_code,
        "ErrorDetails": error_details,
        "LogResult": log_result,
    }
    body = json.dumps({k: v for k, v in members.items() if v is not None}).encode()
    return event("InvokeComplete", body, "application/json")
