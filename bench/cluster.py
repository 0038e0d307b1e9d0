"""The cluster: warm invoke through one, two and three nodes, local vs forwarded, and a cluster node vs
the embedded single server.

Three real nodes (``--spares 0``) on a PostgreSQL database and NATS cluster name of the run's own
(``tests/e2e/cluster_support``), and one embedded server (SQLite, no NATS). The hello function (MemorySize
1769, a full vCPU) answers a small JSON event; clients are ``bench.common.drive``'s keep-alive threads.

- embedded vs cluster node: one client on the node holding the warm environment (it runs there: local),
  against the same on the embedded server; what the cluster costs an invoke that stays on its node.
- forwarded vs local: one client on a node that has no environment of the function, whose invokes go to
  the node that has one (one HTTP hop more), against one client on that node itself; latency, and the
  CPU each node spends per invoke (from /proc: robust where latency on a shared machine is not).
- through 1, 2 and 3 nodes: CLIENTS clients spread over the first N nodes; placement decides where each
  invoke runs (warm first, else least loaded), so this is the cluster as a client sees it.
- PostgreSQL rows written per warm invoke (issue 11: the warm synchronous path writes nothing), read from
  ``pg_stat_database`` around the forwarded rounds.

Targets alternate round by round, as in the other benches, so noise hits them alike.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import psycopg

from bench.common import (
    FULL_VCPU_MB,
    INVOKE_PATH,
    Endpoint,
    Load,
    Progress,
    Row,
    cpu_seconds,
    drive,
    lambdad_server,
    p50,
    p99,
)
from tests.brokers import POSTGRES
from tests.e2e.cluster_support import Cluster, cluster
from tests.support import Server, create_function

ROUNDS = 3
REQUESTS = 400  # per round, split between the clients
CLIENTS = 4
WARMUP = 60


def _endpoint(server: Server) -> Endpoint:
    assert server.process is not None
    return Endpoint(server.port, INVOKE_PATH.format(name="hello"), server.process.pid)


def _rows_written(database: str) -> int:
    """Rows inserted, updated and deleted in the cluster's tables, leaving out ``work_leases``, which every
    node renews each second whatever it runs."""
    with psycopg.connect(f"{POSTGRES}/{database}", autocommit=True) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        row = connection.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
            "WHERE relname <> 'work_leases'"
        ).fetchone()
    return int(row[0]) if row else 0


def _measure(
    targets: dict[str, list[Endpoint]], requests: int, progress: Progress, what: str, pids: dict[str, int]
) -> tuple[dict[str, Load], dict[str, dict[str, float]]]:
    """Each target's pooled rounds, and the CPU each process (``pids``, by name) spent per request."""
    loads = {name: Load() for name in targets}
    cpu = {name: dict.fromkeys(pids, 0.0) for name in targets}
    for endpoints in targets.values():
        drive(endpoints, WARMUP)
    for round_ in range(ROUNDS):
        for name, endpoints in targets.items():
            progress(f"cluster, {what}: round {round_ + 1}/{ROUNDS}, {name}...")
            before = {process: cpu_seconds(pid) for process, pid in pids.items()}
            load = drive(endpoints, requests // len(endpoints))
            for process, pid in pids.items():
                cpu[name][process] += (cpu_seconds(pid) - before[process]) / len(load.latencies) / ROUNDS
            loads[name].add(load)
    return loads, cpu


def run(progress: Progress) -> list[Row]:
    ms = 1000
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        progress("cluster: starting the embedded server and three nodes...")
        single = stack.enter_context(lambdad_server())
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lambdad-bench-cluster-")))
        c: Cluster = stack.enter_context(cluster(directory, "--spares", "0", nodes=3))
        create_function(single.client(), "hello", MemorySize=FULL_VCPU_MB)
        create_function(c["n1"].client(), "hello", MemorySize=FULL_VCPU_MB)
        embedded, n1, n2, n3 = (_endpoint(server) for server in (single, c["n1"], c["n2"], c["n3"]))

        # One environment, on n1 (an idle cluster starts it where the invoke arrives); the others hear.
        drive([n1], 1)
        time.sleep(1.5)
        before = _rows_written(c.name)
        pids = {"embedded": embedded.pid, "n1": n1.pid, "n2": n2.pid, "n3": n3.pid}
        one, cpu = _measure(
            {"embedded": [embedded], "local": [n1], "forwarded": [n2]}, REQUESTS, progress, "1 client", pids
        )
        time.sleep(1.0)  # pg_stat_database counts what backends reported: give them a moment
        written = _rows_written(c.name) - before
        invokes = sum(len(load.latencies) for load in one.values()) - len(one["embedded"].latencies)
        embedded_p50, local_p50, forwarded_p50 = (
            p50(one[k].latencies) * ms for k in ("embedded", "local", "forwarded")
        )
        rows += [
            Row(
                "cluster node, local, 1 client: p50",
                "embedded server (SQLite)",
                "ms",
                local_p50,
                embedded_p50,
            ),
            Row(
                "cluster node, local, 1 client: throughput",
                "embedded server (SQLite)",
                "req/s",
                one["local"].throughput,
                one["embedded"].throughput,
                higher_is_better=True,
            ),
            Row("forwarded (n2 -> n1), 1 client: p50", "local (n1)", "ms", forwarded_p50, local_p50),
            Row(
                "forwarded (n2 -> n1), 1 client: p99",
                "local (n1)",
                "ms",
                p99(one["forwarded"].latencies) * ms,
                p99(one["local"].latencies) * ms,
            ),
            Row(
                "forwarded (n2 -> n1), 1 client: throughput",
                "local (n1)",
                "req/s",
                one["forwarded"].throughput,
                one["local"].throughput,
                higher_is_better=True,
            ),
            Row(
                "forwarded: CPU of the forwarding node (n2) per invoke",
                "the running node's (n1), local",
                "ms",
                cpu["forwarded"]["n2"] * ms,
                cpu["local"]["n1"] * ms,
            ),
            Row(
                "forwarded: CPU of the running node (n1) per invoke",
                "the running node's (n1), local",
                "ms",
                cpu["forwarded"]["n1"] * ms,
                cpu["local"]["n1"] * ms,
            ),
            Row(
                "cluster node, local: CPU per invoke",
                "embedded server (SQLite)",
                "ms",
                cpu["local"]["n1"] * ms,
                cpu["embedded"]["embedded"] * ms,
            ),
            Row(
                f"PostgreSQL rows written per 1,000 warm cluster invokes ({invokes:,})",
                "none (issue 11)",
                "rows",
                written * 1000 / max(invokes, 1),
                None,
            ),
        ]

        spread = {
            "1 node": [n1] * CLIENTS,
            "2 nodes": [[n1, n2][i % 2] for i in range(CLIENTS)],
            "3 nodes": [[n1, n2, n3][i % 3] for i in range(CLIENTS)],
        }
        many, _ = _measure(spread, REQUESTS, progress, f"{CLIENTS} clients", pids)
        base = many["1 node"]
        for name in ("1 node", "2 nodes", "3 nodes"):
            load = many[name]
            rows += [
                Row(
                    f"{CLIENTS} clients through {name}: p50",
                    "through 1 node",
                    "ms",
                    p50(load.latencies) * ms,
                    p50(base.latencies) * ms,
                ),
                Row(
                    f"{CLIENTS} clients through {name}: throughput",
                    "through 1 node",
                    "req/s",
                    load.throughput,
                    base.throughput,
                    higher_is_better=True,
                ),
            ]
        warm = {node["NodeId"]: node["WarmEnvironments"] for node in c.view("n1")}
        rows.append(
            Row(
                "warm environments after the run",
                "",
                "",
                None,
                None,
                note=", ".join(f"{k}: {v}" for k, v in warm.items()),
            )
        )
        progress("cluster: SIGKILL a node, time until the others own its work...")
        rows.append(
            Row(
                "a dead node's work taken over (SIGKILL -> owned)",
                "the bound (15 s)",
                "s",
                _takeover(c),
                15.0,
            )
        )
    return rows


def _takeover(c: Cluster) -> float:
    """Seconds from SIGKILLing n3 until every Event-queue partition it owned is owned by n1 or n2."""
    owned = {node["NodeId"]: node["Owns"] for node in c.view("n1")}
    orphaned = set(owned["n3"].get("AsyncPartitions", []))
    killed = time.monotonic()
    c.kill("n3")
    while time.monotonic() - killed < 60:
        survivors = [node for node in c.view("n1") if node["NodeId"] in ("n1", "n2")]
        taken = {partition for node in survivors for partition in node["Owns"].get("AsyncPartitions", [])}
        if orphaned <= taken:
            return time.monotonic() - killed
        time.sleep(0.1)
    raise TimeoutError("n3's partitions were not taken over within 60 s")
