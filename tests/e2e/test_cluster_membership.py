"""Nodes join, see each other, leave, die and come back; a node that cannot join says why and exits."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.brokers import POSTGRES
from tests.e2e.cluster_support import Cluster, cluster
from tests.support import LAMBDAD, ROLE, free_port, make_zip

pytestmark = pytest.mark.timeout(180)


def _serve(c: Cluster, node_id: str, tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    """Run a node that is expected to refuse to start."""
    port = free_port()
    args = c.node_args(node_id, port)
    for flag, value in overrides.items():
        args[args.index(f"--{flag.replace('_', '-')}") + 1] = value
    return subprocess.run(
        [str(LAMBDAD), "serve", "--port", str(port), "--data-dir", str(tmp_path / node_id), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_node_sees_the_same_nodes_and_a_dead_one_goes_from_suspect_to_dead(tmp_path: Path) -> None:
    with cluster(tmp_path, "--spares", "0", nodes=3) as c:
        for observer in ("n1", "n2", "n3"):
            nodes = c.view(observer)
            assert [node["NodeId"] for node in nodes] == ["n1", "n2", "n3"]
            for node in nodes:
                assert node["Url"] == c[node["NodeId"]].endpoint
                assert set(node) >= {
                    "NodeId",
                    "Url",
                    "State",
                    "LastHeartbeat",
                    "WarmEnvironments",
                    "BusyEnvironments",
                    "RunningInvocations",
                    "CapacityProvider",
                    "Owns",
                }
        c.kill("n3")
        c.wait_states({"n3": "suspect"}, timeout=10)
        c.wait_states({"n3": "dead"}, timeout=15)
        c.restart("n3")
        c.wait_states({"n1": "live", "n2": "live", "n3": "live"})
        c["n2"].stop()  # a clean stop leaves at once
        c.wait_states({"n2": "gone"}, timeout=5)
        listed = subprocess.run(
            [str(LAMBDAD), "nodes", "--endpoint", c["n1"].endpoint],
            env=c["n1"].cli_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listed.returncode == 0 and "n1" in listed.stdout and "n3" in listed.stdout


def test_a_node_that_cannot_join_says_why_in_one_line_and_exits(tmp_path: Path) -> None:
    with cluster(tmp_path, "--spares", "0", nodes=1) as c:
        refusals = {
            "node id in use": (_serve(c, "n1", tmp_path), "node id 'n1' is already live"),
            "no NATS": (_serve(c, "n9", tmp_path, nats_url="nats://127.0.0.1:1"), "NATS is unreachable"),
            "no PostgreSQL": (
                _serve(c, "n9", tmp_path, database_url="postgresql+psycopg://postgres@127.0.0.1:1/x"),
                "PostgreSQL is unreachable",
            ),
        }
        with psycopg.connect(f"{POSTGRES}/{c.name}", autocommit=True) as connection:
            revisions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
            connection.execute("INSERT INTO alembic_version VALUES ('f00dfeedbeef')")
            refusals["newer schema"] = (_serve(c, "n9", tmp_path), "newer than this lambdad's")
            connection.execute("DELETE FROM alembic_version")
            connection.execute("INSERT INTO alembic_version VALUES (%s)", (revisions[0],))
            if len(revisions) > 1:
                refusals["older schema"] = (_serve(c, "n9", tmp_path), "run `lambdad migrate")
            connection.execute("DELETE FROM alembic_version")
            for revision in revisions:
                connection.execute("INSERT INTO alembic_version VALUES (%s)", (revision,))
        for what, (run, words) in refusals.items():
            assert run.returncode == 1, (what, run.stdout, run.stderr)
            said = " ".join(run.stderr.split())
            assert words in said, (what, said)
            assert "Traceback" not in run.stderr + run.stdout, what


def test_a_function_a_dead_node_left_pending_is_settled_by_a_survivor(tmp_path: Path) -> None:
    with cluster(tmp_path, "--spares", "0", nodes=3) as c:
        client = c["n1"].client()
        name = "left-pending"
        client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": make_zip()},
        )
        client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
        # As if n1 died between committing the create and settling it: the record says Pending.
        with psycopg.connect(f"{POSTGRES}/{c.name}", autocommit=True) as connection:
            connection.execute(
                "UPDATE function_versions SET config = "
                "jsonb_set(config::jsonb, '{state}', '\"Pending\"')::json WHERE function_name = %s",
                (name,),
            )
        assert c["n2"].client().get_function_configuration(FunctionName=name)["State"] == "Pending"
        c.kill("n1")
        deadline = time.monotonic() + 30
        while c["n3"].client().get_function_configuration(FunctionName=name)["State"] != "Active":
            assert time.monotonic() < deadline, "nobody settled the function n1 left Pending"
            time.sleep(0.5)
