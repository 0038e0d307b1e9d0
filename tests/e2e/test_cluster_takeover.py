"""A node SIGKILLed while it runs its share of the cluster's work: nothing is lost.

- 5,000 Event invocations submitted through every node; the node owning some of their Event queue
  partitions is killed while they run: every event runs at least once (duplicates are counted, printed).
- The node owning an event source mapping (a Redis stream) is killed: another node resumes it within the
  bound, and every record reaches the function.
- A ``rate(1 minute)`` schedule (a minute of 2 s) across the kill of the node that fires it: each slot
  fires once, and firing resumes on another node.

Functions report to collectors in this test process (the host network), which outlive every kill.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from botocore.exceptions import BotoCoreError, ClientError

from lambdad.cluster.ownership import desired_owner
from lambdad.events.ownership import WorkKind
from lambdad.store.async_events import partition_of
from tests.brokers import POSTGRES
from tests.e2e.cluster_support import Cluster, cluster
from tests.e2e.invoke_support import deploy_python, unique
from tests.e2e.redis_support import COLLECTOR
from tests.e2e.test_async_durability import REPORTER, Collector, remove_empty_cgroups, wait_for
from tests.e2e.test_cluster_ownership import REDIS, ROLE, owners, scheduler

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

NODES = ("n1", "n2", "n3")
TAKE_OVER_BOUND = 15.0
EVENTS = 5_000
KILL_AT = 1_500  # distinct events processed when the node is killed
SUBMITTERS = 12
MINUTE = 2.0  # seconds of real time per rate minute


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as running:
        yield running


def partition_owner(c: Cluster, function: str) -> str | None:
    """The node owning ``function``'s Event queue partition, as n1 sees it (None: none, or several)."""
    found = owners(c, "n1", "AsyncPartitions").get(str(partition_of("us-east-1", function)), [])
    return found[0] if len(found) == 1 else None


def settled(c: Cluster, kind: str, keys: list[str], nodes: set[str]) -> bool:
    """Whether n1 sees every key owned by the node rendezvous hashing over ``nodes`` picks, once."""
    seen = owners(c, "n1", kind)
    return all(seen.get(key) == [desired_owner(nodes, WorkKind(kind), key)] for key in keys)


def queued(c: Cluster) -> int:
    with psycopg.connect(f"{POSTGRES}/{c.name}") as connection:
        row = connection.execute("SELECT count(*) FROM async_events").fetchone()
        return int(row[0]) if row else 0


def test_five_thousand_events_survive_the_sigkill_of_a_node_that_runs_them(
    tmp_path: Path, collector: Collector, record_property: Any
) -> None:
    with cluster(tmp_path, "--spares", "0", "--allow-host-network", nodes=3) as c:
        partitions = [str(partition) for partition in range(16)]
        wait_for(lambda: settled(c, "AsyncPartitions", partitions, set(NODES)), 30, "partitions placed")
        # One function per node (by who owns its partition), so every node runs events and one dies.
        functions: dict[str, str] = {}
        while len(functions) < len(NODES):
            name = f"durable-{uuid.uuid4().hex[:8]}"
            partition = str(partition_of("us-east-1", name))
            functions.setdefault(desired_owner(set(NODES), WorkKind.ASYNC_PARTITION, partition), name)
        for name in functions.values():
            deploy_python(
                c["n1"].client(),
                name,
                REPORTER,
                Environment={"Variables": {"COLLECTOR_PORT": str(collector.port)}},
                Tags={"lambdad:network": "host"},
            )
        names = [functions[node] for node in NODES]
        victim = "n2"
        local = threading.local()

        def submit(index: int) -> None:
            """Invoke through node index % 3, moving to the next node while one does not answer 202."""
            if not hasattr(local, "clients"):
                local.clients = {n: c[n].client(connect_timeout=2, read_timeout=10) for n in NODES}
            payload = json.dumps({"id": f"event-{index}"}).encode()
            deadline = time.monotonic() + 90
            attempt = 0
            while time.monotonic() < deadline:
                node = NODES[(index + attempt) % len(NODES)]
                try:
                    answer = local.clients[node].invoke(
                        FunctionName=names[index % len(names)], InvocationType="Event", Payload=payload
                    )
                    assert answer["StatusCode"] == 202
                    return
                except (BotoCoreError, ClientError):
                    attempt += 1
                    time.sleep(0.05)
            raise AssertionError(f"event-{index} was never accepted")

        started = time.monotonic()
        try:
            with ThreadPoolExecutor(SUBMITTERS) as pool:
                submitted = pool.map(submit, range(EVENTS))
                wait_for(lambda: collector.distinct() >= KILL_AT, 120, f"{KILL_AT} events processed")
                c.kill(victim)
                killed_at, processed_at_kill = time.monotonic(), collector.distinct()
                list(submitted)
            submit_seconds = time.monotonic() - started
            wait_for(lambda: collector.distinct() >= EVENTS, 150, "every event processed")
            all_seconds = time.monotonic() - started
            wait_for(lambda: queued(c) == 0, 30, "the queue to empty")
            taken_by = partition_owner(c, functions[victim])
            assert taken_by in set(NODES) - {victim}
        finally:
            for name in names:
                remove_empty_cgroups(name)

    ids = {f"event-{i}" for i in range(EVENTS)}
    with collector.lock:
        seen = Counter(collector.seen)
    missing = ids - set(seen)
    duplicates = sum(seen.values()) - len(seen)
    print(
        f"\n{EVENTS} events through 3 nodes, {victim} SIGKILLed after {processed_at_kill} processed: all "
        f"submitted in {submit_seconds:.1f} s, all processed in {all_seconds:.1f} s "
        f"({all_seconds - (killed_at - started):.1f} s after the kill); {duplicates} duplicate deliveries; "
        f"the victim's partition went to {taken_by}"
    )
    record_property("summary_duplicate_deliveries", duplicates)
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}"
    assert set(seen) == ids


def test_the_node_owning_a_mapping_is_killed_and_another_resumes_it_losing_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDAD_EVENT_SOURCES", f"redis={REDIS}")
    broker = redis.Redis.from_url(REDIS)
    stream, collected = f"own-{uuid.uuid4().hex[:8]}", f"batches-{uuid.uuid4().hex[:8]}"
    with cluster(tmp_path, "--spares", "0", "--allow-host-network", nodes=3) as c:
        client = c["n1"].client()
        name = unique("mapped")
        deploy_python(
            client,
            name,
            COLLECTOR,
            Tags={"lambdad:network": "host"},
            Environment={"Variables": {"REDIS_PORT": "6379", "COLLECT_KEY": collected}},
        )
        mapping = client.create_event_source_mapping(
            FunctionName=name,
            EventSourceArn=f"arn:aws:redis:us-east-1:000000000000:stream/{stream}",
            StartingPosition="TRIM_HORIZON",
            BatchSize=10,
        )["UUID"]
        wait_for(lambda: settled(c, "EventSourceMappings", [mapping], set(NODES)), 30, "its owner")
        victim = desired_owner(set(NODES), WorkKind.EVENT_SOURCE_MAPPING, mapping)
        observer = next(node for node in NODES if node != victim)

        def received() -> list[str]:
            return [item["data"] for raw in broker.lrange(collected, 0, -1) for item in json.loads(raw)]

        produced: list[str] = []
        stop = threading.Event()

        def produce() -> None:
            while not stop.is_set():
                data = json.dumps({"n": len(produced)})
                broker.xadd(stream, {"data": data})
                produced.append(data)
                time.sleep(0.02)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        try:
            wait_for(lambda: len(set(received())) >= 100, 60, "100 records through the mapping")
            c.kill(victim)
            killed_at, produced_at_kill = time.monotonic(), len(produced)
            moved = lambda: owners(c, observer, "EventSourceMappings").get(mapping, [victim])[0] != victim  # noqa: E731
            wait_for(moved, TAKE_OVER_BOUND + 5, "another owner")
            owned_after = time.monotonic() - killed_at
            wait_for(
                lambda: any(json.loads(d)["n"] >= produced_at_kill for d in received()),
                60,
                "delivery resumed",
            )
            resumed_after = time.monotonic() - killed_at
            time.sleep(1)
        finally:
            stop.set()
            producer.join()
        wait_for(lambda: set(received()) >= set(produced), 60, "every record delivered")
        remove_empty_cgroups(name)
    delivered = received()
    broker.delete(stream, collected)
    duplicates = len(delivered) - len(set(delivered))
    print(
        f"\n{len(produced)} records; mapping owner {victim} SIGKILLed after {produced_at_kill} produced: "
        f"owned by another node {owned_after:.1f} s after the kill, delivery resumed after "
        f"{resumed_after:.1f} s; {duplicates} duplicate deliveries"
    )
    assert set(delivered) == set(produced)
    assert owned_after <= TAKE_OVER_BOUND


def test_a_rate_schedule_fires_each_slot_once_across_the_kill_of_the_node_firing_it(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDAD_SCHEDULE_MINUTE_SECONDS", str(MINUTE))
    monkeypatch.setenv("LAMBDAD_SCHEDULE_TICK_SECONDS", "0.2")
    with cluster(tmp_path, "--spares", "0", "--allow-host-network", nodes=3) as c:
        name = unique("scheduled")
        deploy_python(
            c["n1"].client(),
            name,
            REPORTER,
            Environment={"Variables": {"COLLECTOR_PORT": str(collector.port)}},
            Tags={"lambdad:network": "host"},
        )
        schedule = unique("every")
        scheduler(c, "n1").create_schedule(
            Name=schedule,
            ScheduleExpression="rate(1 minute)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": f"arn:aws:lambda:us-east-1:000000000000:function:{name}",
                "RoleArn": ROLE,
                "Input": json.dumps({"id": "<aws.scheduler.scheduled-time>|<aws.scheduler.execution-id>"}),
            },
        )
        key = f"000000000000/us-east-1/default/{schedule}"  # account/region/group/name
        wait_for(lambda: settled(c, "Schedules", [key], set(NODES)), 30, "its owner")
        victim = desired_owner(set(NODES), WorkKind.SCHEDULE, key)
        observer = next(node for node in NODES if node != victim)

        def slots() -> dict[str, set[str]]:
            """Execution ids each slot's invocations carried."""
            fired: dict[str, set[str]] = {}
            with collector.lock:
                for identity in collector.seen:
                    slot, execution = identity.split("|")
                    fired.setdefault(slot, set()).add(execution)
            return fired

        wait_for(lambda: len(slots()) >= 3, 30, "three slots fired")
        c.kill(victim)
        fired_before = set(slots())
        wait_for(lambda: len(set(slots()) - fired_before) >= 3, 60, "three slots fired after the kill")
        c.restart(victim)  # the rejoining node takes its schedule back: still once per slot
        after_restart = set(slots())
        wait_for(lambda: len(set(slots()) - after_restart) >= 3, 60, "three slots fired after the restart")
        scheduler(c, observer).delete_schedule(Name=schedule)
        remove_empty_cgroups(name)
    fired = slots()
    twice = {slot: executions for slot, executions in fired.items() if len(executions) > 1}
    print(f"\n{len(fired)} slots fired across the kill and restart of {victim}; fired twice: {len(twice)}")
    assert not twice


def test_provisioned_concurrency_runs_on_its_owner_only_and_moves_when_the_owner_is_killed(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, "--spares", "0", nodes=3) as c:
        client = c["n1"].client()
        name = unique("provisioned")
        deploy_python(client, name, "def handler(event, context):\n    return event\n")
        version = client.publish_version(FunctionName=name)["Version"]
        arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
        client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
        )
        owner = desired_owner(set(NODES), WorkKind.PROVISIONED_CONCURRENCY, arn)
        wait_for(lambda: settled(c, "ProvisionedConcurrency", [arn], set(NODES)), 30, "its owner")

        def warm(observer: str) -> dict[str, int]:
            return {node["NodeId"]: node["WarmEnvironments"] for node in c.view(observer)}

        def status() -> str:
            config = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
            return str(config["Status"])

        last: list[Any] = []

        def provisioned() -> bool:
            last[:] = [status(), warm("n1"), owners(c, "n1", "ProvisionedConcurrency")]
            return last[0] == "READY" and last[1].get(owner) == 2

        try:
            wait_for(provisioned, 60, "provisioned on its owner")
        except AssertionError:
            raise AssertionError(f"not provisioned on {owner}: {last}") from None
        assert {node: count for node, count in warm("n1").items() if node != owner} == dict.fromkeys(
            set(NODES) - {owner}, 0
        )
        c.kill(owner)
        survivors = set(NODES) - {owner}
        observer = sorted(survivors)[0]
        client = c[observer].client()
        heir = desired_owner(survivors, WorkKind.PROVISIONED_CONCURRENCY, arn)
        killed_at = time.monotonic()
        wait_for(
            lambda: warm(observer).get(heir) == 2 and status() == "READY",
            60,
            "provisioned again on another node",
        )
        print(
            f"\nprovisioned concurrency moved from {owner} to {heir} in {time.monotonic() - killed_at:.1f} s"
        )
        assert status() == "READY"
        remove_empty_cgroups(name)
