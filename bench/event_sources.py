"""Event sources: events per second through a no-op function, against the broker's own rate.

For each source, the same run measures (a) lambdad: publish N messages, then wait until the mapping's
poller has had them all processed by a function that does nothing (counted by the server's
``/_lambdad/event-source-mappings`` view), and (b) the broker alone: publish N messages and consume and
acknowledge them with the broker's own client. Both include publishing, so the ratio is what the poller,
the invoke and the sandbox cost on top of the broker.

Adding a source is one ``SourceCase``: a fresh ARN, a publish-N callable and a raw-consume callable
(see ``redis_case``; RabbitMQ, SQS and MQTT take theirs from ``bench.brokers``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.brokers import mqtt as brokers_mqtt
from bench.brokers import nats as brokers_nats
from bench.brokers import postgresql as brokers_postgresql
from bench.brokers import rabbitmq as brokers_rabbitmq
from bench.brokers import sqs as brokers_sqs
from bench.common import FULL_VCPU_MB, Progress, Row, lambdad_server
from tests.support import create_function, make_zip

MESSAGES = 3000
WARMUP = 50
NO_OP = "def handler(event, context):\n    return None\n"
REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class SourceCase:
    """One source to measure."""

    name: str
    # ARN service and endpoint, passed to the server as LAMBDAD_EVENT_SOURCES.
    service: str
    endpoint: str
    # A fresh source ARN (a new stream, queue...), and how to remove it afterwards.
    new_arn: Callable[[], str]
    # Publish N small messages to the ARN.
    publish: Callable[[str, int], None]
    # The broker alone: seconds to publish N messages to a fresh ARN and consume (ack) them all.
    raw_seconds: Callable[[int], float]
    remove: Callable[[str], None] = lambda arn: None
    # CreateEventSourceMapping's other parameters for this kind.
    mapping: dict[str, Any] = field(default_factory=dict)
    # Parameters that depend on the ARN (Amazon MQ's broker ARN and Queues), EventSourceArn included.
    params: Callable[[str], dict[str, Any]] | None = None
    # Messages per measurement (moto's SQS and Mosquitto's offline queue want fewer).
    messages: int = MESSAGES
    # Stops whatever the case started (a moto server).
    close: Callable[[], None] = lambda: None


def redis_case() -> SourceCase:
    """Redis Streams: XADD in a pipeline; the raw rate is XREADGROUP + XACK in batches of 100."""
    client = redis.Redis.from_url(REDIS_URL)

    def new_arn() -> str:
        return f"arn:aws:redis:us-east-1:000000000000:stream/bench-{uuid.uuid4().hex[:8]}"

    def key(arn: str) -> str:
        return arn.split(":stream/", 1)[1]

    def publish(arn: str, count: int) -> None:
        pipe = client.pipeline(transaction=False)
        for index in range(count):
            pipe.xadd(key(arn), {"data": json.dumps({"n": index})})
            if index % 500 == 499:
                pipe.execute()
        pipe.execute()

    def raw_seconds(count: int) -> float:
        arn = new_arn()
        start = time.perf_counter()
        publish(arn, count)
        client.xgroup_create(key(arn), "raw", id="0", mkstream=True)
        seen = 0
        while seen < count:
            answer = client.xreadgroup("raw", "c", {key(arn): ">"}, count=100, block=1000)
            entries = answer[0][1] if answer else []
            if entries:
                client.xack(key(arn), "raw", *[entry_id for entry_id, _ in entries])
            seen += len(entries)
        elapsed = time.perf_counter() - start
        client.delete(key(arn))
        return elapsed

    return SourceCase(
        name="Redis Streams",
        service="redis",
        endpoint=REDIS_URL,
        new_arn=new_arn,
        publish=publish,
        raw_seconds=raw_seconds,
        remove=lambda arn: client.delete(key(arn)),  # type: ignore[arg-type,return-value]
        mapping={"StartingPosition": "TRIM_HORIZON", "BatchSize": 100},
    )


def _broker_case(name: str, service: str, module: Any, endpoint: str, **extra: Any) -> SourceCase:
    """A case from a ``bench.brokers`` module (the same functions in each)."""
    return SourceCase(
        name=name,
        service=service,
        endpoint=endpoint,
        new_arn=module.new_arn,
        publish=module.publish_many,
        raw_seconds=module.raw_seconds,
        remove=module.remove,
        params=module.mapping_params,
        **extra,
    )


def rabbitmq_case() -> SourceCase:
    """RabbitMQ: confirmed persistent publishes; the raw rate is aio-pika consuming with prefetch 100."""
    return _broker_case("RabbitMQ", "mq", brokers_rabbitmq, brokers_rabbitmq.ENDPOINT)


def sqs_case() -> SourceCase:
    """SQS on moto's server: SendMessageBatch; the raw rate is ReceiveMessage + DeleteMessageBatch."""
    endpoint = brokers_sqs.start()
    return _broker_case(
        "SQS (moto)", "sqs", brokers_sqs, endpoint, messages=brokers_sqs.MESSAGES, close=brokers_sqs.stop
    )


def mqtt_case() -> SourceCase:
    """MQTT on Mosquitto: QoS 1 publishes; the raw rate is a paho QoS 1 subscriber."""
    return _broker_case("MQTT", "mqtt", brokers_mqtt, brokers_mqtt.ENDPOINT, messages=brokers_mqtt.MESSAGES)


def nats_case() -> SourceCase:
    """NATS JetStream: async publishes; the raw rate is a pull consumer acknowledging each message."""
    return _broker_case("NATS JetStream", "nats", brokers_nats, brokers_nats.ENDPOINT)


def postgresql_case() -> SourceCase:
    """PostgreSQL row changes: INSERTs in transactions of 100; the raw rate reads the rows back in order."""
    return _broker_case(
        "PostgreSQL row changes", "postgresql", brokers_postgresql, brokers_postgresql.endpoint()
    )


# Each entry makes one row; other sources add theirs here.
CASES: list[Callable[[], SourceCase]] = [
    redis_case,
    nats_case,
    postgresql_case,
    rabbitmq_case,
    sqs_case,
    mqtt_case,
]


def run(progress: Progress) -> list[Row]:
    cases = [make() for make in CASES]
    rows: list[Row] = []
    with contextlib.ExitStack() as cleanup:
        for case in cases:
            cleanup.callback(case.close)
        rows = _measure(cases, progress)
    return rows


def _measure(cases: list[SourceCase], progress: Progress) -> list[Row]:
    rows: list[Row] = []
    with _event_sources(cases), lambdad_server() as server:
        client = server.client()
        create_function(
            client, "no-op", MemorySize=FULL_VCPU_MB, Code={"ZipFile": make_zip({"handler.py": NO_OP})}
        )
        for case in cases:
            progress(f"event sources: {case.name} through lambdad...")
            ours = _through_lambdad(server.endpoint, client, case)
            progress(f"event sources: {case.name} alone...")
            theirs = case.messages / case.raw_seconds(case.messages)
            rows.append(
                Row(
                    f"{case.name}: events/s through a no-op function",
                    f"{case.name} publish+consume",
                    "events/s",
                    ours,
                    theirs,
                    higher_is_better=True,
                )
            )
    return rows


def _through_lambdad(endpoint: str, client: Any, case: SourceCase) -> float:
    arn = case.new_arn()
    params = case.params(arn) if case.params else {"EventSourceArn": arn}
    mapping = client.create_event_source_mapping(FunctionName="no-op", **{**case.mapping, **params})
    try:
        _wait(lambda: client.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled")
        case.publish(arn, WARMUP)
        _wait(lambda: _delivered(endpoint, mapping["UUID"]) >= WARMUP)
        start = time.perf_counter()
        case.publish(arn, case.messages)
        _wait(lambda: _delivered(endpoint, mapping["UUID"]) >= WARMUP + case.messages, timeout=300)
        return case.messages / (time.perf_counter() - start)
    finally:
        client.delete_event_source_mapping(UUID=mapping["UUID"])
        case.remove(arn)


def _delivered(endpoint: str, mapping_uuid: str) -> int:
    with urllib.request.urlopen(f"{endpoint}/_lambdad/event-source-mappings", timeout=10) as answer:
        rows = json.load(answer)["EventSourceMappings"]
    return sum(int(row["Delivered"]) for row in rows if row["UUID"] == mapping_uuid)


def _wait(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("event source benchmark: condition not met in time")
        time.sleep(0.02)


@contextlib.contextmanager
def _event_sources(cases: list[SourceCase]) -> Iterator[None]:
    """Point the server's LAMBDAD_EVENT_SOURCES at the cases' brokers while it starts."""
    before = os.environ.get("LAMBDAD_EVENT_SOURCES")
    os.environ["LAMBDAD_EVENT_SOURCES"] = ",".join(f"{case.service}={case.endpoint}" for case in cases)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("LAMBDAD_EVENT_SOURCES", None)
        else:
            os.environ["LAMBDAD_EVENT_SOURCES"] = before
