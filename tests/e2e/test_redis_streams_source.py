"""Redis Streams event source mappings end to end: a real lambdad, a private redis-server, functions in
real sandboxes (host network, so they report what they received to Redis)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.invoke_support import deploy_python, eventually, unique
from tests.e2e.redis_support import COLLECTOR, PrivateRedis, ServerWithEnv, private_redis

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def server(broker: PrivateRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerWithEnv]:
    running = ServerWithEnv(
        tmp_path_factory.mktemp("lambdad") / "data",
        # The host network: the functions write what they received to the broker on the host's loopback.
        env={"LAMBDAD_EVENT_SOURCES": f"redis={broker.url}", "LAMBDAD_ALLOW_HOST_NETWORK": "1"},
    )
    running.start(timeout=60)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.stop(timeout=60)


def stream_arn(key: str) -> str:
    return f"arn:aws:redis:us-east-1:000000000000:stream/{key}"


def batches(broker: PrivateRedis, function: str) -> list[list[dict[str, Any]]]:
    return [json.loads(item) for item in broker.client().lrange(f"batches-{function}", 0, -1)]


def received(broker: PrivateRedis, function: str) -> list[str]:
    return [item["data"] for batch in batches(broker, function) for item in batch]


def fresh_function(server: ServerWithEnv, broker: PrivateRedis) -> str:
    """A collector of the test's own (its list starts empty)."""
    name = unique("redis-fn")
    deploy_python(
        server.client(),
        name,
        COLLECTOR,
        Tags={"lambdad:network": "host"},
        Environment={"Variables": {"REDIS_PORT": str(broker.port), "COLLECT_KEY": f"batches-{name}"}},
    )
    return name


def wait_state(client: Any, mapping_uuid: str, state: str, timeout: float = 20) -> dict[str, Any]:
    return eventually(
        lambda: (m := client.get_event_source_mapping(UUID=mapping_uuid))["State"] == state and m,
        timeout=timeout,
    )


def pending(broker: PrivateRedis, key: str, mapping_uuid: str) -> int:
    return int(broker.client().xpending(key, f"lambdad-{mapping_uuid}")["pending"])


def test_batches_are_delivered_in_order_and_acknowledged(server: ServerWithEnv, broker: PrivateRedis) -> None:
    client, function, key = server.client(), fresh_function(server, broker), f"s-{uuid.uuid4().hex[:8]}"
    for index in range(5):
        broker.client().xadd(key, {"data": json.dumps({"n": index})})
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(key),
        FunctionName=function,
        StartingPosition="TRIM_HORIZON",
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
    )
    assert mapping["State"] == "Creating"
    assert mapping["StateTransitionReason"] == "User action"
    wait_state(client, mapping["UUID"], "Enabled")
    eventually(lambda: len(received(broker, function)) == 5, timeout=30)
    assert [json.loads(d)["n"] for d in received(broker, function)] == [0, 1, 2, 3, 4]
    role = client.get_function_configuration(FunctionName=function)["Role"]
    assert {item["role"] for batch in batches(broker, function) for item in batch} == {role}
    eventually(lambda: pending(broker, key, mapping["UUID"]) == 0)
    assert eventually(
        lambda: client.get_event_source_mapping(UUID=mapping["UUID"])["LastProcessingResult"] == "OK"
    )
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_latest_starts_after_existing_entries(server: ServerWithEnv, broker: PrivateRedis) -> None:
    client, function, key = server.client(), fresh_function(server, broker), f"s-{uuid.uuid4().hex[:8]}"
    broker.client().xadd(key, {"data": "old"})
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(key), FunctionName=function, StartingPosition="LATEST"
    )
    wait_state(client, mapping["UUID"], "Enabled")
    broker.client().xadd(key, {"data": "new"})
    eventually(lambda: received(broker, function))
    assert received(broker, function) == ["new"]
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_filters_drop_records_that_match_no_pattern(server: ServerWithEnv, broker: PrivateRedis) -> None:
    client, function, key = server.client(), fresh_function(server, broker), f"s-{uuid.uuid4().hex[:8]}"
    for kind, amount in [("order", 5), ("refund", 3), ("order", 20), ("noise", 1)]:
        broker.client().xadd(key, {"data": json.dumps({"kind": kind, "amount": amount})})
    broker.client().xadd(key, {"data": "not json"})
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(key),
        FunctionName=function,
        StartingPosition="TRIM_HORIZON",
        FilterCriteria={
            "Filters": [
                {"Pattern": json.dumps({"data": {"kind": ["order"], "amount": [{"numeric": [">", 10]}]}})},
                {"Pattern": json.dumps({"data": {"kind": [{"prefix": "ref"}]}})},
            ]
        },
    )
    wait_state(client, mapping["UUID"], "Enabled")
    eventually(lambda: pending(broker, key, mapping["UUID"]) == 0 and received(broker, function), timeout=30)
    time.sleep(1)
    kept = [json.loads(d) for d in received(broker, function)]
    assert kept == [{"kind": "refund", "amount": 3}, {"kind": "order", "amount": 20}]
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_partial_batch_failure_retries_from_the_first_failed_record(
    server: ServerWithEnv, broker: PrivateRedis
) -> None:
    client, function, key = server.client(), fresh_function(server, broker), f"s-{uuid.uuid4().hex[:8]}"
    destination = f"dlq-{uuid.uuid4().hex[:8]}"
    ids = [
        broker.client().xadd(key, {"data": json.dumps(body)})
        for body in ({"n": 0}, {"n": 1, "fail": "item"}, {"n": 2})
    ]
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(key),
        FunctionName=function,
        StartingPosition="TRIM_HORIZON",
        BatchSize=3,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": stream_arn(destination)}},
    )
    wait_state(client, mapping["UUID"], "Enabled")
    failure = eventually(lambda: broker.client().xrange(destination), timeout=30)
    seen = [[item["id"] for item in batch] for batch in batches(broker, function)]
    # The first invocation has all three; the retry starts at the failed record (AWS's checkpoint).
    assert seen[0] == ids
    assert seen[1] == ids[1:]
    record = json.loads(failure[0][1]["data"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["RedisStreamBatchInfo"]["startSequenceNumber"] == ids[1]
    assert record["RedisStreamBatchInfo"]["endSequenceNumber"] == ids[2]
    assert record["RedisStreamBatchInfo"]["streamArn"] == stream_arn(key)
    assert failure[0][1]["ErrorCode"] == "RetryAttemptsExhausted"
    eventually(lambda: pending(broker, key, mapping["UUID"]) == 0)
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_bisecting_isolates_a_poison_record_and_sends_it_on_failure(
    server: ServerWithEnv, broker: PrivateRedis
) -> None:
    client, function, key = server.client(), fresh_function(server, broker), f"s-{uuid.uuid4().hex[:8]}"
    destination = f"dlq-{uuid.uuid4().hex[:8]}"
    bodies = [{"n": 0}, {"n": 1}, {"n": 2, "fail": "always"}, {"n": 3}]
    ids = [broker.client().xadd(key, {"data": json.dumps(body)}) for body in bodies]
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(key),
        FunctionName=function,
        StartingPosition="TRIM_HORIZON",
        BatchSize=4,
        MaximumBatchingWindowInSeconds=1,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": stream_arn(destination)}},
    )
    wait_state(client, mapping["UUID"], "Enabled")
    failure = eventually(lambda: broker.client().xrange(destination), timeout=30)
    record = json.loads(failure[0][1]["data"])
    info = record["RedisStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (ids[2], ids[2], 1)
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["version"] == "1.0"
    eventually(lambda: pending(broker, key, mapping["UUID"]) == 0)
    seen = [[item["id"] for item in batch] for batch in batches(broker, function)]
    # 4 -> 2 + 2 -> the failing half splits again: [n2] alone fails, [n3] succeeds.
    assert seen == [ids, ids[:2], ids[2:], [ids[2]], [ids[3]]]
    assert len(broker.client().xrange(destination)) == 1
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_disabled_mapping_stops_delivering_until_enabled(server: ServerWithEnv, broker: PrivateRedis) -> None:
    client, function, key = server.client(), fresh_function(server, broker), f"s-{uuid.uuid4().hex[:8]}"
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(key), FunctionName=function, StartingPosition="LATEST"
    )
    wait_state(client, mapping["UUID"], "Enabled")
    disabled = client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    assert disabled["State"] == "Disabling"
    wait_state(client, mapping["UUID"], "Disabled")
    broker.client().xadd(key, {"data": "while disabled"})
    time.sleep(2)
    assert received(broker, function) == []
    assert client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)["State"] == "Enabling"
    wait_state(client, mapping["UUID"], "Enabled")
    eventually(lambda: received(broker, function) == ["while disabled"], timeout=20)
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_mapping_survives_a_broker_restart(server: ServerWithEnv, broker: PrivateRedis) -> None:
    client, function, key = server.client(), fresh_function(server, broker), f"s-{uuid.uuid4().hex[:8]}"
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(key), FunctionName=function, StartingPosition="TRIM_HORIZON"
    )
    wait_state(client, mapping["UUID"], "Enabled")
    broker.client().xadd(key, {"data": "before"})
    eventually(lambda: received(broker, function) == ["before"], timeout=20)
    broker.stop()
    try:

        def says_why() -> bool:
            rows = server.own("/_lambdad/event-source-mappings", timeout=5)["EventSourceMappings"]
            row = next(r for r in rows if r["UUID"] == mapping["UUID"])
            return row["State"] == "Enabled" and "unreachable" in (row["LastError"] or "")

        eventually(says_why, timeout=20)
    finally:
        broker.start()
    broker.client().xadd(key, {"data": "after"})
    eventually(lambda: received(broker, function) == ["before", "after"], timeout=40)
    assert client.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled"
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_mapping_resumes_after_a_server_restart_with_nothing_lost(
    server: ServerWithEnv, broker: PrivateRedis, tmp_path: Path
) -> None:
    client, function, key = server.client(), fresh_function(server, broker), f"s-{uuid.uuid4().hex[:8]}"
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(key), FunctionName=function, StartingPosition="TRIM_HORIZON", BatchSize=1
    )
    wait_state(client, mapping["UUID"], "Enabled")
    broker.client().xadd(key, {"data": "first"})
    eventually(lambda: received(broker, function) == ["first"], timeout=20)
    server.stop(timeout=60)
    for index in range(3):
        broker.client().xadd(key, {"data": f"while down {index}"})
    server.start(timeout=60)
    client = server.client()
    assert client.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled"
    eventually(lambda: len(received(broker, function)) == 4, timeout=40)
    assert received(broker, function) == ["first", "while down 0", "while down 1", "while down 2"]
    client.delete_event_source_mapping(UUID=mapping["UUID"])
    eventually(
        lambda: not client.list_event_source_mappings(EventSourceArn=stream_arn(key))["EventSourceMappings"]
    )


def test_records_past_their_maximum_age_go_to_the_destination_unsent(
    server: ServerWithEnv, broker: PrivateRedis
) -> None:
    client, function, key = server.client(), fresh_function(server, broker), f"s-{uuid.uuid4().hex[:8]}"
    destination = f"dlq-{uuid.uuid4().hex[:8]}"
    two_hours_ago = int((time.time() - 7200) * 1000)
    old = [broker.client().xadd(key, {"data": f"old {i}"}, id=f"{two_hours_ago}-{i}") for i in range(2)]
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(key),
        FunctionName=function,
        StartingPosition="TRIM_HORIZON",
        MaximumRecordAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": stream_arn(destination)}},
    )
    wait_state(client, mapping["UUID"], "Enabled")
    broker.client().xadd(key, {"data": "fresh"})
    eventually(lambda: received(broker, function) == ["fresh"], timeout=30)
    (entry,) = broker.client().xrange(destination)
    record = json.loads(entry[1]["data"])
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    info = record["RedisStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (old[0], old[1], 2)
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_deleting_a_mapping_destroys_its_consumer_group_and_keeps_the_stream(
    server: ServerWithEnv, broker: PrivateRedis
) -> None:
    client, function, key = server.client(), fresh_function(server, broker), f"s-{uuid.uuid4().hex[:8]}"
    broker.client().xadd(key, {"data": "kept"})
    mapping = client.create_event_source_mapping(
        EventSourceArn=stream_arn(key), FunctionName=function, StartingPosition="TRIM_HORIZON"
    )
    wait_state(client, mapping["UUID"], "Enabled")
    eventually(lambda: received(broker, function) == ["kept"], timeout=30)

    def groups() -> set[str]:
        return {group["name"] for group in broker.client().xinfo_groups(key)}

    assert groups() == {f"lambdad-{mapping['UUID']}"}
    client.delete_event_source_mapping(UUID=mapping["UUID"])

    def gone() -> bool:
        try:
            client.get_event_source_mapping(UUID=mapping["UUID"])
        except client.exceptions.ResourceNotFoundException:
            return True
        return False

    eventually(gone, timeout=20)
    assert groups() == set()
    assert [fields for _, fields in broker.client().xrange(key)] == [{"data": "kept"}]
