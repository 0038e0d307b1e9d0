"""Clusters for end-to-end tests: real ``lambdad serve`` nodes as separate processes on free loopback
ports, sharing a PostgreSQL database and NATS names of the test's own, all removed afterwards."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import psycopg

from lambdad.sandbox.cgroups import kill_orphaned_sandboxes
from tests.brokers import POSTGRES
from tests.e2e.invoke_support import RUNTIMES_DIR  # noqa: F401  (shares the runtimes cache)
from tests.support import Server

NATS_URL = "nats://127.0.0.1:4222"


@dataclass
class Cluster:
    """Nodes of one test's cluster, by node id."""

    name: str
    database_url: str
    directory: Path
    common_args: list[str] = field(default_factory=list)
    nats_url: str = NATS_URL
    nodes: dict[str, Server] = field(default_factory=dict)

    def node_args(self, node_id: str, port: int) -> list[str]:
        return [
            "--database-url",
            self.database_url,
            "--nats-url",
            self.nats_url,
            "--cluster-name",
            self.name,
            "--node-id",
            node_id,
            "--advertise-url",
            f"http://127.0.0.1:{port}",
        ]

    def add(self, node_id: str, *extra_args: str, env: dict[str, str] | None = None) -> Server:
        """Start node ``node_id`` (its own port and data directory) and wait until it answers."""
        server = Server(self.directory / node_id, env=env or {})
        server.extra_args = [*self.node_args(node_id, server.port), *self.common_args, *extra_args]
        self.nodes[node_id] = server
        return server.start(timeout=60)

    def __getitem__(self, node_id: str) -> Server:
        return self.nodes[node_id]

    def kill(self, node_id: str) -> None:
        """SIGKILL a node: no clean leave, its heartbeats just stop."""
        self.nodes[node_id].stop(signal.SIGKILL)

    def restart(self, node_id: str, timeout: float = 60) -> Server:
        """Start a stopped node again on the same port and data directory (a node id whose last
        heartbeat is recent waits out the check that no live node has it)."""
        server = self.nodes[node_id]
        return server.start(timeout=timeout)

    def view(self, node_id: str) -> list[dict[str, Any]]:
        """``GET /_lambdad/nodes`` on ``node_id``."""
        return list(self.nodes[node_id].own("/_lambdad/nodes", timeout=5)["Nodes"])

    def wait_states(self, expected: dict[str, str], on: str | None = None, timeout: float = 30) -> None:
        """Wait until node ``on`` (default: every running node) sees each node of ``expected`` in that
        state ("gone": not listed)."""
        running = [n for n, server in self.nodes.items() if server.process and server.process.poll() is None]
        observers = [on] if on else running
        deadline = time.monotonic() + timeout
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            ok = True
            for observer in observers:
                states = {node["NodeId"]: node["State"] for node in self.view(observer)}
                seen[observer] = states
                if any(states.get(n, "gone") != state for n, state in expected.items()):
                    ok = False
            if ok:
                return
            time.sleep(0.1)
        raise AssertionError(f"nodes never reached {expected}: {seen}")

    @contextmanager
    def database_outage(self) -> Iterator[None]:
        """PostgreSQL refuses this cluster's database for the block's duration, for real: new
        connections are refused and the nodes' open ones are cut (the server and other databases stay)."""
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {self.name} WITH ALLOW_CONNECTIONS false")
            try:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (self.name,)
                )
                yield
            finally:
                admin.execute(f"ALTER DATABASE {self.name} WITH ALLOW_CONNECTIONS true")

    def close(self) -> None:
        for server in self.nodes.values():
            if server.process is not None and server.process.poll() is None:
                try:
                    server.stop(timeout=20)
                except Exception:
                    server.stop(signal.SIGKILL)
        # What SIGKILLed nodes left running: the next server's start would, but a test's end has none.
        kill_orphaned_sandboxes(Path("/sys/fs/cgroup"), "lambdad")


def remove_nats_names(prefix: str, url: str = NATS_URL) -> None:
    """Delete every stream (key-value buckets and object stores are streams too) named after ``prefix``."""

    async def remove() -> None:
        client = await nats.connect(url)
        try:
            js = client.jetstream()
            for info in await js.streams_info():
                name = info.config.name or ""
                if name.startswith((f"{prefix}_", f"KV_{prefix}_", f"OBJ_{prefix}_")):
                    await js.delete_stream(name)
        finally:
            await client.close()

    asyncio.run(remove())


@contextmanager
def cluster(
    directory: Path, *common_args: str, nodes: int = 0, nats_url: str = NATS_URL
) -> Iterator[Cluster]:
    """A cluster of its own (database, NATS names), with ``nodes`` nodes n1..nN started; everything is
    stopped and removed afterwards. ``nats_url``: a NATS of the test's own (``tests.brokers.private_nats``)
    instead of the shared one; its streams go with it."""
    name = f"t{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = f"{POSTGRES.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    the_cluster = Cluster(name, url, directory, list(common_args), nats_url)
    try:
        for index in range(1, nodes + 1):
            the_cluster.add(f"n{index}")
        if nodes:
            the_cluster.wait_states({f"n{index}": "live" for index in range(1, nodes + 1)})
        yield the_cluster
    finally:
        the_cluster.close()
        if nats_url == NATS_URL:
            remove_nats_names(name)
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
