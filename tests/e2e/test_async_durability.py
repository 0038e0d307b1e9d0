"""Event invocations survive the server being killed: 10,000 events, the server SIGKILLed and restarted
three times while they are delivered, and every event runs at least once.

The function reports each event it handles to a collector in this test process (TCP on 127.0.0.1, the
function on the host network), which outlives every server kill. The collector answers each report, so
an event counts as processed only once the report has arrived.
"""

from __future__ import annotations

import json
import signal
import socketserver
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.e2e.invoke_support import cgroup_dirs, deploy_python, unique
from tests.support import Server

pytestmark = pytest.mark.e2e

EVENTS = 10_000
KILLS_AT = (1_500, 4_500, 7_500)  # distinct events processed when each kill happens
SUBMITTERS = 12

REPORTER = """
import os, socket

_connection = None


def handler(event, context):
    global _connection
    line = (event["id"] + "\\n").encode()
    for _ in range(5):
        try:
            if _connection is None:
                _connection = socket.create_connection(("127.0.0.1", int(os.environ["COLLECTOR_PORT"])), 5)
                _connection.settimeout(5)
            _connection.sendall(line)
            if _connection.recv(3) == b"ok\\n":
                return {"reported": event["id"]}
        except OSError:
            pass
        _connection = None
    raise RuntimeError("the collector did not answer")
"""


class Collector:
    """Counts the event ids functions report, answering ``ok`` to each."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        collector = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for raw in self.rfile:
                    with collector.lock:
                        collector.seen[raw.decode().strip()] += 1
                    self.wfile.write(b"ok\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def distinct(self) -> int:
        with self.lock:
            return len(self.seen)

    def __enter__(self) -> Collector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as running:
        yield running


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def remove_empty_cgroups(function_name: str) -> None:
    """The cgroup directories the killed servers' sandboxes of this function left behind."""
    for directory in cgroup_dirs(function_name):
        try:
            if not (directory / "cgroup.procs").read_text().strip():
                directory.rmdir()
        except OSError:
            pass


def queued_events(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "lambdad.db", timeout=10) as connection:
        return int(connection.execute("SELECT count(*) FROM async_events").fetchone()[0])


def test_ten_thousand_events_survive_three_sigkills(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch, record_property: Any
) -> None:
    monkeypatch.setenv("LAMBDAD_ASYNC_WORKERS", "16")
    # No spare sandboxes: a SIGKILLed server's sandboxes die with it, but their cgroup directories stay
    # behind, and only the function's own (named after it) can safely be removed by this test.
    monkeypatch.setenv("LAMBDAD_SPARES", "0")
    # The host network: the function reports to a collector on the host's loopback.
    server = Server(tmp_path / "data", extra_args=["--allow-host-network"]).start(timeout=60)
    name = unique("durable")
    try:
        client = server.client()
        deploy_python(
            client,
            name,
            REPORTER,
            Environment={"Variables": {"COLLECTOR_PORT": str(collector.port)}},
            Tags={"lambdad:network": "host"},
        )
        local = threading.local()

        def submit(index: int) -> None:
            """Invoke until the server answers 202 (a submit the kill cut off is not accepted)."""
            if not hasattr(local, "client"):
                local.client = server.client(connect_timeout=2, read_timeout=10)
            payload = json.dumps({"id": f"event-{index}"}).encode()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    answer = local.client.invoke(FunctionName=name, InvocationType="Event", Payload=payload)
                    assert answer["StatusCode"] == 202
                    return
                except (BotoCoreError, ClientError):
                    time.sleep(0.1)  # the server is down or restarting
            raise AssertionError(f"event-{index} was never accepted")

        started = time.monotonic()
        with ThreadPoolExecutor(SUBMITTERS) as pool:
            submitted = pool.map(submit, range(EVENTS))
            kills = []
            for threshold in KILLS_AT:
                wait_for(lambda t=threshold: collector.distinct() >= t, 120, f"{threshold} events processed")
                server.stop(signal.SIGKILL)
                kills.append(collector.distinct())
                server.start(timeout=60)
            list(submitted)
        submit_seconds = time.monotonic() - started
        wait_for(lambda: collector.distinct() >= EVENTS, 120, "every event processed")
        all_seconds = time.monotonic() - started
        wait_for(lambda: queued_events(server.data_dir) == 0, 30, "the queue to empty")
    finally:
        if server.process and server.process.poll() is None:
            server.stop(timeout=60)
        remove_empty_cgroups(name)

    ids = {f"event-{i}" for i in range(EVENTS)}
    with collector.lock:
        seen = Counter(collector.seen)
    missing = ids - set(seen)
    duplicates = sum(seen.values()) - len(seen)
    print(
        f"\n{EVENTS} events, kills after {kills} processed: all submitted in {submit_seconds:.1f} s, "
        f"all processed in {all_seconds:.1f} s; {duplicates} duplicate deliveries"
    )
    record_property("summary_duplicate_deliveries", duplicates)
    record_property("summary_seconds_for_all_events", round(all_seconds, 1))
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}"
    assert set(seen) == ids
    assert len(kills) == len(KILLS_AT)
