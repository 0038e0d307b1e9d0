"""What a cluster costs its engines, per unit: the figures behind docs/cluster.md's capacity model.

``python -m bench.cluster_costs [NODES]`` starts NODES real nodes (default 2) on a PostgreSQL database
and a NATS server of its own, then measures, from PostgreSQL's counters for that database
(``pg_stat_database``) and the NATS server's (``/varz``): an idle cluster per second, 500 warm invokes,
2,000 Event invocations from 8 clients, and 20 configuration updates. Every window includes the idle
cost of its duration, printed alongside so that it can be taken off. Not part of ``make bench``: these
are absolute counts to scale by the model's formulas, not ratios to a baseline.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from tests.brokers import POSTGRES, BrokerProcess
from tests.e2e.cluster_support import Cluster, cluster
from tests.e2e.invoke_support import deploy_python, eventually, unique
from tests.support import free_port

ECHO = "def handler(event, context):\n    return event\n"


def _nats_counters(monitor: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/varz", timeout=5) as answer:
        varz = json.load(answer)
    return {key: int(varz[key]) for key in ("in_msgs", "out_msgs", "in_bytes", "out_bytes")}


def _pg_counters(database: str) -> dict[str, int]:
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        row = admin.execute(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
            "WHERE datname = %s",
            (database,),
        ).fetchone()
        connections = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()
    assert row is not None and connections is not None
    return {
        "transactions": row[0],
        "inserted": row[1],
        "updated": row[2],
        "deleted": row[3],
        "connections": connections[0],
    }


def _window(c: Cluster, monitor: int, action: Callable[[], None]) -> tuple[float, dict[str, Any]]:
    """Seconds ``action`` took and what PostgreSQL and NATS counted meanwhile."""
    time.sleep(0.5)
    pg, nats, started = _pg_counters(c.name), _nats_counters(monitor), time.monotonic()
    action()
    time.sleep(1.0)  # PostgreSQL publishes its counters about every second
    pg_after, nats_after, seconds = _pg_counters(c.name), _nats_counters(monitor), time.monotonic() - started
    counts: dict[str, Any] = {k: pg_after[k] - pg[k] for k in pg if k != "connections"}
    counts["connections"] = pg_after["connections"]
    counts.update({f"nats_{k}": nats_after[k] - nats[k] for k in nats})
    return seconds, counts


def measure(nodes: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="lambdad-cluster-costs-"))
    (home / "nats").mkdir()
    port, monitor = free_port(), free_port()
    nats = BrokerProcess(
        [
            "nats-server",
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            str(monitor),
            "-sd",
            str(home / "nats"),
        ],
        port,
    ).start()
    try:
        with cluster(home, "--spares", "0", nodes=nodes, nats_url=f"nats://127.0.0.1:{port}") as c:
            client = c["n1"].client()
            name = unique("cost")
            deploy_python(client, name, ECHO)
            for node in c.nodes:
                c[node].client().invoke(FunctionName=name, Payload=b"{}")

            def idle() -> None:
                time.sleep(20)

            def warm() -> None:
                for _ in range(500):
                    client.invoke(FunctionName=name, Payload=b'{"x": 1}')

            def events() -> None:
                clients = [c["n1"].client() for _ in range(8)]
                payload = json.dumps({"pad": "x" * 900}).encode()  # ~1 KB

                def send(i: int) -> None:
                    clients[i % 8].invoke(FunctionName=name, InvocationType="Event", Payload=payload)

                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(send, range(2000)))
                with psycopg.connect(f"{POSTGRES}/{c.name}", autocommit=True) as db:
                    eventually(
                        lambda: db.execute("SELECT count(*) FROM async_events").fetchone() == (0,),
                        timeout=300,
                        interval=0.2,
                    )

            def changes() -> None:
                for i in range(20):
                    client.update_function_configuration(FunctionName=name, Description=f"change {i}")
                    client.get_waiter("function_updated_v2").wait(
                        FunctionName=name, WaiterConfig={"Delay": 0.2}
                    )

            for what, action in (
                ("idle", idle),
                ("500 warm invokes", warm),
                ("2,000 Event invocations (8 clients, ~1 KB)", events),
                ("20 configuration updates (with their waiters)", changes),
            ):
                seconds, counts = _window(c, monitor, action)
                print(f"{nodes} nodes, {what}: {seconds:.1f} s: {counts}")
    finally:
        nats.cleanup()


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
