"""A function attacks its own Runtime API (127.0.0.1:9001 in its sandbox, served by lambdad): a 200 MB
request line and thousands of connections. lambdad reads about 1 MB of the head and answers 431, holds
at most its per-environment connection cap (the rest answered 503), keeps its memory and descriptors
bounded, and other functions' latency stays within 2x of idle; the attacker's next invocations work."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lambdad.runtime_api import Limits
from tests.e2e.attack_support import Victim, assert_unaffected
from tests.e2e.invoke_support import deploy_python, invoke, server_fixture, unique
from tests.support import Server

server = server_fixture()

ATTACKER = """
import os, socket

HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
HELD = []


def connect():
    return socket.create_connection((HOST, int(PORT)), timeout=10)


def head(size):
    sock = connect()
    sent = 0
    chunk = b"a" * 65536
    try:
        sock.sendall(b"GET /2018-06-01/runtime/")
        while sent < size:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    try:
        answer = sock.recv(200)
    except OSError as error:
        answer = repr(error).encode()
    sock.close()
    return {"sent": sent, "answer": answer[:12].decode("latin-1")}


def connections(count):
    opened, failed = [], 0
    for _ in range(count):
        try:
            opened.append(connect())
        except OSError:
            failed += 1
    refused = 0
    for sock in opened:
        sock.settimeout(0.5)
        try:
            if sock.recv(12).startswith(b"HTTP/1.1 503"):
                refused += 1
        except OSError:
            pass
    HELD.extend(opened)  # kept open after the handler returns, as a hostile function would
    return {"opened": len(opened), "failed": failed, "refused": refused}


def handler(event, context):
    if event.get("release"):
        for sock in HELD:
            sock.close()
        HELD.clear()
    if "head" in event:
        return head(event["head"])
    if "connections" in event:
        return connections(event["connections"])
    return {"ok": True}
"""

MB = 1 << 20


def rss_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def call(client: Any, name: str, event: dict[str, Any]) -> Any:
    response, payload = invoke(client, name, event)
    assert response["StatusCode"] == 200 and "FunctionError" not in response, (response, payload)
    return payload


def test_a_function_flooding_its_runtime_api_is_bounded_and_others_are_unaffected(
    server: Server, record_property: Any
) -> None:
    assert server.process is not None
    pid = server.process.pid
    client = server.client(read_timeout=120)
    attacker = unique("attacker")
    deploy_python(client, attacker, ATTACKER, MemorySize=1769, Timeout=120)
    call(client, attacker, {})
    victim = Victim(server)
    victim.baseline()
    peak_before, fds_before = rss_peak_kb(pid), fds(pid)
    cap = Limits().max_connections
    with victim.measuring() as samples:
        line = call(client, attacker, {"head": 200 * MB})
        flood = call(client, attacker, {"connections": 3000})
        fds_during = fds(pid)
    assert_unaffected(victim, samples, record_property)
    grown_mb = (rss_peak_kb(pid) - peak_before) // 1024
    record_property("summary_head", f"{line}; lambdad peak RSS +{grown_mb} MB")
    record_property("summary_flood", f"{flood}; lambdad fds {fds_before} -> {fds_during}")
    # The 200 MB line: refused with 431 after about 1 MB (one read past the cap at most).
    assert line["answer"] == "HTTP/1.1 431", line
    assert line["sent"] < 16 * MB, line
    assert rss_peak_kb(pid) - peak_before < 64 * 1024, "lambdad's peak RSS grew by more than 64 MB"
    # The flood: all but the cap were answered 503 and closed; lambdad held about the cap.
    assert flood["opened"] + flood["failed"] == 3000
    assert flood["refused"] >= flood["opened"] - cap, flood
    assert fds_during - fds_before < cap + Limits().max_lingering + 64, (fds_before, fds_during)
    # The attacker still works (its runtime's own connection was never touched), and lets go.
    assert call(client, attacker, {"release": True}) == {"ok": True}
    assert call(client, attacker, {}) == {"ok": True}
