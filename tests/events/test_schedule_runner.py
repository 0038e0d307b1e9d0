"""The schedule runner against a real (SQLite) store with a controlled clock: when slots fire, that a
slot fires once even with two runners, missed slots, the hand-over seam's single transaction, retries
and the dead-letter message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from lambdad.events import sources
from lambdad.events.asynchronous import EventQueue
from lambdad.events.schedule_expressions import check
from lambdad.events.schedules import ScheduleRunner
from lambdad.invocation import InvokeRequest
from lambdad.models import Alias, FunctionState, FunctionVersion, Scope
from lambdad.services.schedules import ScheduleService
from lambdad.store import Database, async_events
from lambdad.store import aliases as alias_records
from lambdad.store import functions as function_records
from lambdad.store import schedules as records
from tests.store.test_database import version

SCOPE = Scope("000000000000", "us-east-1")
FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:fn"
QUEUE = "arn:aws:sqs:us-east-1:000000000000:dead-letters"


def active(name: str) -> FunctionVersion:
    return version(name, state=FunctionState.ACTIVE)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'test.db'}")
    db.migrate()
    with db.write() as connection:
        function_records.insert_function(connection, SCOPE, active("fn"), datetime.now(UTC))
    yield db
    db.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def runner(
    database: Database, clock: Clock, submitted: list[InvokeRequest], **options: Any
) -> ScheduleRunner:
    return ScheduleRunner(
        database,
        SCOPE.account,
        {"sqs": "http://queue.test"},
        hand_over=lambda _connection, request: submitted.append(request),
        clock=clock,
        **options,
    )


def create(
    database: Database, clock: Clock, name: str, expression: str, target: str = FUNCTION, **params: Any
) -> None:
    params.setdefault("FlexibleTimeWindow", {"Mode": "OFF"})
    target_params = {"Arn": target, "RoleArn": "arn:aws:iam::000000000000:role/r", "Input": '{"n": 1}'}
    target_params.update(params.pop("Target", {}))
    ScheduleService(database, check, clock).create(
        SCOPE, name, {"ScheduleExpression": expression, "Target": target_params, **params}
    )


def anchor(database: Database, name: str) -> datetime:
    with database.read() as connection:
        stored = records.get_schedule(connection, SCOPE, "default", name)
    assert stored is not None
    return datetime.fromisoformat(stored.config["Anchor"])


def test_a_rate_fires_at_once_then_every_period(database: Database, clock: Clock) -> None:
    submitted: list[InvokeRequest] = []
    create(database, clock, "r", "rate(1 minute)")
    ticking = runner(database, clock, submitted)
    asyncio.run(ticking.tick())
    asyncio.run(ticking.tick())
    assert [r.payload for r in submitted] == [b'{"n": 1}']
    assert (submitted[0].function_name, submitted[0].qualifier, submitted[0].scope) == ("fn", None, SCOPE)
    clock.advance(59)
    asyncio.run(ticking.tick())
    assert len(submitted) == 1
    clock.advance(1)
    asyncio.run(ticking.tick())
    assert len(submitted) == 2


def test_two_runners_never_fire_one_slot_twice(database: Database, clock: Clock) -> None:
    submitted: list[InvokeRequest] = []
    create(database, clock, "r", "rate(1 minute)")
    first, second = runner(database, clock, submitted), runner(database, clock, submitted)

    async def both() -> None:
        await asyncio.gather(first.tick(), second.tick(), first.tick(), second.tick())

    asyncio.run(both())
    assert len(submitted) == 1


def test_missed_slots_fire_only_the_latest(database: Database, clock: Clock) -> None:
    submitted: list[InvokeRequest] = []
    create(database, clock, "r", "rate(1 minute)", Target={"Input": '"<aws.scheduler.scheduled-time>"'})
    start = anchor(database, "r")
    ticking = runner(database, clock, submitted)
    asyncio.run(ticking.tick())
    clock.advance(10 * 60 + 30)  # down for ten and a half minutes
    restarted = runner(database, clock, submitted)
    asyncio.run(restarted.tick())
    latest = (start + timedelta(minutes=10)).strftime('"%Y-%m-%dT%H:%M:%SZ"')
    assert [r.payload.decode() for r in submitted][1:] == [latest]


def test_a_slot_older_than_the_maximum_event_age_is_dropped(database: Database, clock: Clock) -> None:
    submitted: list[InvokeRequest] = []
    create(
        database,
        clock,
        "r",
        "rate(1 hour)",
        Target={"RetryPolicy": {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}},
    )
    asyncio.run(runner(database, clock, submitted).tick())
    clock.advance(3600 + 120)  # the next slot is two minutes old
    asyncio.run(runner(database, clock, submitted).tick())
    assert len(submitted) == 1
    with database.read() as connection:
        stored = records.get_schedule(connection, SCOPE, "default", "r")
    assert stored is not None and stored.last_result == "Dropped: older than MaximumEventAgeInSeconds"


def test_a_flexible_window_fires_later_by_the_same_amount_every_time(
    database: Database, clock: Clock
) -> None:
    create(
        database,
        clock,
        "f",
        "cron(0 * * * ? *)",
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 30},
    )
    with database.read() as connection:
        stored = records.get_schedule(connection, SCOPE, "default", "f")
    assert stored is not None
    one, other = runner(database, clock, []), runner(database, clock, [])
    slot, again = one.next_slot(stored), other.next_slot(stored)
    assert slot is not None and slot == again
    assert timedelta(0) <= slot.fire_at - slot.scheduled < timedelta(minutes=30)
    offsets = set()
    following = slot
    for _ in range(20):
        following = one.next_slot(stored, following.scheduled)  # type: ignore[assignment]
        assert following is not None
        offsets.add(following.fire_at - following.scheduled)
    assert len(offsets) > 1, "the offset is random per slot"


def test_disabled_schedules_neither_fire_nor_complete(database: Database, clock: Clock) -> None:
    submitted: list[InvokeRequest] = []
    create(database, clock, "d", "rate(1 minute)", State="DISABLED")
    moment = (clock.now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    create(database, clock, "later", f"at({moment})", State="DISABLED", ActionAfterCompletion="DELETE")
    clock.advance(120)
    asyncio.run(runner(database, clock, submitted).tick())
    assert submitted == []
    with database.read() as connection:
        assert records.get_schedule(connection, SCOPE, "default", "later") is not None


def test_at_fires_once_and_delete_after_completion_removes_it(database: Database, clock: Clock) -> None:
    submitted: list[InvokeRequest] = []
    moment = (clock.now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    create(database, clock, "once", f"at({moment})", ActionAfterCompletion="DELETE")
    ticking = runner(database, clock, submitted)
    asyncio.run(ticking.tick())
    assert submitted == []
    clock.advance(5 * 60)
    asyncio.run(ticking.tick())
    asyncio.run(ticking.tick())
    assert len(submitted) == 1
    with database.read() as connection:
        assert records.get_schedule(connection, SCOPE, "default", "once") is None


def test_end_date_completes_a_recurring_schedule(database: Database, clock: Clock) -> None:
    submitted: list[InvokeRequest] = []
    create(database, clock, "ending", "rate(1 minute)", EndDate=clock.now + timedelta(seconds=90))
    ticking = runner(database, clock, submitted)
    for _ in range(4):
        asyncio.run(ticking.tick())
        clock.advance(60)
    assert len(submitted) == 2  # at the anchor and one minute later; the next is past EndDate


def test_the_hand_over_runs_inside_the_claiming_transaction(database: Database, clock: Clock) -> None:
    create(database, clock, "seam", "rate(1 minute)")
    seen: list[tuple[Connection, InvokeRequest]] = []

    def failing(connection: Connection, request: InvokeRequest) -> None:
        seen.append((connection, request))
        raise RuntimeError("the durable queue is down")

    broken = ScheduleRunner(database, SCOPE.account, {}, hand_over=failing, clock=clock)
    asyncio.run(broken.tick())  # logged; the next tick tries again
    with database.read() as connection:
        stored = records.get_schedule(connection, SCOPE, "default", "seam")
    assert stored is not None and stored.last_slot is None, "a failed hand-over leaves the slot unclaimed"

    handed: list[InvokeRequest] = []
    working = ScheduleRunner(
        database, SCOPE.account, {}, hand_over=lambda _c, request: handed.append(request), clock=clock
    )
    asyncio.run(working.tick())
    assert len(handed) == 1 and len(seen) == 1


class RecordingQueue:
    """A dead-letter queue kind that keeps what it is sent (the broker is the true external edge)."""

    service = "sqs"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes, Mapping[str, str] | None]] = []

    def validate(self, spec: Any) -> None: ...

    def source(self, spec: Any) -> Any: ...

    async def publish(
        self, arn: str, endpoint: str, body: bytes, attributes: Mapping[str, str] | None = None
    ) -> None:
        self.sent.append((arn, endpoint, body, attributes))


@pytest.fixture
def queue() -> Iterator[RecordingQueue]:
    kind = RecordingQueue()
    sources.SOURCE_KINDS["sqs"] = kind
    yield kind
    del sources.SOURCE_KINDS["sqs"]


def test_a_missing_target_is_retried_then_dead_lettered(
    database: Database, clock: Clock, queue: RecordingQueue
) -> None:
    missing = "arn:aws:lambda:us-east-1:000000000000:function:absent"
    create(
        database,
        clock,
        "dl",
        "rate(1 hour)",
        target=missing,
        Target={
            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 600},
            "DeadLetterConfig": {"Arn": QUEUE},
        },
    )
    ticking = runner(database, clock, [], retry_base_delay=0.01)

    async def fire_and_wait() -> None:
        await ticking.tick()
        for _ in range(1000):  # up to 10 s: a loaded machine is slow
            if queue.sent:
                return
            await asyncio.sleep(0.01)

    asyncio.run(fire_and_wait())
    [(arn, endpoint, body, attributes)] = queue.sent
    assert (arn, endpoint, body) == (QUEUE, "http://queue.test", b'{"n": 1}')
    assert attributes is not None
    assert attributes["ERROR_CODE"] == "ResourceNotFoundException"
    assert attributes["ERROR_MESSAGE"] == f"Function not found: {missing}"
    assert attributes["RETRY_ATTEMPTS"] == "2"
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert attributes["SCHEDULE_ARN"] == "arn:aws:scheduler:us-east-1:000000000000:schedule/default/dl"
    assert attributes["TARGET_ARN"] == missing
    assert attributes["SCHEDULED_TIME"] == anchor(database, "dl").strftime("%Y-%m-%dT%H:%M:%SZ")
    assert set(attributes) == {
        "ERROR_CODE",
        "ERROR_MESSAGE",
        "EXECUTION_ID",
        "EXHAUSTED_RETRY_CONDITION",
        "IS_PAYLOAD_TRUNCATED",
        "RETRY_ATTEMPTS",
        "SCHEDULED_TIME",
        "SCHEDULE_ARN",
        "TARGET_ARN",
    }


def test_a_target_that_appears_during_retries_is_invoked(database: Database, clock: Clock) -> None:
    submitted: list[InvokeRequest] = []
    late = "arn:aws:lambda:us-east-1:000000000000:function:late"
    create(
        database,
        clock,
        "late",
        "rate(1 hour)",
        target=late,
        Target={"Input": "<aws.scheduler.attempt-number>"},
    )
    ticking = runner(database, clock, submitted, retry_base_delay=0.05)

    async def scenario() -> None:
        await ticking.tick()
        assert submitted == []
        with database.write() as connection:
            function_records.insert_function(connection, SCOPE, active("late"), datetime.now(UTC))
        for _ in range(1000):  # up to 10 s: a loaded machine is slow
            if submitted:
                return
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert [r.function_name for r in submitted] == ["late"]
    assert submitted[0].payload == b"2", "the retry is the second attempt"


def test_qualified_function_arns_invoke_the_qualifier(database: Database, clock: Clock) -> None:
    submitted: list[InvokeRequest] = []
    create(database, clock, "q", "rate(1 hour)", target=FUNCTION + ":prod")
    with database.write() as connection:  # the alias the target names
        alias_records.insert_alias(connection, SCOPE, Alias("fn", "prod", "$LATEST", "rev"))
    asyncio.run(runner(database, clock, submitted).tick())
    assert [(r.function_name, r.qualifier) for r in submitted] == [("fn", "prod")]


def test_an_input_lambda_would_refuse_goes_straight_to_the_dead_letter_queue(
    database: Database, clock: Clock, queue: RecordingQueue
) -> None:
    submitted: list[InvokeRequest] = []
    create(
        database,
        clock,
        "text",
        "rate(1 hour)",
        Target={"Input": "not json", "DeadLetterConfig": {"Arn": QUEUE}},
    )
    asyncio.run(runner(database, clock, submitted).tick())
    assert submitted == []
    [(_, _, body, attributes)] = queue.sent
    assert body == b"not json" and attributes is not None
    assert attributes["ERROR_CODE"] == "InvalidRequestContentException"
    assert attributes["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes


def test_a_pending_function_is_retried_until_it_is_active(database: Database, clock: Clock) -> None:
    submitted: list[InvokeRequest] = []
    pending = "arn:aws:lambda:us-east-1:000000000000:function:pending"
    with database.write() as connection:
        function_records.insert_function(connection, SCOPE, version("pending"), datetime.now(UTC))
    create(database, clock, "wait", "rate(1 hour)", target=pending)
    ticking = runner(database, clock, submitted, retry_base_delay=0.05)

    async def scenario() -> None:
        await ticking.tick()
        assert submitted == []
        with database.write() as connection:
            function_records.save_version(connection, SCOPE, active("pending"))
        for _ in range(1000):  # up to 10 s: a loaded machine is slow
            if submitted:
                return
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert [r.function_name for r in submitted] == ["pending"]
    with database.read() as connection:
        stored = records.get_schedule(connection, SCOPE, "default", "wait")
    assert stored is not None and stored.last_result == "Invoked (Event)"


def test_deleting_a_schedule_stops_its_retries(
    database: Database, clock: Clock, queue: RecordingQueue
) -> None:
    submitted: list[InvokeRequest] = []
    late = "arn:aws:lambda:us-east-1:000000000000:function:later"
    create(database, clock, "gone", "rate(1 hour)", target=late, Target={"DeadLetterConfig": {"Arn": QUEUE}})
    ticking = runner(database, clock, submitted, retry_base_delay=0.05)

    async def scenario() -> None:
        await ticking.tick()
        ScheduleService(database, check).delete(SCOPE, "gone", None)
        with database.write() as connection:
            function_records.insert_function(connection, SCOPE, active("later"), datetime.now(UTC))
        await asyncio.sleep(0.3)
        await ticking.close()

    asyncio.run(scenario())
    assert submitted == [] and queue.sent == []


def test_a_fired_slot_is_an_event_in_the_durable_queue(database: Database, clock: Clock) -> None:
    create(database, clock, "r", "rate(1 minute)")
    woken: list[bool] = []
    ticking = ScheduleRunner(
        database,
        SCOPE.account,
        {},
        hand_over=EventQueue.enqueue_in,
        wake=lambda: woken.append(True),
        clock=clock,
    )
    asyncio.run(ticking.tick())
    with database.write() as connection:
        (event,) = async_events.claim(connection, "test", now=2**62, lease_ms=1000, limit=10)
    assert (event.function_name, event.payload) == ("fn", b'{"n": 1}')
    assert woken == [True]
