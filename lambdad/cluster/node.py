"""This server as a node of its cluster: the NATS connection, membership, change notices and log shipping,
started before the node serves and stopped after it stopped serving."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from starlette.middleware import Middleware

from lambdad.api.operations import Services
from lambdad.cluster.changes import ClusterChanges
from lambdad.cluster.concurrency import ClusterConcurrencyLeases
from lambdad.cluster.connection import ClusterConnection
from lambdad.cluster.forwarding import Forwarder, ForwardingRouter
from lambdad.cluster.logs import JetStreamLogs
from lambdad.cluster.membership import Membership, NodeLoad, NodeState
from lambdad.cluster.placement import Eligibility, every_node
from lambdad.environment import ExecutionEnvironment
from lambdad.invocation import EnvironmentPool
from lambdad.settings import Settings
from lambdad.store import Database
from lambdad.store.keyring import KeyRing

log = logging.getLogger(__name__)


class ClusterNode:
    """The cluster parts one node runs."""

    def __init__(self, settings: Settings, ring: KeyRing) -> None:
        self.settings = settings
        # The key that signs forwarded requests' origins: derived from the ring every node reads.
        self._forwarding_key = ring.derive("forwarding")
        self.node_id = settings.resolved_node_id
        self.connection = ClusterConnection(settings.nats_url, settings.cluster_name, self.node_id)
        self.changes = ClusterChanges(self.connection)
        self.logs = JetStreamLogs(self.connection)
        self._pool: EnvironmentPool | None = None
        self._background: set[asyncio.Future[object]] = set()
        self._forwarder: Forwarder | None = None
        # The functions with an idle environment here, as the last heartbeat reported them.
        self._reported_idle: frozenset[str] = frozenset()
        # Functions whose environments were idle at some moment since the last heartbeat.
        self._recently_idle: set[str] = set()
        self._beat_pending: asyncio.TimerHandle | None = None
        self._owns: Callable[[], dict[str, list[str]]] = dict
        self.membership = Membership(
            self.connection,
            settings.resolved_advertise_url,
            settings.capacity_provider,
            load=self._heartbeat_load,
            owns=lambda: self._owns(),
        )
        self.leases = ClusterConcurrencyLeases(self.connection, self.membership, settings.concurrency_limit)

    def watch(self, pool: EnvironmentPool) -> None:
        """Report ``pool``'s environments in this node's heartbeats; soon after a function gains its
        first idle environment here or loses its last, so that other nodes forward to a warm one."""
        self._pool = pool
        pool.subscribe(self._pool_changed)

    def forwarding(
        self, database: Database, services: Services, eligible: Eligibility = every_node
    ) -> Middleware:
        """The invoke router of a cluster node (``forwarding.py``): the outermost middleware."""
        settings = self.settings
        self._forwarder = Forwarder(
            self.membership,
            self._current_load,
            services.invoker,
            services.urls,
            settings.account_id,
            settings.region,
            self._forwarding_key,
            eligible,
        )
        return Middleware(ForwardingRouter, forwarder=self._forwarder)

    def _pool_changed(self, event: str, environment: ExecutionEnvironment) -> None:
        # A heartbeat reports a function idle if it was at any moment since the one before: under a
        # steady load its environments are idle between invocations, and a heartbeat that happened to
        # catch them busy must not send other nodes' invokes to cold starts elsewhere. A heartbeat goes
        # out soon (once, a little later) only when a function becomes idle here that the last one did
        # not name, or one it named stops.
        arn = environment.image.function_arn
        if event in ("reused", "created") and self._forwarder is not None:
            self._forwarder.took_environment(arn)
        if event == "idle":
            self._recently_idle.add(arn)
            if arn in self._reported_idle:
                return
        elif event != "stopped" or arn not in self._reported_idle:
            return
        if self._beat_pending is None:
            with contextlib.suppress(RuntimeError):  # no loop any more: nobody left to tell
                self._beat_pending = asyncio.get_running_loop().call_later(0.05, self._beat_soon)

    def _beat_soon(self) -> None:
        self._beat_pending = None
        self.membership.beat_soon()

    def report_ownership(self, owns: Callable[[], dict[str, list[str]]]) -> None:
        """Report what ``owns()`` says this node owns in its heartbeats."""
        self._owns = owns

    def after_a_death(self, work: Callable[[], object]) -> None:
        """Run ``work`` in a worker thread on one node (the live node with the lowest id) whenever a node
        dies: e.g. settle the functions it left Pending (settling is idempotent and revision-guarded, so a
        node that was only slow costs a repeated preparation, never a wrong state)."""
        dead: set[str] = set()

        def changed() -> None:
            now_dead = {node.node_id for node in self.membership.nodes() if node.state is NodeState.DEAD}
            died = now_dead - dead
            dead.clear()
            dead.update(now_dead)
            live = sorted(node.node_id for node in self.membership.live())
            if died and live and live[0] == self.node_id:
                log.info("node(s) %s died: this node takes over their unsettled functions", ", ".join(died))
                task = asyncio.ensure_future(asyncio.to_thread(work))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

        self.membership.subscribe(changed)

    def _current_load(self) -> NodeLoad:
        """This node's environments now (placement's view of this node)."""
        if self._pool is None:
            return NodeLoad()
        busy = self._pool.busy_environments
        return NodeLoad(
            warm_environments=self._pool.environments,
            busy_environments=busy,
            running_invocations=self._pool.running_invocations,
            idle=self._pool.idle_by_function(),
        )

    def _heartbeat_load(self) -> NodeLoad:
        """What a heartbeat reports: functions idle since the last one count as idle."""
        load = self._current_load()
        for arn in self._recently_idle:
            load.idle[arn] = max(load.idle.get(arn, 0), 1)
        self._recently_idle = set()
        self._reported_idle = frozenset(load.idle)
        return load

    async def start(self) -> None:
        """Connect to NATS, hear the other nodes' change notices, join the membership, count leases."""
        await self.connection.connect()
        await self.changes.start()
        await self.logs.start()
        await self.membership.join()
        await self.leases.start()
        log.info(
            "node %s joined cluster %s (NATS %s) as %s",
            self.node_id,
            self.settings.cluster_name,
            self.settings.nats_url,
            self.settings.resolved_advertise_url,
        )

    async def stop(self) -> None:
        """Give back leases, leave the membership (the others see this node gone at once), then close
        NATS."""
        await self.leases.stop()
        await self.membership.leave()
        if self._forwarder is not None:
            await self._forwarder.close()
        await self.logs.close()
        await self.connection.close()
