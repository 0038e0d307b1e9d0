"""Who is in the cluster: each node puts a heartbeat in a NATS key-value bucket every second and
watches everyone else's.

A node is ``live`` while its heartbeats arrive, ``suspect`` once one is SUSPECT_AFTER seconds late, and
``dead`` after DEAD_AFTER seconds: then its concurrency leases stop counting and its work is taken over
(``docs/cluster.md`` gives the bounds). Ages are measured with this node's own clock from when a heartbeat
arrived, so clocks that disagree between machines do not matter, and they stop while this node itself is
cut off from NATS: a node that cannot hear the cluster must not conclude that everyone else died.
A node that stops cleanly removes its key and is gone at once; a dead node's key expires after
FORGET_AFTER seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from lambdad.cluster.connection import ClusterConnection

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 1.0
SUSPECT_AFTER = 3.0
DEAD_AFTER = 10.0
FORGET_AFTER = 120.0
BUCKET = "nodes"


class NodeState(StrEnum):
    LIVE = "live"
    SUSPECT = "suspect"
    DEAD = "dead"


@dataclass
class NodeLoad:
    """What a node is running, as its heartbeat reports it."""

    warm_environments: int = 0
    busy_environments: int = 0
    running_invocations: int = 0
    # Idle environments per function ARN (qualified for published versions): where a forwarded invoke
    # finds a warm environment.
    idle: dict[str, int] = field(default_factory=dict)


@dataclass
class Heartbeat:
    """One node's record in the bucket."""

    node_id: str
    url: str
    incarnation: str
    started_at: str
    sent_at: str
    capacity_provider: str
    load: NodeLoad
    owns: dict[str, list[str]]

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Heartbeat:
        raw = json.loads(data)
        raw["load"] = NodeLoad(**raw["load"])
        return cls(**raw)


@dataclass
class Node:
    """A node as this one sees it."""

    heartbeat: Heartbeat
    received: float  # monotonic time the last heartbeat arrived here
    state: NodeState = NodeState.LIVE

    @property
    def node_id(self) -> str:
        return self.heartbeat.node_id

    def describe(self) -> dict[str, Any]:
        """``GET /_lambdad/nodes``'s shape for this node."""
        load = self.heartbeat.load
        return {
            "NodeId": self.node_id,
            "Url": self.heartbeat.url,
            "State": self.state.value,
            "LastHeartbeat": self.heartbeat.sent_at,
            "StartedAt": self.heartbeat.started_at,
            "WarmEnvironments": load.warm_environments,
            "BusyEnvironments": load.busy_environments,
            "RunningInvocations": load.running_invocations,
            "CapacityProvider": self.heartbeat.capacity_provider or None,
            "Owns": self.heartbeat.owns,
        }


MembershipListener = Callable[[], None]


class NodeIdInUse(Exception):
    """Another live process already is this node."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Membership:
    """This node's heartbeat and its view of every node's."""

    def __init__(
        self,
        connection: ClusterConnection,
        url: str,
        capacity_provider: str = "",
        *,
        load: Callable[[], NodeLoad] = NodeLoad,
        owns: Callable[[], dict[str, list[str]]] = dict,
    ) -> None:
        self._connection = connection
        self.node_id = connection.node_id
        self._url = url
        self._capacity_provider = capacity_provider
        self._load = load
        self._owns = owns
        self.incarnation = secrets.token_hex(8)
        self._started_at = _now_iso()
        self._nodes: dict[str, Node] = {}
        self._listeners: list[MembershipListener] = []
        self._kv: KeyValue | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._beat_now = asyncio.Event()
        self._watcher: Any = None
        self._rewatching: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # The view -------------------------------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        """Every node known, with its state now, sorted by id."""
        if self._refresh_states() and self._loop is not None:
            # A state that changed here (a reader came first) is announced all the same.
            self._loop.call_soon_threadsafe(self._changed)
        return sorted(self._nodes.values(), key=lambda node: node.node_id)

    def live(self) -> list[Node]:
        """Nodes whose work and leases count: live and suspect ones (a suspect node may still run)."""
        return [node for node in self.nodes() if node.state is not NodeState.DEAD]

    def is_alive(self, node_id: str) -> bool:
        node = self._nodes.get(node_id)
        return node is not None and self._state(node) is not NodeState.DEAD

    def state(self, node_id: str) -> NodeState | None:
        """``node_id``'s state now, or None if this node has not heard of it (not yet, or it left)."""
        node = self._nodes.get(node_id)
        return None if node is None else self._state(node)

    def subscribe(self, listener: MembershipListener) -> None:
        """Call ``listener()`` whenever a node joins, leaves, dies or comes back (on the event loop)."""
        self._listeners.append(listener)

    def _state(self, node: Node) -> NodeState:
        if node.node_id == self.node_id:
            return NodeState.LIVE
        # While this node is cut off, time stands still for the others.
        now = self._connection.lost_at or time.monotonic()
        age = now - node.received
        if age >= DEAD_AFTER:
            return NodeState.DEAD
        if age >= SUSPECT_AFTER:
            return NodeState.SUSPECT
        return NodeState.LIVE

    def _refresh_states(self) -> bool:
        changed = False
        for node in self._nodes.values():
            state = self._state(node)
            if state is not node.state:
                if state is NodeState.DEAD:
                    log.warning("node %s is dead (no heartbeat for %.0f s)", node.node_id, DEAD_AFTER)
                node.state = state
                changed = True
        return changed

    def _changed(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                log.exception("a membership listener failed")

    # Start and stop -------------------------------------------------------------------------------------

    async def join(self) -> None:
        """Refuse to start if this node id is live elsewhere; then heartbeat and watch."""
        self._loop = asyncio.get_running_loop()
        self._kv = await self._connection.key_value(BUCKET, ttl=FORGET_AFTER)
        await check_node_id_free(self._kv, self.node_id, self.incarnation)
        await self._beat()
        self._watcher = await self._kv.watchall()
        self._tasks = [
            asyncio.create_task(self._watch(self._watcher), name="membership watch"),
            asyncio.create_task(self._heartbeats(), name="membership heartbeat"),
        ]
        self._connection.on_connection(self._reconnected)

    def beat_soon(self) -> None:
        """Send a heartbeat now rather than at the next second (load or ownership changed)."""
        self._beat_now.set()

    async def leave(self) -> None:
        """Stop heartbeating and remove this node's key: the others see it gone at once."""
        if self._rewatching is not None:
            self._rewatching.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._kv is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._kv.delete(self.node_id), 2)

    async def _reconnected(self, up: bool) -> None:
        if up:
            # Everyone's age restarts from now: they could not be heard while this node was cut off, and
            # get the whole SUSPECT_AFTER to be heard again while the watch is made anew (``_rewatch``;
            # after a NATS restart JetStream itself takes a moment).
            now = time.monotonic()
            for node in self._nodes.values():
                node.received = max(node.received, now)
            self.beat_soon()
            if self._rewatching is None or self._rewatching.done():
                self._rewatching = asyncio.create_task(self._rewatch(), name="membership rewatch")

    async def _rewatch(self) -> None:
        """Watch the bucket afresh after a reconnect. A restarted NATS forgot the old watcher's consumer
        (and without its files, the bucket too), and the client only notices when that consumer's idle
        heartbeats stay away (5 s and more): the others would turn suspect meanwhile. JetStream may need a
        moment after a restart, so retry."""
        for _ in range(20):
            try:
                # The bucket again: a NATS that restarted without its files has none (made anew here).
                self._kv = await self._connection.key_value(BUCKET, ttl=FORGET_AFTER)
                watcher = await self._kv.watchall()
                break
            except Exception as error:
                log.debug("membership rewatch: %s", error)
                await asyncio.sleep(0.5)
        else:
            log.warning("could not watch the cluster's heartbeats again; the old watch resumes by itself")
            return
        old_watcher, old_task = self._watcher, self._tasks[0]
        self._watcher = watcher
        self._tasks[0] = asyncio.create_task(self._watch(watcher), name="membership watch")
        old_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await old_task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old_watcher.stop(), 2)

    async def _beat(self) -> None:
        assert self._kv is not None
        heartbeat = Heartbeat(
            node_id=self.node_id,
            url=self._url,
            incarnation=self.incarnation,
            started_at=self._started_at,
            sent_at=_now_iso(),
            capacity_provider=self._capacity_provider,
            load=self._load(),
            owns=self._owns(),
        )
        await self._kv.put(self.node_id, heartbeat.encode())
        self._nodes[self.node_id] = Node(heartbeat, time.monotonic())

    async def _heartbeats(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._beat_now.wait(), HEARTBEAT_EVERY)
            self._beat_now.clear()
            try:
                if self._connection.connected:
                    await self._beat()
            except Exception as error:  # NATS away: the reconnect brings heartbeats back
                log.debug("heartbeat not sent: %s", error)
            if self._refresh_states():
                self._changed()

    async def _watch(self, watcher: Any) -> None:
        while True:
            try:
                entry = await watcher.updates(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.debug("membership watch: %s", error)
                await asyncio.sleep(0.5)
                continue
            if entry is None:  # the end of the initial values
                continue
            key = entry.key
            if entry.operation in ("DEL", "PURGE") or entry.value is None:
                if key != self.node_id and self._nodes.pop(key, None) is not None:
                    log.info("node %s left", key)
                    self._changed()
                continue
            try:
                heartbeat = Heartbeat.decode(entry.value)
            except (ValueError, TypeError, KeyError):
                log.warning("ignoring a malformed heartbeat under %r", key)
                continue
            if key == self.node_id:
                if heartbeat.incarnation != self.incarnation:
                    log.error("another process heartbeats as node %s (%s)", key, heartbeat.url)
                continue
            known = self._nodes.get(key)
            if known is not None and (known.heartbeat.incarnation, known.heartbeat.sent_at) == (
                heartbeat.incarnation,
                heartbeat.sent_at,
            ):
                continue  # a heartbeat heard before, again (a new watch starts with the last ones)
            self._nodes[key] = Node(heartbeat, time.monotonic())
            if (
                known is None
                or known.state is not NodeState.LIVE
                or (known.heartbeat.incarnation != heartbeat.incarnation)
            ):
                if known is None or known.heartbeat.incarnation != heartbeat.incarnation:
                    log.info("node %s joined (%s)", key, heartbeat.url)
                self._changed()


async def check_node_id_free(kv: KeyValue, node_id: str, incarnation: str = "") -> None:
    """Raise NodeIdInUse if another process heartbeats as ``node_id`` now.

    Heartbeats carry the sender's clock, so a key is watched for up to SUSPECT_AFTER seconds: a live node
    rewrites it within HEARTBEAT_EVERY.
    """
    try:
        first = await kv.get(node_id)
    except KeyNotFoundError:
        return
    deadline = time.monotonic() + SUSPECT_AFTER
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        try:
            entry = await kv.get(node_id)
        except KeyNotFoundError:
            return
        if entry.revision != first.revision and entry.value is not None:
            heartbeat = Heartbeat.decode(entry.value)
            if heartbeat.incarnation != incarnation:
                raise NodeIdInUse(
                    f"node id {node_id!r} is already live in this cluster (at {heartbeat.url}, heartbeat "
                    f"{heartbeat.sent_at}); give this node another --node-id, or stop that one first"
                )
