"""Event invocations: how fast the durable queue accepts and runs them.

- Submits per second into the store (SQLite, in-process): 16 concurrent submitters through the group
  commit (one transaction and one multi-row INSERT per batch, no waiting window) against one commit
  per submit; and the same with a 2 ms collecting window, to show the window only costs.
- Event invocations per second end to end through a real server and a no-op function (4 clients sending
  ``InvocationType: Event`` until every event has run and left the queue), against synchronous invokes
  of the same function by 4 clients, measured in the same run.
"""

from __future__ import annotations

import asyncio
import http.client
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.common import HELLO_HANDLER, INVOKE_PATH, PAYLOAD, Endpoint, Progress, Row, drive, lambdad_server
from lambdad.events.group_commit import GroupCommitter
from lambdad.store import Database
from lambdad.store import async_events as store
from lambdad.store.async_events import NewEvent
from tests.support import create_function, make_zip

SUBMITS = 5000
SUBMITTERS = 16
EVENTS = 2000
CLIENTS = 4


def _submits_per_second(concurrency: int, window: float, grouped: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="lambdad-bench-async-") as directory:
        database = Database(f"sqlite:///{Path(directory) / 'db.sqlite'}")
        database.migrate()

        async def main() -> float:
            committer = GroupCommitter(database, window=window)
            gate = asyncio.Semaphore(concurrency)

            async def submit(index: int) -> None:
                event = NewEvent(
                    str(uuid.uuid4()), "000000000000", "us-east-1", "f", None, b'{"i": %d}' % index
                )
                async with gate:
                    if grouped:
                        await committer.add(store.insert_many, event)
                    else:
                        await committer.write(lambda connection: store.insert(connection, event))

            started = time.perf_counter()
            await asyncio.gather(*(submit(i) for i in range(SUBMITS)))
            elapsed = time.perf_counter() - started
            await committer.close()
            return SUBMITS / elapsed

        try:
            return asyncio.run(main())
        finally:
            database.dispose()


def _send_events(port: int, count: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "X-Amz-Invocation-Type": "Event"}
    try:
        for _ in range(count):
            connection.request("POST", INVOKE_PATH.format(name="hello"), body=PAYLOAD, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                raise RuntimeError(f"an Event invoke answered {response.status}")
    finally:
        connection.close()


def _queued(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "lambdad.db", timeout=10) as connection:
        return int(connection.execute("SELECT count(*) FROM async_events").fetchone()[0])


def _events_per_second(port: int, data_dir: Path) -> float:
    started = time.perf_counter()
    threads = [threading.Thread(target=_send_events, args=(port, EVENTS // CLIENTS)) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 300
    while _queued(data_dir):
        if time.monotonic() > deadline:
            raise TimeoutError("Event invocations did not drain")
        time.sleep(0.02)
    return EVENTS / (time.perf_counter() - started)


def run(progress: Progress) -> list[Row]:
    progress("Event queue: submits into the store...")
    grouped = _submits_per_second(SUBMITTERS, 0.0, grouped=True)
    windowed = _submits_per_second(SUBMITTERS, 0.002, grouped=True)
    single = _submits_per_second(1, 0.0, grouped=False)
    rows = [
        Row(
            "Event submits, group commit", "a commit per submit", "/s", grouped, single, higher_is_better=True
        ),
        Row("Event submits, 2 ms window", "no window", "/s", windowed, grouped, higher_is_better=True),
    ]
    with lambdad_server() as server:
        client = server.client()
        create_function(client, "hello", Code={"ZipFile": make_zip({"handler.py": HELLO_HANDLER})})
        assert server.process is not None
        endpoint = Endpoint(server.port, INVOKE_PATH.format(name="hello"), server.process.pid)
        progress("Event queue: warming up...")
        drive([endpoint] * CLIENTS, 50)
        progress("Event queue: Event invocations end to end...")
        events = _events_per_second(server.port, server.data_dir)
        progress("Event queue: synchronous invokes...")
        sync = drive([endpoint] * CLIENTS, EVENTS // CLIENTS).throughput
    rows.append(Row("Event invocations run", "sync invokes", "/s", events, sync, higher_is_better=True))
    return rows
