"""lambdad's event-stream encoder, read back by botocore's decoder (the one the SDK uses)."""

from __future__ import annotations

import json

from botocore.eventstream import EventStreamBuffer

from lambdad.api.eventstream import invoke_complete, payload_chunk


def test_botocore_decodes_payload_chunks_and_invoke_complete() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(payload_chunk(b"\x00binary\xff" * 1000))
    buffer.add_data(invoke_complete("Unhandled", "boom", None))
    chunk, complete = list(buffer)

    assert chunk.headers == {
        ":event-type": "PayloadChunk",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert chunk.payload == b"\x00binary\xff" * 1000
    assert complete.headers[":event-type"] == "InvokeComplete"
    assert complete.headers[":content-type"] == "application/json"
    assert json.loads(complete.payload) == {"ErrorCode": "Unhandled", "ErrorDetails": "boom"}
