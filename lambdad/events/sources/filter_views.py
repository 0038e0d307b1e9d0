"""What FilterCriteria see of a message's payload, for every source: AWS matches patterns against a
body or ``data`` decoded as JSON where it is JSON, and against the plain text where it is not."""

from __future__ import annotations

import json
from typing import Any


def json_or_text(payload: bytes | str) -> Any:
    """``payload`` parsed as JSON where it is JSON, else as text (bytes that are not UTF-8 decoded with
    replacement characters)."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):  # a message nested past the parser's depth is text to filters
        return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else payload
