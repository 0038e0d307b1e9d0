"""ClusterConcurrencyLeases' bookkeeping against the real NATS: several "nodes" (each its own NATS
client) count leases in one bucket named after the test, deleted afterwards. Membership is replaced by a
table of node states, so that a test can declare a node dead without waiting DEAD_AFTER."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from lambdad.cluster import concurrency
from lambdad.cluster.concurrency import BUCKET, ClusterConcurrencyLeases
from lambdad.cluster.connection import ClusterConnection
from lambdad.cluster.membership import NodeState
from lambdad.errors import TooManyRequestsException
from lambdad.invocation.concurrency import ACCOUNT_LIMIT, RESERVED_LIMIT, Lease
from lambdad.models import Scope
from tests.e2e.cluster_support import NATS_URL, remove_nats_names
from tests.support import free_port

pytestmark = pytest.mark.timeout(60)

FUNCTION = (Scope("000000000000", "us-east-1"), "sleeper")
OTHER = (Scope("000000000000", "us-east-1"), "other")
# The counters' keys: <account>.<region>.fn.<name> and <account>.<region>.pool.
SLEEPER_KEY = "000000000000.us-east-1.fn.sleeper"
POOL_KEY = "000000000000.us-east-1.pool"


class NodeTable:
    """Membership as a table: every node live unless a test says otherwise."""

    def __init__(self) -> None:
        self.states: dict[str, NodeState | None] = {}
        self._listeners: list[Callable[[], None]] = []

    def state(self, node_id: str) -> NodeState | None:
        return self.states.get(node_id, NodeState.LIVE)

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def set(self, node_id: str, state: NodeState | None) -> None:
        self.states[node_id] = state
        for listener in self._listeners:
            listener()


class Nodes:
    """Lease counters of several nodes of one test cluster, each on its own NATS connection."""

    def __init__(self, url: str = NATS_URL) -> None:
        self.url = url
        self.name = f"u{uuid.uuid4().hex[:10]}"
        self.table = NodeTable()
        self.connections: dict[str, ClusterConnection] = {}
        self.leases: dict[str, ClusterConcurrencyLeases] = {}

    async def start(self, node_id: str, account_limit: int = 1000) -> ClusterConcurrencyLeases:
        connection = ClusterConnection(self.url, self.name, node_id)
        await connection.connect()
        leases = ClusterConcurrencyLeases(connection, self.table, account_limit)
        await leases.start()
        self.connections[node_id], self.leases[node_id] = connection, leases
        return leases

    async def stop(self, node_id: str) -> None:
        await self.leases.pop(node_id).stop()
        await self.connections.pop(node_id).close()

    async def entry(self, key: str) -> dict[str, int]:
        connection = next(iter(self.connections.values()))
        kv = await connection.key_value(BUCKET)
        return dict(json.loads((await kv.get(key)).value or b"{}"))

    async def put(self, key: str, shares: dict[str, int]) -> None:
        connection = next(iter(self.connections.values()))
        kv = await connection.key_value(BUCKET)
        await kv.put(key, json.dumps(shares).encode())

    async def close(self) -> None:
        for node_id in list(self.leases):
            await self.stop(node_id)


def with_nodes(test: Callable[[Nodes], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run an async test on its own event loop with a cluster name of its own, removed afterwards."""

    def run() -> None:
        nodes = Nodes()

        async def main() -> None:
            try:
                await test(nodes)
            finally:
                await nodes.close()

        try:
            asyncio.run(main())
        finally:
            remove_nats_names(nodes.name)

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.02)


async def refused(leases: ClusterConcurrencyLeases, reserved: int | None, total: int = 0) -> str:
    with pytest.raises(TooManyRequestsException) as caught:
        await leases.acquire(FUNCTION, reserved, total)
    assert caught.value.status == 429
    return str(caught.value.fields["Reason"])


@with_nodes
async def test_reserved_concurrency_counts_every_nodes_leases(nodes: Nodes) -> None:
    a, b, c = [await nodes.start(n) for n in ("a", "b", "c")]

    first = await a.acquire(FUNCTION, 2, 2)
    second = await b.acquire(FUNCTION, 2, 2)

    assert await nodes.entry(SLEEPER_KEY) == {"a": 1, "b": 1}
    for leases in (a, b, c):
        assert await refused(leases, 2, 2) == RESERVED_LIMIT
    b.release(second)
    await eventually(lambda: _equals(nodes.entry(SLEEPER_KEY), {"a": 1}))
    third = await c.acquire(FUNCTION, 2, 2)
    assert await nodes.entry(SLEEPER_KEY) == {"a": 1, "c": 1}
    a.release(first)
    c.release(third)
    await eventually(lambda: _equals(nodes.entry(SLEEPER_KEY), {}))


@with_nodes
async def test_the_unreserved_pool_is_the_account_limit_less_every_reservation(nodes: Nodes) -> None:
    a, b = await nodes.start("a", account_limit=5), await nodes.start("b", account_limit=5)

    held = [
        await a.acquire(FUNCTION, None, 2),
        await b.acquire(OTHER, None, 2),
        await b.acquire(OTHER, None, 2),
    ]

    assert await refused(a, None, 2) == ACCOUNT_LIMIT
    assert await nodes.entry(POOL_KEY) == {"a": 1, "b": 2}
    reserved = await a.acquire(FUNCTION, 1, 2)  # a reservation is not taken from the pool
    assert (a.in_flight(FUNCTION), b.in_flight(OTHER)) == (2, 2)
    for lease in held:
        (a if lease.function == FUNCTION else b).release(lease)
    a.release(reserved)


@with_nodes
async def test_simultaneous_acquires_on_three_nodes_never_pass_the_limit(nodes: Nodes) -> None:
    everyone = [await nodes.start(n) for n in ("a", "b", "c")]

    async def one(leases: ClusterConcurrencyLeases) -> Lease | None:
        try:
            return await leases.acquire(FUNCTION, 5, 5)
        except TooManyRequestsException:
            return None

    for _ in range(3):
        answers = await asyncio.gather(*(one(leases) for leases in everyone for _ in range(6)))
        admitted = [(leases, lease) for leases, lease in zip(everyone * 6, answers, strict=True) if lease]
        assert len(admitted) == 5
        assert sum((await nodes.entry(SLEEPER_KEY)).values()) == 5
        for index, leases in enumerate(everyone):
            for lease in answers[index * 6 : index * 6 + 6]:
                if lease is not None:
                    leases.release(lease)
        await eventually(lambda: _equals(nodes.entry(SLEEPER_KEY), {}))


@with_nodes
async def test_a_full_counter_waits_briefly_for_another_nodes_slot_to_come_back(nodes: Nodes) -> None:
    a, b = await nodes.start("a"), await nodes.start("b")
    held = await a.acquire(FUNCTION, 1, 1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(concurrency, "REFUSAL_WAIT", 5.0)  # generous: this machine may be busy
        waiting = asyncio.create_task(b.acquire(FUNCTION, 1, 1))
        await eventually(lambda: _true(_waiters(b, SLEEPER_KEY) == 1))
        a.release(held)  # written back after TIGHT_LINGER
        lease = await waiting

    assert lease.function == FUNCTION
    assert await nodes.entry(SLEEPER_KEY) == {"b": 1}
    started = time.monotonic()
    assert await refused(a, 1, 1) == RESERVED_LIMIT  # nobody gives one back: refused after REFUSAL_WAIT
    assert time.monotonic() - started >= concurrency.REFUSAL_WAIT


@with_nodes
async def test_a_dead_nodes_leases_stop_counting_and_leave_the_entry(nodes: Nodes) -> None:
    a, b = await nodes.start("a"), await nodes.start("b")
    await a.acquire(FUNCTION, 2, 2)
    await a.acquire(FUNCTION, 2, 2)
    assert await refused(b, 2, 2) == RESERVED_LIMIT

    nodes.table.set("a", NodeState.DEAD)  # as Membership says DEAD_AFTER after a's last heartbeat

    await b.acquire(FUNCTION, 2, 2)
    assert await nodes.entry(SLEEPER_KEY) == {"b": 1}


@with_nodes
async def test_the_sweep_removes_a_dead_nodes_shares_that_nobody_writes(nodes: Nodes) -> None:
    await nodes.start("a")
    await nodes.put(SLEEPER_KEY, {"ghost": 2})
    await nodes.put(POOL_KEY, {"ghost": 3})

    nodes.table.set("ghost", NodeState.DEAD)

    await eventually(lambda: _equals(nodes.entry(SLEEPER_KEY), {}))
    await eventually(lambda: _equals(nodes.entry(POOL_KEY), {}))


@with_nodes
async def test_an_unknown_nodes_share_counts_until_it_was_unknown_for_dead_after(nodes: Nodes) -> None:
    a = await nodes.start("a")
    await nodes.put(SLEEPER_KEY, {"newcomer": 1})
    nodes.table.states["newcomer"] = None  # its heartbeat has not arrived here (yet)
    await eventually(lambda: _known(a, SLEEPER_KEY, {"newcomer": 1}))

    assert await refused(a, 1, 1) == RESERVED_LIMIT
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(concurrency, "DEAD_AFTER", 1.0)
        while True:
            try:
                await a.acquire(FUNCTION, 1, 1)
                break
            except TooManyRequestsException:
                await asyncio.sleep(0.05)
    assert time.monotonic() - started >= 0.9


@with_nodes
async def test_a_restarted_node_clears_the_shares_its_predecessor_left(nodes: Nodes) -> None:
    await nodes.start("b")
    await nodes.put(SLEEPER_KEY, {"a": 2, "b": 1})

    await nodes.start("a")  # the same node id, a new process: nothing of the old one runs

    assert await nodes.entry(SLEEPER_KEY) == {"b": 1}


@with_nodes
async def test_a_node_thought_dead_writes_its_shares_back(nodes: Nodes) -> None:
    a, b = await nodes.start("a"), await nodes.start("b")
    await a.acquire(FUNCTION, 2, 2)
    await nodes.put(SLEEPER_KEY, {})  # b's sweep removed a while a was cut off

    nodes.table.set("b", NodeState.LIVE)  # any membership change (or SWEEP_EVERY) sweeps

    await eventually(lambda: _equals(nodes.entry(SLEEPER_KEY), {"a": 1}))
    await b.acquire(FUNCTION, 2, 2)
    assert await refused(b, 2, 2) == RESERVED_LIMIT


@with_nodes
async def test_a_clean_stop_gives_every_share_back(nodes: Nodes) -> None:
    await nodes.start("b")
    a = await nodes.start("a")
    await a.acquire(FUNCTION, 2, 2)
    await a.acquire(OTHER, None, 0)

    await nodes.stop("a")

    assert await nodes.entry(SLEEPER_KEY) == {}
    assert await nodes.entry(POOL_KEY) == {}


@with_nodes
async def test_back_to_back_invocations_on_one_node_reuse_a_slot_not_yet_given_back(nodes: Nodes) -> None:
    a = await nodes.start("a")
    lease = await a.acquire(FUNCTION, 1, 1)
    revision = a._counters[SLEEPER_KEY].revision

    for _ in range(20):  # release and acquire in one step of the event loop: no write between
        a.release(lease)
        lease = await a.acquire(FUNCTION, 1, 1)

    assert a._counters[SLEEPER_KEY].revision == revision
    a.release(lease)
    await eventually(lambda: _equals(nodes.entry(SLEEPER_KEY), {}))


@with_nodes
async def test_under_a_loose_limit_slots_linger_and_under_a_tight_one_go_back_at_once(nodes: Nodes) -> None:
    a = await nodes.start("a", account_limit=1000)
    revision = a._counters[POOL_KEY].revision if POOL_KEY in a._counters else 0
    leases = [await a.acquire(FUNCTION, None, 0) for _ in range(3)]
    for lease in leases:
        a.release(lease)
    tight = await a.acquire(OTHER, 1, 1)
    a.release(tight)

    await eventually(
        lambda: _equals(nodes.entry("000000000000.us-east-1.fn.other"), {}), timeout=concurrency.LINGER / 2
    )
    assert await nodes.entry(POOL_KEY) == {"a": 3}  # lingering: the next ones need no write
    pool = a._counters[POOL_KEY].revision
    for _ in range(50):
        a.release(await a.acquire(FUNCTION, None, 0))
    assert a._counters[POOL_KEY].revision == pool > revision
    await eventually(lambda: _equals(nodes.entry(POOL_KEY), {}), timeout=concurrency.LINGER * 5)


def test_without_nats_a_node_admits_its_fair_share_at_once_and_releases_are_written_when_it_is_back(
    tmp_path: Path,
) -> None:
    """A private nats-server of this test's own, stopped and started again."""
    server = shutil.which("nats-server")
    if server is None:
        pytest.skip("nats-server is not installed")
    port = free_port()
    command = [server, "-js", "-p", str(port), "-sd", str(tmp_path / "nats")]

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return process
            time.sleep(0.05)
        raise AssertionError("nats-server did not start")

    nats_process = start()
    nodes = Nodes(f"nats://127.0.0.1:{port}")

    async def main() -> None:
        nonlocal nats_process
        a = await nodes.start("a")
        held = await a.acquire(FUNCTION, 3, 3)
        spare = await a.acquire(FUNCTION, 3, 3)
        a.release(spare)
        await eventually(lambda: _equals(nodes.entry(SLEEPER_KEY), {"a": 1}))
        nats_process.terminate()
        nats_process.wait(10)
        await eventually(lambda: _true(nodes.connections["a"].lost_at is not None))

        # Cut off: admitted up to its fair share of the limit (it alone shared it: all 3), without asking.
        started = time.monotonic()
        extra = [await a.acquire(FUNCTION, 3, 3), await a.acquire(FUNCTION, 3, 3)]
        assert await refused(a, 3, 3) == RESERVED_LIMIT
        assert time.monotonic() - started < 0.5
        a.release(held)  # written back once NATS is back
        for lease in extra:
            a.release(lease)

        nats_process = start()
        await eventually(lambda: _true(nodes.connections["a"].lost_at is None), timeout=20)
        await eventually(lambda: _equals(nodes.entry(SLEEPER_KEY), {}), timeout=20)
        await a.acquire(FUNCTION, 3, 3)

    async def run() -> None:
        try:
            await main()
        finally:
            await nodes.close()

    try:
        asyncio.run(run())
    finally:
        nats_process.terminate()
        nats_process.wait(10)


async def _equals(entry: Awaitable[dict[str, int]], expected: dict[str, int]) -> bool:
    return await entry == expected


async def _known(leases: ClusterConcurrencyLeases, key: str, shares: dict[str, int]) -> bool:
    counter = leases._counters.get(key)
    return counter is not None and counter.shares == shares


async def _true(value: bool) -> bool:
    return value


def _waiters(leases: ClusterConcurrencyLeases, key: str) -> int:
    counter = leases._counters.get(key)
    return 0 if counter is None else counter.waiters
