"""This node's connection to NATS, and the names of everything the cluster keeps there.

Every stream, key-value bucket and subject starts with the cluster's name, so that several clusters (and
tests) share one NATS server without meeting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

ConnectionListener = Callable[[bool], Awaitable[None] | None]  # called with True on (re)connect


class ClusterConnection:
    """One NATS client per node, shared by every cluster part; says when it drops and comes back."""

    def __init__(self, url: str, cluster_name: str, node_id: str) -> None:
        self.url = url
        self.cluster_name = cluster_name
        self.node_id = node_id
        self._client: Client | None = None
        self._listeners: list[ConnectionListener] = []
        # Monotonic time the connection was lost, None while connected: a node that cannot hear the
        # cluster must not conclude that the others died.
        self.lost_at: float | None = None
        self._closing = False

    # Names ------------------------------------------------------------------------------------------------

    def subject(self, *parts: str) -> str:
        return ".".join((self.cluster_name, *parts))

    def bucket(self, name: str) -> str:
        return f"{self.cluster_name}_{name}"

    # Connection -------------------------------------------------------------------------------------------

    async def connect(self, *, connect_timeout: float = 2.0) -> None:
        """Connect (once; raises if NATS does not answer), then reconnect forever after a drop."""

        async def disconnected() -> None:
            if self.lost_at is None and not self._closing:
                self.lost_at = time.monotonic()
                log.warning("lost NATS at %s; reconnecting", self.url)
                await self._tell(False)

        async def reconnected() -> None:
            self.lost_at = None
            log.info("NATS is back at %s", self.url)
            await self._tell(True)

        async def error(exc: Exception) -> None:
            log.debug("NATS: %s", exc)

        self._client = await nats.connect(
            self.url,
            name=f"lambdad {self.cluster_name}/{self.node_id}",
            connect_timeout=connect_timeout,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
        )

    @property
    def client(self) -> Client:
        assert self._client is not None, "connect() first"
        return self._client

    @property
    def jetstream(self) -> JetStreamContext:
        return self.client.jetstream(timeout=5.0)

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    def on_connection(self, listener: ConnectionListener) -> None:
        """Call ``listener(False)`` when NATS is lost and ``listener(True)`` when it is back."""
        self._listeners.append(listener)

    async def _tell(self, up: bool) -> None:
        for listener in self._listeners:
            try:
                result = listener(up)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("a NATS connection listener failed")

    async def key_value(self, name: str, *, ttl: float | None = None, history: int = 1) -> KeyValue:
        """The cluster's bucket ``name``, made on first use (file storage: it outlives a NATS restart)."""
        bucket = self.bucket(name)
        try:
            return await self.jetstream.key_value(bucket)
        except BucketNotFoundError:
            return await self.jetstream.create_key_value(
                KeyValueConfig(bucket=bucket, history=history, ttl=ttl, storage=StorageType.FILE)
            )

    async def close(self) -> None:
        self._closing = True
        if self._client is not None and not self._client.is_closed:
            try:
                await self._client.drain()
            except Exception:  # already gone: nothing to flush
                await self._client.close()
