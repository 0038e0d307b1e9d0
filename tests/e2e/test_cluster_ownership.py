"""Work has exactly one owner across a cluster: event source mappings, schedules and the Event queue's
partitions spread over the nodes, show in every node's ``/_lambdad/nodes`` "Owns", and a SIGKILLed
node's work is taken over within 15 s.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from lambdad.cluster.ownership import desired_owner
from lambdad.events.ownership import WorkKind
from tests.e2e.cluster_support import Cluster, cluster
from tests.support import CREDENTIALS, create_function

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

REDIS = "redis://127.0.0.1:6379/0"
TAKE_OVER_BOUND = 15.0  # seconds from a kill until another node owns the dead node's work
KINDS = ("EventSourceMappings", "Schedules", "ProvisionedConcurrency", "AsyncPartitions")
PARTITIONS = [str(partition) for partition in range(16)]
ROLE = "arn:aws:iam::000000000000:role/scheduler-role"


def scheduler(c: Cluster, node: str) -> Any:
    return boto3.client(
        "scheduler",
        endpoint_url=c[node].endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **CREDENTIALS,
    )


def owners(c: Cluster, observer: str, kind: str) -> dict[str, list[str]]:
    """Who owns each key of ``kind``, as ``observer``'s view of the live nodes' heartbeats says."""
    found: dict[str, list[str]] = {}
    for node in c.view(observer):
        if node["State"] == "dead":
            continue
        for key in node["Owns"].get(kind, []):
            found.setdefault(key, []).append(node["NodeId"])
    return found


def overview(c: Cluster, node: str) -> list[dict[str, Any]]:
    """``GET /_lambdad/event-source-mappings`` on ``node``: its pollers' view of every mapping."""
    return list(c[node].own("/_lambdad/event-source-mappings")["EventSourceMappings"])


def wait_owned_once(
    c: Cluster,
    kind: str,
    keys: list[str],
    among: set[str],
    timeout: float,
    expected: dict[str, str] | None = None,
) -> dict[str, str]:
    """Wait until every node of ``among`` sees each key owned by exactly one node of ``among`` (by the
    owner ``expected`` says, if given)."""
    deadline = time.monotonic() + timeout
    last: dict[str, dict[str, list[str]]] = {}
    while time.monotonic() < deadline:
        views = {observer: owners(c, observer, kind) for observer in sorted(among)}
        last = views
        if all(
            all(len(view.get(key, [])) == 1 and view[key][0] in among for key in keys)
            for view in views.values()
        ):
            first = views[sorted(among)[0]]
            placed = {key: first[key][0] for key in keys}
            if all(view == first for view in views.values()) and expected in (None, placed):
                return placed
        time.sleep(0.2)
    raise AssertionError(f"{kind} never owned once each by {sorted(among)}: {last}")


def test_work_spreads_over_the_nodes_and_a_killed_nodes_work_is_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDAD_EVENT_SOURCES", f"redis={REDIS}")
    with cluster(tmp_path, "--spares", "0", nodes=3) as c:
        client = c["n1"].client()
        name = f"owned-{uuid.uuid4().hex[:8]}"
        create_function(client, name)
        arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
        mappings = [
            client.create_event_source_mapping(
                FunctionName=name,
                EventSourceArn=f"arn:aws:redis:us-east-1:000000000000:stream/own-{uuid.uuid4().hex[:8]}",
                StartingPosition="LATEST",
            )["UUID"]
            for _ in range(16)
        ]
        schedules = scheduler(c, "n2")
        names = [f"own-{index}" for index in range(16)]
        for schedule in names:
            schedules.create_schedule(
                Name=schedule,
                ScheduleExpression="rate(1 hour)",
                State="DISABLED",
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={"Arn": arn, "RoleArn": ROLE},
            )
        keys = {
            "EventSourceMappings": mappings,
            "Schedules": [f"000000000000/us-east-1/default/{schedule}" for schedule in names],
            "AsyncPartitions": PARTITIONS,
        }
        everyone = {"n1", "n2", "n3"}

        def rendezvous(kind: str, among: set[str]) -> dict[str, str]:
            """Where rendezvous hashing over ``among`` puts each key of ``kind``."""
            return {key: desired_owner(among, WorkKind(kind), key) for key in keys[kind]}

        placed = {
            kind: wait_owned_once(c, kind, wanted, everyone, 30, expected=rendezvous(kind, everyone))
            for kind, wanted in keys.items()
        }
        for kind, owner in placed.items():
            assert set(owner.values()) == everyone, (kind, Counter(owner.values()))
        for node in c.view("n1"):
            assert set(node["Owns"]) == set(KINDS)

        # Each mapping's poller runs on its owner only.
        for node in everyone:
            running = {m["UUID"] for m in overview(c, node) if m["Invocations"] or m["Connected"]}
            assert running <= {uuid for uuid, owner in placed["EventSourceMappings"].items() if owner == node}

        killed_at = time.monotonic()
        c.kill("n3")
        survivors = {"n1", "n2"}
        for kind, wanted in keys.items():
            left = TAKE_OVER_BOUND - (time.monotonic() - killed_at)
            after = wait_owned_once(c, kind, wanted, survivors, left, expected=rendezvous(kind, survivors))
            moved = {key for key, owner in placed[kind].items() if owner == "n3"}
            kept = {key for key in wanted if key not in moved}
            # Rendezvous hashing: only the dead node's keys move.
            assert all(after[key] == placed[kind][key] for key in kept), kind
        taken_over = time.monotonic() - killed_at
        print(f"\nthe killed node's work was owned by the survivors {taken_over:.1f} s after the kill")
        assert taken_over <= TAKE_OVER_BOUND

        # A node that joins takes its share back; nothing else moves.
        c.restart("n3")
        for kind, wanted in keys.items():
            wait_owned_once(c, kind, wanted, everyone, 30, expected=placed[kind])
