"""The durable Event queue on a real platform (store, invoker, functions running as processes): storing
before answering, retries, destinations through a source kind, dead-letter messages, unreachable
destinations, and resuming events other processes held.

Queue destinations need a source kind; the one here appends to a list, standing in for a broker at the
edge (the SQS, RabbitMQ... kinds have end-to-end tests of their own).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from lambdad.app import Platform
from lambdad.events.asynchronous import EventQueue
from lambdad.events.sources import NumberAttribute, SourceKind, SourceSpec, SourceUnavailable
from lambdad.invocation import InvokeRequest
from lambdad.models import FunctionState, Scope, utcnow
from lambdad.services.event_invoke_configs import EventInvokeSettings
from lambdad.settings import Settings
from lambdad.store import async_events as store
from lambdad.store import function_configs as config_records
from lambdad.store.async_events import NewEvent
from lambdad.store.function_configs import EventInvokeConfig
from tests.support import ROLE, free_port, make_zip

SCOPE = Scope("000000000000", "us-east-1")
QUEUE = "arn:aws:sqs:us-east-1:000000000000:destination"
DEAD_LETTERS = "arn:aws:sqs:us-east-1:000000000000:dead-letters"
HANDLER = """
import time


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise Exception("intentional failure")
    return {"echo": event}
"""


class ListKind:
    """A source kind whose ``publish`` appends to a list; the first ``failures`` publishes find the
    broker unreachable."""

    service = "sqs"

    def __init__(self, failures: int = 0) -> None:
        self.published: list[tuple[str, str, Any, dict[str, str]]] = []
        self.failures = failures

    def validate(self, spec: SourceSpec) -> None:
        pass

    def source(self, spec: SourceSpec) -> Any:
        raise NotImplementedError

    async def publish(
        self, arn: str, endpoint: str, body: bytes, attributes: Mapping[str, str] | None = None
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise SourceUnavailable("connection refused")
        self.published.append((arn, endpoint, json.loads(body), dict(attributes or {})))


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(
        data_dir=tmp_path / "data",
        sandbox="process",
        spares=0,
        port=free_port(),
        runtimes_dir=os.environ.get("LAMBDAD_RUNTIMES_DIR", "/tmp/lambdad-test-runtimes"),
    )
    opened = Platform.open(settings)
    yield opened
    opened.activator.close()
    opened.database.dispose()


def deploy(platform: Platform, **params: Any) -> str:
    name = f"async-{uuid.uuid4().hex[:8]}"
    platform.services.functions.create(
        SCOPE,
        {
            "FunctionName": name,
            "Runtime": "python3.12",
            "Role": ROLE,
            "Handler": "handler.handler",
            "Code": {"ZipFile": make_zip({"handler.py": HANDLER})},
            **params,
        },
    )
    deadline = time.monotonic() + 120
    while platform.services.functions.get(SCOPE, name).state is not FunctionState.ACTIVE:
        assert time.monotonic() < deadline, "the function did not become Active"
        time.sleep(0.05)
    return name


def configure(platform: Platform, name: str, **settings: Any) -> None:
    platform.services.event_invoke_configs.put(SCOPE, name, EventInvokeSettings(**settings))


def queue_of(platform: Platform, kind: SourceKind | None = None, **options: Any) -> EventQueue:
    kinds = {"sqs": kind} if kind else {}
    return EventQueue(
        platform.database,
        platform.services.invoker,
        retry_delays=options.pop("retry_delays", (0.1, 0.1)),
        throttle_backoff_max=options.pop("throttle_backoff_max", 0.2),
        event_sources={"sqs": "memory://destinations"},
        poll_interval=0.05,
        kinds=lambda arn: kinds.get(arn.split(":")[2]),
        **options,
    )


def run(platform: Platform, scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``scenario`` on an event loop, then stop the platform's environments on the same loop."""

    async def main() -> Any:
        try:
            return await scenario()
        finally:
            await platform.pool.close()
            await platform.sandboxes.close()

    return asyncio.run(main())


async def until(condition: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
    return value


def request(name: str, event: Any) -> InvokeRequest:
    return InvokeRequest(SCOPE, name, None, json.dumps(event).encode(), str(uuid.uuid4()))


def stored(platform: Platform) -> int:
    with platform.database.read() as connection:
        return store.count(connection)


def test_submit_returns_once_the_event_is_stored(platform: Platform) -> None:
    queue = queue_of(platform)
    sent = request("not-run-yet", {"n": 1})

    async def scenario() -> None:
        await queue.submit(sent)
        await queue.close()

    run(platform, scenario)
    with platform.database.read() as connection:
        event = store.get_event(connection, sent.request_id)
    assert event is not None and event.payload == b'{"n": 1}' and event.function_name == "not-run-yet"


def test_a_success_record_reaches_a_queue_destination_through_its_source_kind(platform: Platform) -> None:
    name = deploy(platform)
    configure(platform, name, destination_config={"OnSuccess": {"Destination": QUEUE}})
    kind = ListKind()
    queue = queue_of(platform, kind)
    sent = request(name, {"n": 1})

    async def scenario() -> None:
        await queue.start()
        await queue.submit(sent)
        await until(lambda: kind.published and stored(platform) == 0)
        await queue.close()

    run(platform, scenario)
    [(arn, endpoint, record, attributes)] = kind.published
    assert (arn, endpoint, attributes) == (QUEUE, "memory://destinations", {})
    assert record["requestContext"] == {
        "requestId": sent.request_id,
        "functionArn": SCOPE.function_arn(name, "$LATEST"),
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"echo": {"n": 1}}


def test_failures_are_retried_then_recorded_and_dead_lettered(platform: Platform) -> None:
    name = deploy(platform, DeadLetterConfig={"TargetArn": DEAD_LETTERS})
    configure(
        platform, name, maximum_retry_attempts=1, destination_config={"OnFailure": {"Destination": QUEUE}}
    )
    kind = ListKind()
    queue = queue_of(platform, kind)
    sent = request(name, {"fail": True})

    async def scenario() -> None:
        await queue.start()
        await queue.submit(sent)
        await until(lambda: len(kind.published) == 2 and stored(platform) == 0)
        await queue.close()

    run(platform, scenario)
    by_target = {arn: (body, attributes) for arn, _, body, attributes in kind.published}
    record, _ = by_target[QUEUE]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "intentional failure"
    body, attributes = by_target[DEAD_LETTERS]
    assert body == {"fail": True}, "a dead-letter message is the original event"
    assert attributes == {
        "RequestID": sent.request_id,
        "ErrorCode": "200",
        "ErrorMessage": "intentional failure",
    }


def test_a_dead_letter_error_code_stays_a_number_after_waiting_in_the_store(platform: Platform) -> None:
    name = deploy(platform, DeadLetterConfig={"TargetArn": DEAD_LETTERS})
    configure(platform, name, maximum_retry_attempts=0)
    kind = ListKind(failures=2)  # undelivered twice: the message waits in the store as JSON meanwhile
    queue = queue_of(platform, kind)

    async def scenario() -> None:
        await queue.start()
        await queue.submit(request(name, {"fail": True}))
        await until(lambda: kind.published and stored(platform) == 0)
        await queue.close()

    run(platform, scenario)
    [(_, _, _, attributes)] = kind.published
    assert attributes["ErrorCode"] == "200"
    assert isinstance(attributes["ErrorCode"], NumberAttribute), "SQS sends it with DataType Number"
    assert not isinstance(attributes["RequestID"], NumberAttribute)


def test_an_unreachable_destination_keeps_the_event_until_it_is_delivered(platform: Platform) -> None:
    name = deploy(platform)
    configure(platform, name, destination_config={"OnSuccess": {"Destination": QUEUE}})
    kind = ListKind(failures=3)
    queue = queue_of(platform, kind)
    sent = request(name, {"n": 2})
    seen_stored: list[str | None] = []

    async def scenario() -> None:
        await queue.start()
        await queue.submit(sent)

        def watch() -> bool:
            with platform.database.read() as connection:
                event = store.get_event(connection, sent.request_id)
            if event is not None:
                seen_stored.append(event.outcome)
            return bool(kind.published) and event is None

        await until(watch)
        await queue.close()

    run(platform, scenario)
    assert kind.failures == 0
    [(_, _, record, _)] = kind.published
    assert record["requestContext"]["approximateInvokeCount"] == 1, "the function ran once, not per delivery"
    assert "Success" in seen_stored, "while undelivered, the finished event stayed stored"


def test_zero_reserved_concurrency_sends_events_to_on_failure_without_running_them(
    platform: Platform,
) -> None:
    name = deploy(platform)
    configure(platform, name, destination_config={"OnFailure": {"Destination": QUEUE}})
    platform.services.concurrency.put(SCOPE, name, 0)
    kind = ListKind()
    queue = queue_of(platform, kind)

    async def scenario() -> None:
        await queue.start()
        await queue.submit(request(name, {}))
        await until(lambda: kind.published and stored(platform) == 0)
        await queue.close()

    run(platform, scenario)
    [(_, _, record, _)] = kind.published
    assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record and "responsePayload" not in record


def test_a_destination_no_source_kind_serves_is_dropped_with_a_warning(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    name = deploy(platform)
    topic = "arn:aws:sns:us-east-1:000000000000:topic"
    configure(platform, name, destination_config={"OnSuccess": {"Destination": topic}})
    queue = queue_of(platform)

    async def scenario() -> None:
        await queue.start()
        await queue.submit(request(name, {}))
        await until(lambda: stored(platform) == 0)
        await queue.close()

    with caplog.at_level(logging.WARNING, logger="lambdad.events.asynchronous"):
        run(platform, scenario)
    assert any(
        "no event source serves 'sns'" in r.getMessage() and topic in r.getMessage() for r in caplog.records
    )


def test_events_of_a_deleted_function_are_dropped_with_a_log_line(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    queue = queue_of(platform)
    sent = request("never-existed", {})

    async def scenario() -> None:
        await queue.start()
        await queue.submit(sent)
        await until(lambda: stored(platform) == 0)
        await queue.close()

    with caplog.at_level(logging.WARNING, logger="lambdad.events.asynchronous"):
        run(platform, scenario)
    assert any(sent.request_id in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)


def test_throttled_events_return_to_the_queue_until_their_maximum_age(platform: Platform) -> None:
    name = deploy(platform, DeadLetterConfig={"TargetArn": DEAD_LETTERS})
    platform.services.concurrency.put(SCOPE, name, 1)
    # The API refuses an age under 60 s; stored directly, a 2-second age keeps the test short.
    with platform.database.write() as connection:
        config_records.save_event_invoke_config(
            connection,
            SCOPE,
            name,
            EventInvokeConfig(
                "$LATEST", utcnow(), maximum_event_age=2, destinations={"OnFailure": {"Destination": QUEUE}}
            ),
        )
    kind = ListKind()
    queue = queue_of(platform, kind, throttle_backoff_max=0.3)
    sent = request(name, {"n": 3})

    async def scenario() -> float:
        busy = asyncio.ensure_future(platform.services.invoker.invoke(request(name, {"sleep": 4})))
        # The one allowed execution is taken once its environment exists (the lease comes first).
        await until(lambda: platform.pool.environments == 1, timeout=20)
        started = time.monotonic()
        await queue.start()
        await queue.submit(sent)
        await until(lambda: len(kind.published) == 2 and stored(platform) == 0, timeout=10)
        waited = time.monotonic() - started
        await queue.close()
        await busy
        return waited

    waited = run(platform, scenario)
    assert 1.5 < waited < 4, "retried while throttled, dropped once older than its maximum age"
    by_target = {arn: (body, attributes) for arn, _, body, attributes in kind.published}
    record, _ = by_target[QUEUE]
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    _, attributes = by_target[DEAD_LETTERS]
    assert attributes["ErrorCode"] == "429" and attributes["RequestID"] == sent.request_id


def test_a_system_error_reaches_the_dead_letter_queue_without_host_paths(platform: Platform) -> None:
    name = deploy(platform, DeadLetterConfig={"TargetArn": DEAD_LETTERS})
    with platform.database.write() as connection:
        config_records.save_event_invoke_config(
            connection, SCOPE, name, EventInvokeConfig("$LATEST", utcnow(), maximum_event_age=1)
        )
    # Unpacking the code for the first cold start now fails with an OSError naming the data directory.
    tasks = platform.settings.tasks_dir
    shutil.rmtree(tasks)
    tasks.write_text("not a directory")
    kind = ListKind()
    queue = queue_of(platform, kind, throttle_backoff_max=0.2)
    sent = request(name, {"n": 4})

    async def scenario() -> None:
        await queue.start()
        await queue.submit(sent)
        await until(lambda: kind.published, timeout=10)
        await queue.close()

    run(platform, scenario)
    (_, _, _, attributes) = kind.published[0]
    assert attributes["ErrorCode"] == "500"
    assert attributes["ErrorMessage"] == (
        f"lambdad failed to run the invocation; see the server log for {sent.request_id}"
    )
    assert str(platform.settings.data_dir) not in attributes["ErrorMessage"]


def test_close_lets_a_running_invocation_finish_instead_of_running_it_twice(platform: Platform) -> None:
    name = deploy(platform)
    configure(platform, name, destination_config={"OnSuccess": {"Destination": QUEUE}})
    kind = ListKind()
    queue = queue_of(platform, kind)

    async def scenario() -> None:
        await queue.start()
        await queue.submit(request(name, {"sleep": 1}))
        await until(lambda: queue._busy)  # running now
        await queue.close(grace=10)

    run(platform, scenario)
    assert stored(platform) == 0, "finished during the grace period, not released to run again"
    assert len(kind.published) == 1


def held_by(platform: Platform, owner: str, lease_until: int, name: str) -> str:
    """An event some other process claimed and holds until ``lease_until``."""
    event = NewEvent(str(uuid.uuid4()), SCOPE.account, SCOPE.region, name, None, b'{"held": true}')
    with platform.database.write() as connection:
        store.insert(connection, event)
        store.claim(connection, owner, store.now_ms(), 0, 10)
        store.renew(connection, owner, lease_until)
    return event.request_id


def test_events_held_by_a_process_that_died_run_at_the_next_start(platform: Platform) -> None:
    name = deploy(platform)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_owner = f"{socket.gethostname()}:{int(finished.stdout)}:deadbeef"
    held_by(platform, dead_owner, store.now_ms() + 3_600_000, name)
    queue = queue_of(platform)

    async def scenario() -> float:
        started = time.monotonic()
        await queue.start()
        await until(lambda: stored(platform) == 0, timeout=20)
        await queue.close()
        return time.monotonic() - started

    assert run(platform, scenario) < 15, "released at start, not after the hour-long lease"


def test_events_held_by_a_live_process_wait_for_its_lease_to_run_out(platform: Platform) -> None:
    name = deploy(platform)
    live_owner = f"{socket.gethostname()}:1:cafe"  # pid 1 is alive; it may be another lambdad
    held_by(platform, live_owner, store.now_ms() + 1500, name)
    queue = queue_of(platform)

    async def scenario() -> tuple[int, float]:
        await queue.start()
        started = time.monotonic()
        await asyncio.sleep(0.8)
        still_there = stored(platform)
        await until(lambda: stored(platform) == 0, timeout=20)
        await queue.close()
        return still_there, time.monotonic() - started

    still_there, waited = run(platform, scenario)
    assert still_there == 1, "not taken while its owner's lease lasts"
    assert waited < 15
