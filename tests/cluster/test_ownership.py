"""Work leases on a real PostgreSQL and real NATS membership: keys spread over two nodes by rendezvous
hashing, and a node cut off from PostgreSQL stops owning its keys before the other node takes them (never
two owners at once), then gets its share back when PostgreSQL is back."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable

from sqlalchemy.engine import make_url

from lambdad.cluster.connection import ClusterConnection
from lambdad.cluster.membership import Membership
from lambdad.cluster.ownership import ClusterOwnership, desired_owner
from lambdad.events.ownership import WorkKind
from lambdad.store import Database
from tests.e2e.cluster_support import NATS_URL, remove_nats_names

KIND = WorkKind.EVENT_SOURCE_MAPPING
KEYS = [f"mapping-{index}" for index in range(24)]


class CuttableProxy:
    """A TCP proxy to PostgreSQL whose link can be cut (every connection closed, new ones refused)."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_keys_spread_and_a_node_cut_off_from_postgresql_lets_go_before_the_other_takes_over(
    postgres: Database,
) -> None:
    cluster_name = f"t{uuid.uuid4().hex[:10]}"
    url = make_url(postgres.url)

    async def scenario() -> None:
        proxy = CuttableProxy(url.port or 5432)
        await proxy.open()
        cut_off = Database(url.set(port=proxy.port).render_as_string(hide_password=False))
        nodes: dict[str, ClusterOwnership] = {}
        connections = []
        for node_id, database in (("a", cut_off), ("b", postgres)):
            connection = ClusterConnection(NATS_URL, cluster_name, node_id)
            await connection.connect()
            membership = Membership(connection, f"http://{node_id}")
            await membership.join()
            ownership = ClusterOwnership(database, membership, f"incarnation-{node_id}")
            ownership.track(KIND, KEYS)
            nodes[node_id] = ownership
            connections.append((connection, membership))
        a, b = nodes["a"], nodes["b"]
        both: list[str] = []

        async def watch() -> None:  # never two owners, sampled every few milliseconds
            while True:
                both.extend(key for key in KEYS if a.owns(KIND, key) and b.owns(KIND, key))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        try:
            for ownership in nodes.values():
                await ownership.start()
            placed = {key: desired_owner({"a", "b"}, KIND, key) for key in KEYS}
            await eventually(
                lambda: all(nodes[owner].owns(KIND, key) for key, owner in placed.items()), 20, "spread"
            )
            assert set(placed.values()) == {"a", "b"}
            assert a.owned()[KIND] == sorted(key for key, owner in placed.items() if owner == "a")

            await proxy.cut()
            await eventually(lambda: all(b.owns(KIND, key) for key in KEYS), 20, "b to own everything")
            assert not a.owned()[KIND]

            await proxy.open()  # PostgreSQL is back for a: it takes its share again
            await eventually(
                lambda: all(nodes[owner].owns(KIND, key) for key, owner in placed.items()), 20, "spread again"
            )
            assert not both, f"owned by both nodes at once: {sorted(set(both))}"
        finally:
            watcher.cancel()
            for ownership in nodes.values():
                await ownership.stop()
            for connection, membership in connections:
                await membership.leave()
                await connection.close()
            cut_off.dispose()

    try:
        asyncio.run(scenario())
    finally:
        remove_nats_names(cluster_name)
