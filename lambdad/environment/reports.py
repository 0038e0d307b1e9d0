"""The log lines AWS writes around each invocation (START, END, REPORT) and its failure messages."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
) -> str:
    """``REPORT RequestId: ID\\tDuration: 1.23 ms\\tBilled Duration: 2 ms\\t...``, tab-separated and
    tab-terminated as AWS writes it."""
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed_ms(duration_ms)} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status is not None:
        fields.append(f"Status: {status}")
    return "\t".join(fields) + "\t"


def billed_ms(duration_ms: float) -> int:
    """AWS bills each invocation in whole milliseconds, rounded up, at least 1."""
    return max(1, math.ceil(duration_ms))


def timeout_error(request_id: str, timeout_s: float) -> bytes:
    """The payload AWS answers when a function runs out of time."""
    return json.dumps(
        {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
        }
    ).encode()


def timeout_log_line(request_id: str, timeout_s: float) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{now} {request_id} Task timed out after {timeout_s:.2f} seconds"


def exit_error(request_id: str, exit_description: str) -> bytes:
    """The payload AWS answers when the runtime process dies mid-invocation."""
    return json.dumps(
        {"errorType": "Runtime.ExitError", "errorMessage": exit_message(request_id, exit_description)}
    ).encode()


def exit_message(request_id: str, exit_description: str) -> str:
    """AWS's words for a runtime that ended mid-invocation; a clean exit gives no reason."""
    if exit_description == "exit status 0":
        return f"RequestId: {request_id} Error: Runtime exited without providing a reason"
    return f"RequestId: {request_id} Error: Runtime exited with error: {exit_description}"


def describe_exit(status: int) -> str:
    """Go's wording for a process's end, as AWS quotes it: "exit status 1", "signal: killed"."""
    if status >= 0:
        return f"exit status {status}"
    names = {9: "killed", 15: "terminated", 6: "aborted", 11: "segmentation fault", 7: "bus error"}
    return f"signal: {names.get(-status, str(-status))}"
