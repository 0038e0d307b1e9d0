"""This server as a node of its cluster: the NATS connection, membership, change notices and log shipping,
started before the node serves and stopped after it stopped serving."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from lambdad.cluster.changes import ClusterChanges
from lambdad.cluster.connection import ClusterConnection
from lambdad.cluster.logs import JetStreamLogs
from lambdad.cluster.membership import Membership, NodeLoad, NodeState
from lambdad.invocation import EnvironmentPool
from lambdad.settings import Settings

log = logging.getLogger(__name__)


class ClusterNode:
    """The cluster parts one node runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.node_id = settings.resolved_node_id
        self.connection = ClusterConnection(settings.nats_url, settings.cluster_name, self.node_id)
        self.changes = ClusterChanges(self.connection)
        self.logs = JetStreamLogs(self.connection)
        self._pool: EnvironmentPool | None = None
        self._background: set[asyncio.Future[object]] = set()
        self._owns: Callable[[], dict[str, list[str]]] = dict
        self.membership = Membership(
            self.connection,
            settings.resolved_advertise_url,
            settings.capacity_provider,
            load=self._load,
            owns=lambda: self._owns(),
        )

    def watch(self, pool: EnvironmentPool) -> None:
        """Report ``pool``'s environments in this node's heartbeats."""
        self._pool = pool

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

    def _load(self) -> NodeLoad:
        if self._pool is None:
            return NodeLoad()
        busy = self._pool.busy_environments
        return NodeLoad(
            warm_environments=self._pool.environments,
            busy_environments=busy,
            running_invocations=self._pool.running_invocations,
            idle=self._pool.idle_by_function(),
        )

    async def start(self) -> None:
        """Connect to NATS, hear the other nodes' change notices, join the membership."""
        await self.connection.connect()
        await self.changes.start()
        await self.logs.start()
        await self.membership.join()
        log.info(
            "node %s joined cluster %s (NATS %s) as %s",
            self.node_id,
            self.settings.cluster_name,
            self.settings.nats_url,
            self.settings.resolved_advertise_url,
        )

    async def stop(self) -> None:
        """Leave the membership (the others see this node gone at once), then close NATS."""
        await self.membership.leave()
        await self.logs.close()
        await self.connection.close()
