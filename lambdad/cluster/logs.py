"""Function logs for the whole cluster: every node keeps what its environments write on its own disk and
ships each flushed batch to a JetStream stream, from which any node reads a log group whole.

One message per flushed batch (the end of each invocation, or 64 KB of output), on the subject
``<cluster>.logs.<group as hex>``, with the stream's name and the node in headers; the stream keeps
LOG_RETENTION of history up to LOG_BYTES, oldest dropped first. Shipping never blocks or fails an
invocation: batches wait in a bounded queue while NATS is away and past that are counted and dropped (the
node's own disk still has them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from datetime import UTC, datetime

from nats.js.api import ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from lambdad.cluster.connection import ClusterConnection
from lambdad.observability.logs import LogEvent, parse_event

log = logging.getLogger(__name__)

LOG_RETENTION = 7 * 24 * 3600.0
LOG_BYTES = 8 * 1024**3
QUEUE_BYTES = 16 * 1024 * 1024  # batches waiting for NATS before new ones are dropped


class JetStreamLogs:
    """The cluster's ``LogShipper``, and the reader of every node's logs."""

    def __init__(self, connection: ClusterConnection) -> None:
        self._connection = connection
        self._stream = connection.bucket("logs")
        self._queue: deque[tuple[str, str, bytes]] = deque()
        self._queued = 0
        self.dropped_batches = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None

    def subject(self, group: str) -> str:
        return self._connection.subject("logs", group.encode().hex())

    async def start(self) -> None:
        """Make the stream if it is new, then publish what environments flush."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        config = StreamConfig(
            name=self._stream,
            subjects=[self._connection.subject("logs", ">")],
            max_age=LOG_RETENTION,
            max_bytes=LOG_BYTES,
            storage=StorageType.FILE,
        )
        try:
            await self._connection.jetstream.stream_info(self._stream)
        except NotFoundError:
            await self._connection.jetstream.add_stream(config)
        self._task = asyncio.create_task(self._publish(), name="cluster log shipping")

    def ship(self, group: str, stream: str, lines: bytes) -> None:
        if self._loop is None:
            return
        if threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self.ship, group, stream, lines)
            return
        if self._queued + len(lines) > QUEUE_BYTES:
            self.dropped_batches += 1
            if self.dropped_batches == 1 or self.dropped_batches % 1000 == 0:
                log.warning(
                    "NATS is not taking logs: %d batch(es) kept on this node only", self.dropped_batches
                )
            return
        self._queue.append((group, stream, lines))
        self._queued += len(lines)
        self._wake.set()

    async def _publish(self) -> None:
        node = self._connection.node_id
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                group, stream, lines = self._queue[0]
                try:
                    await self._connection.jetstream.publish(
                        self.subject(group), lines, headers={"Lambdad-Stream": stream, "Lambdad-Node": node}
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # NATS away: try again shortly, the queue bounds what waits
                    log.debug("log batch not shipped yet: %s", error)
                    await asyncio.sleep(0.5)
                    continue
                self._queue.popleft()
                self._queued -= len(lines)

    async def events(self, group: str, since_ms: int = 0, limit: int = 10_000) -> list[LogEvent]:
        """A group's events from every node, in time order (at most ``limit``, the oldest first)."""
        start = datetime.fromtimestamp(since_ms / 1000, UTC) if since_ms else None
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME if start else DeliverPolicy.ALL,
            opt_start_time=start,
        )
        subscription = await self._connection.jetstream.subscribe(
            self.subject(group), ordered_consumer=True, config=config, stream=self._stream
        )
        found: list[LogEvent] = []
        try:
            while len(found) < limit:
                try:
                    message = await subscription.next_msg(timeout=0.5)
                except TimeoutError:
                    break  # nothing (more) for this group
                stream = (message.headers or {}).get("Lambdad-Stream", "")
                for line in message.data.decode("utf-8", errors="replace").splitlines():
                    event = parse_event(line, stream)
                    if event is not None and event.timestamp_ms >= since_ms:
                        found.append(event)
                if message.metadata.num_pending == 0:
                    break
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        return sorted(found, key=lambda event: event.timestamp_ms)[:limit]

    async def close(self) -> None:
        if self._task is not None:
            # What is still queued gets a moment to leave.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    while self._queue and self._connection.connected:
                        await asyncio.sleep(0.05)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
