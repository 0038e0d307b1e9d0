"""Concurrency limits hold for the cluster as a whole: reserved concurrency and the account limit count
the invocations of every node, refusals are AWS's 429 with its Reasons, and a SIGKILLed node's leases are
usable again within the documented bound (lambdad/cluster/concurrency.py: 11 s; asserted at 15 s)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import nats
import psycopg
import pytest
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError
from nats.js.errors import KeyNotFoundError

from tests.brokers import POSTGRES
from tests.e2e.cluster_support import NATS_URL, Cluster, cluster
from tests.e2e.invoke_support import ACTIVE_WAIT, deploy_python, invoke, unique

pytestmark = pytest.mark.timeout(300)

NODES = ("n1", "n2", "n3")
DEAD_NODE_BOUND = 15.0  # seconds: the most the design allows (it documents 11)

SLEEPER = """
import time

def handler(event, context):
    started = time.time()
    time.sleep(event.get("sleep", 0))
    return {"started": started, "ended": time.time()}
"""


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(
        tmp_path_factory.mktemp("leases"), "--spares", "0", "--concurrency-limit", "3", nodes=3
    ) as c:
        yield c


def sleeper(c: Cluster, reserved: int | None = None) -> str:
    """A sleeping function made through n1, active (and with ``reserved`` put) on every node."""
    name = unique("sleeper")
    deploy_python(c["n1"].client(), name, SLEEPER, Timeout=60)
    if reserved is not None:
        c["n1"].client().put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
    for node in NODES:
        c[node].client().get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=ACTIVE_WAIT)
    return name


def all_at_once(c: Cluster, name: str, per_node: int, sleep: float) -> dict[str, list[Any]]:
    """``per_node`` simultaneous invokes through each node: each answer is the payload or the ClientError."""
    answers: dict[str, list[Any]] = {node: [None] * per_node for node in NODES}
    barrier = threading.Barrier(per_node * len(NODES))

    def run(node: str, index: int) -> None:
        client = c[node].client(read_timeout=120)
        barrier.wait()
        try:
            answers[node][index] = invoke(client, name, {"sleep": sleep})[1]
        except ClientError as error:
            answers[node][index] = error

    threads = [threading.Thread(target=run, args=(n, i)) for n in NODES for i in range(per_node)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(150)
    return answers


def throttled(answer: Any, reason: str) -> bool:
    """AWS's answer past a concurrency limit, as botocore parses it."""
    return (
        isinstance(answer, ClientError)
        and answer.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        and answer.response["Error"]["Code"] == "TooManyRequestsException"
        and answer.response["Error"]["Message"] == "Rate Exceeded."
        and answer.response.get("Reason") == reason
    )


def most_at_once(runs: list[dict[str, float]]) -> int:
    """The most invocations that ran at the same moment, from their start and end times."""
    edges = sorted([(run["started"], 1) for run in runs] + [(run["ended"], -1) for run in runs])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def check_limit(c: Cluster, name: str, limit: int, reason: str) -> None:
    answers = all_at_once(c, name, per_node=3, sleep=5)
    flat = [answer for node in NODES for answer in answers[node]]
    runs = [answer for answer in flat if isinstance(answer, dict)]
    refusals = [answer for answer in flat if not isinstance(answer, dict)]
    summary = {node: ["ran" if isinstance(a, dict) else repr(a) for a in answers[node]] for node in NODES}
    assert len(runs) == limit, summary
    assert most_at_once(runs) <= limit
    assert all(throttled(answer, reason) for answer in refusals), summary
    # Every lease came back: each node runs the function again, one after another.
    for node in NODES:
        assert isinstance(invoke(c[node].client(), name, {})[1], dict), node


def test_reserved_concurrency_2_means_2_at_once_across_three_nodes(region: Cluster) -> None:
    name = sleeper(region, reserved=2)
    try:
        check_limit(region, name, 2, "ReservedFunctionConcurrentInvocationLimitExceeded")
    finally:
        region["n1"].client().delete_function(FunctionName=name)


def test_the_account_limit_holds_across_three_nodes(region: Cluster) -> None:
    name = sleeper(region)
    try:
        check_limit(region, name, 3, "ConcurrentInvocationLimitExceeded")
    finally:
        region["n1"].client().delete_function(FunctionName=name)


def leases_of(c: Cluster, key: str) -> dict[str, int]:
    """The cluster's lease entry ``key`` as NATS holds it."""

    async def read() -> dict[str, int]:
        client = await nats.connect(NATS_URL)
        try:
            kv = await client.jetstream().key_value(f"{c.name}_leases")
            return dict(json.loads((await kv.get(key)).value or b"{}"))
        except KeyNotFoundError:  # never written: nobody took a lease yet
            return {}
        finally:
            await client.close()

    return asyncio.run(read())


def refused_on(c: Cluster, node: str, name: str) -> bool:
    try:
        invoke(c[node].client(), name, {})
    except ClientError as error:
        assert throttled(error, "ReservedFunctionConcurrentInvocationLimitExceeded"), error.response
        return True
    return False


def test_a_streamed_invocation_holds_its_lease_until_the_function_ends(region: Cluster) -> None:
    c = region
    name = sleeper(c, reserved=1)
    try:
        streamed: list[Any] = []

        def stream() -> None:
            response = (
                c["n2"]
                .client(read_timeout=60)
                .invoke_with_response_stream(FunctionName=name, Payload=json.dumps({"sleep": 4}).encode())
            )
            streamed.extend(response["EventStream"])

        thread = threading.Thread(target=stream)
        thread.start()
        deadline = time.monotonic() + 60
        while leases_of(c, f"000000000000.us-east-1.fn.{name}") != {"n2": 1}:
            assert time.monotonic() < deadline, leases_of(c, f"000000000000.us-east-1.fn.{name}")
            time.sleep(0.1)
        assert refused_on(c, "n1", name)
        thread.join(60)
        assert any("PayloadChunk" in event for event in streamed), streamed
        assert not refused_on(c, "n3", name)  # given back when the function ended, by n2's stream
    finally:
        c["n1"].client().delete_function(FunctionName=name)


def postgres_writes(c: Cluster) -> int:
    """Rows the cluster's database has inserted, updated and deleted so far, once every backend's counts
    reached the statistics (PostgreSQL 15 publishes an idle backend's within 10 s): the same figure twice,
    11 s apart. Leaving out ``work_leases``, which every node renews each second whatever it runs."""
    query = (
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
        "WHERE relname <> 'work_leases'"
    )
    with psycopg.connect(f"{POSTGRES}/{c.name}", autocommit=True) as connection:
        previous = None
        while True:
            connection.execute("SELECT pg_stat_clear_snapshot()")
            row = connection.execute(query).fetchone()
            assert row is not None
            if row[0] == previous:
                return int(row[0])
            previous = row[0]
            time.sleep(11)


def test_warm_invocations_write_nothing_to_postgresql(region: Cluster) -> None:
    c = region
    name = sleeper(c, reserved=2)  # a reservation and the unreserved pool: both counters are used
    pooled = sleeper(c)
    try:
        for node in NODES:  # warm on every node
            invoke(c[node].client(), name, {})
            invoke(c[node].client(), pooled, {})
        before = postgres_writes(c)
        for _ in range(20):
            for node in NODES:
                for function in (name, pooled):
                    assert isinstance(invoke(c[node].client(), function, {})[1], dict)
        assert postgres_writes(c) == before
        # The measure sees writes: one tag is one row.
        c["n1"].client().tag_resource(
            Resource=c["n1"].client().get_function(FunctionName=name)["Configuration"]["FunctionArn"],
            Tags={"seen": "yes"},
        )
        assert postgres_writes(c) > before
    finally:
        c["n1"].client().delete_function(FunctionName=name)
        c["n1"].client().delete_function(FunctionName=pooled)


# Last: it kills n3, which the module's other tests use.
def test_a_killed_nodes_leases_are_usable_again_within_the_bound(region: Cluster) -> None:
    c = region
    name = sleeper(c, reserved=2)
    key = f"000000000000.us-east-1.fn.{name}"

    def hold() -> None:  # runs until its node dies
        client = c["n3"].client(read_timeout=120, connect_timeout=5)
        with contextlib.suppress(ClientError, ConnectionError, ReadTimeoutError):
            invoke(client, name, {"sleep": 40})

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(2)]
    for thread in holders:
        thread.start()
    # Placement decides where they run (the second of two at once goes to a less loaded node).
    deadline = time.monotonic() + 60
    while sum(leases_of(c, key).values()) != 2:
        assert time.monotonic() < deadline, leases_of(c, key)
        time.sleep(0.1)
    victims = sorted(leases_of(c, key))
    observer = next(node for node in NODES if node not in victims)
    assert refused_on(c, observer, name)

    for victim in victims:
        c.kill(victim)
    killed = time.monotonic()
    assert refused_on(c, observer, name)  # the victims are not dead yet: their leases still count
    while refused_on(c, observer, name):
        assert time.monotonic() - killed < DEAD_NODE_BOUND, f"{victims}' leases were never freed"
        time.sleep(0.2)
    freed_after = time.monotonic() - killed
    print(f"{', '.join(victims)}'s leases were usable again {freed_after:.1f} s after the kill")
    # The observer's lease ended and the victims' shares are gone from the entry (its write left them out).
    deadline = time.monotonic() + 10
    while leases_of(c, key) != {}:
        assert time.monotonic() < deadline, leases_of(c, key)
        time.sleep(0.1)
    assert not refused_on(c, observer, name)
