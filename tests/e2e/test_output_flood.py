"""A function that floods its output cannot exhaust lambdad (issue 10, finding 3).

A 512 MB function writes up to 1 GB (as lines, and as one line with no newline), bounded in time. What
lambdad holds stays bounded (its RSS, read from /proc), the log group stays under its size bound, the
Tail is the last 4 KB, no log event passes AWS's 256 KB, what the budget dropped is said once per
invocation, and a victim function's warm p99 stays within 2x of idle meanwhile.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.attack_support import Victim, assert_unaffected
from tests.e2e.invoke_support import deploy_python, invoke, log_group_dir, log_messages, start_server, unique
from tests.support import Server

MB = 1024 * 1024
RATE = MB  # the default budget: 1 MB/s
BURST = 4 * MB
GROUP_MAX = 8 * MB
MAX_EVENT = 256 * 1024
FLOOD_BYTES = 1024 * MB
FLOOD_SECONDS = 8

# Writes straight to fd 1 in 1 MB blocks until it has written `bytes` or `seconds` have passed.
FLOOD = """
import os, time

def handler(event, context):
    line = b"x" * 1023 + b"\\n" if event["newlines"] else b"y" * 1024
    block = line * 1024
    deadline = time.monotonic() + event["seconds"]
    written = 0
    while written < event["bytes"] and time.monotonic() < deadline:
        written += os.write(1, block)
    return {"written": written}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "LAMBDAD_LOG_RATE_LIMIT": str(RATE),
        "LAMBDAD_LOG_BURST": str(BURST),
        "LAMBDAD_LOG_GROUP_MAX_BYTES": str(GROUP_MAX),
    }
    running = start_server(tmp_path_factory.mktemp("lambdad"), env=env)
    yield running
    running.stop(timeout=60)


def memory_kb(server: Server) -> dict[str, int]:
    """The server process's VmRSS and VmHWM (peak), in kB."""
    assert server.process is not None
    fields = {}
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def group_bytes(server: Server, name: str) -> int:
    return sum(path.stat().st_size for path in log_group_dir(server, name).iterdir())


def test_a_flood_of_output_is_bounded_in_memory_log_and_tail_and_spares_other_functions(
    server: Server, record_property: Any
) -> None:
    client = server.client(read_timeout=120)
    # One function per kind of flood: the budget is per function, and the newline-less one must get
    # some of it to show how a long line is split.
    names = {True: unique("flood"), False: unique("flood-no-newlines")}
    for name in names.values():
        deploy_python(client, name, FLOOD, MemorySize=512, Timeout=60)
    victim = Victim(server)
    victim.baseline()
    before = memory_kb(server)

    answers = []
    with victim.measuring() as samples:
        for newlines in (True, False):
            event = {"newlines": newlines, "bytes": FLOOD_BYTES, "seconds": FLOOD_SECONDS}
            response, payload = invoke(client, names[newlines], event, LogType="Tail")
            assert "FunctionError" not in response, payload
            answers.append((response, payload))
    after = memory_kb(server)
    written = sum(payload["written"] for _, payload in answers)
    growth_mb = (after["VmHWM"] - before["VmRSS"]) / 1024
    record_property("summary_flood", f"{written / MB:.0f} MB printed; lambdad peak RSS +{growth_mb:.0f} MB")
    assert written > 64 * MB, "the flood was too small to show anything"
    # Main held every line of the invocation (and a newline-less line whole): GBs. Now: chunks and a tail.
    assert growth_mb < 64, f"lambdad's peak RSS grew by {growth_mb:.0f} MB"

    for response, _ in answers:
        tail = base64.b64decode(response["LogResult"])
        assert len(tail) <= 4096
        text = tail.decode(errors="replace")
        assert text.rstrip("\n").splitlines()[-1].startswith("REPORT RequestId: ")
        dropped = [line for line in text.splitlines() if line.startswith("lambdad: ")]
        assert len(dropped) == 1 and "bytes of output were dropped" in dropped[0], text

    # Within the group's bound (give or take what one flush writes before retention looks).
    kept = max(group_bytes(server, name) for name in names.values())
    messages = [message for name in names.values() for message in log_messages(server, name)]
    largest = max(len(message.encode()) for message in messages)
    figures = f"largest log group {kept / MB:.1f} MB (bound {GROUP_MAX // MB} MB), largest event {largest} B"
    record_property("summary_flood_log", figures)
    assert kept <= GROUP_MAX + MB
    assert largest <= MAX_EVENT
    assert any(len(message.encode()) > 200 * 1024 for message in messages), "no split newline-less event"

    assert_unaffected(victim, samples, record_property)
