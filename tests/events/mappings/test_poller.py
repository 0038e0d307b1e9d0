"""The poller's handling of queue sources (retries by delivery count, throttling, concurrency, filters)
against an in-memory broker, with a stand-in for the invoke pipeline; stream handling is exercised
against real Redis in tests/e2e/test_redis_streams_source.py."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from lambdad.errors import TooManyRequestsException
from lambdad.events.mappings.poller import Poller
from lambdad.events.sources import SourceMessage, SourceUnavailable
from lambdad.invocation import InvokeRequest, InvokeResult
from lambdad.store.event_source_mappings import MappingRecord


def synchronously(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on its own event loop."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class MemoryQueue:
    """An unordered broker in memory: released messages come back with a higher delivery count."""

    ordered = False

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self.waiting = [
            SourceMessage(item_id=str(i), record={"body": json.dumps(b)}, filter_view={"body": b})
            for i, b in enumerate(bodies)
        ]
        self.acked: list[str] = []
        self.released: list[str] = []

    async def open(self) -> None:
        pass

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        if not self.waiting:
            await asyncio.sleep(min(max_wait, 0.01))
            return []
        taken, self.waiting = self.waiting[:max_messages], self.waiting[max_messages:]
        return taken

    async def ack(self, messages: Sequence[SourceMessage]) -> None:
        self.acked += [m.item_id for m in messages]

    async def release(self, messages: Sequence[SourceMessage]) -> None:
        self.released += [m.item_id for m in messages]
        self.waiting += [replace(m, delivery_count=m.delivery_count + 1) for m in messages]

    def event(self, messages: Sequence[SourceMessage]) -> dict[str, Any]:
        return {"Records": [m.record | {"messageId": m.item_id} for m in messages]}

    async def lag(self) -> int | None:
        return len(self.waiting)

    async def close(self) -> None:
        pass


class Function:
    """Stands in for the invoke pipeline: answers per the bodies in the event."""

    def __init__(self, throttle_first: int = 0, delay: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.throttle_first = throttle_first
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0

    async def invoke(self, request: InvokeRequest) -> InvokeResult:
        if self.throttle_first:
            self.throttle_first -= 1
            raise TooManyRequestsException("Rate Exceeded.")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            records = json.loads(request.payload)["Records"]
            self.calls.append([r["messageId"] for r in records])
            bodies = [json.loads(r["body"]) for r in records]
            if any(b.get("fail") == "always" for b in bodies):
                return InvokeResult(b'{"errorMessage": "poison"}', "Unhandled", "$LATEST", None)  # type: ignore[arg-type]
            failed = [
                {"itemIdentifier": r["messageId"]}
                for r, b in zip(records, bodies, strict=True)
                if b.get("fail") == "item"
            ]
            return InvokeResult(json.dumps({"batchItemFailures": failed}).encode(), None, "$LATEST", None)  # type: ignore[arg-type]
        finally:
            self.in_flight -= 1


def mapping(**config: Any) -> MappingRecord:
    return MappingRecord(
        uuid=str(uuid.uuid4()),
        account="000000000000",
        region="us-east-1",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
        event_source_arn="arn:aws:mq:us-east-1:000000000000:broker:b",
        state="Enabled",
        state_transition_reason="USER_INITIATED",
        enabled=True,
        last_modified=datetime.now(UTC),
        config={"BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"], **config},
    )


async def run_until(poller: Poller, done: Any, timeout: float = 10) -> None:
    task = asyncio.create_task(poller.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def make_poller(source: MemoryQueue, function: Function, record: MappingRecord) -> tuple[Poller, list[str]]:
    reported: list[str] = []

    async def report(result: str) -> None:
        reported.append(result)

    poller = Poller(record, source, function, "000000000000", {"redis": "redis://127.0.0.1:6379/0"}, report)  # type: ignore[arg-type]
    return poller, reported


@synchronously
async def test_queue_acks_successes_and_redelivers_only_failed_items() -> None:
    source = MemoryQueue([{"n": 0}, {"n": 1, "fail": "item"}, {"n": 2}])
    function = Function()
    poller, reported = make_poller(source, function, mapping(MaximumRetryAttempts=1))
    await run_until(poller, lambda: len(source.acked) == 3)
    assert function.calls == [["0", "1", "2"], ["1"]]
    assert source.released == ["1"]  # delivery 1 of 2 released, delivery 2 given up on
    assert reported == ["OK"]


@synchronously
async def test_poison_message_goes_to_the_destination_after_its_deliveries(caplog: Any) -> None:
    destination_key = f"poller-dlq-{uuid.uuid4().hex[:8]}"
    destination = f"arn:aws:redis:us-east-1:000000000000:stream/{destination_key}"
    source = MemoryQueue([{"fail": "always"}])
    function = Function()
    record = mapping(MaximumRetryAttempts=2, DestinationConfig={"OnFailure": {"Destination": destination}})
    poller, reported = make_poller(source, function, record)
    broker = redis.Redis(decode_responses=True)
    try:
        with caplog.at_level(logging.INFO, "lambdad.events.mappings.poller"):
            await run_until(poller, lambda: source.acked == ["0"])
        assert len(function.calls) == 3
        entries = broker.xrange(destination_key)
        assert len(entries) == 1
        sent = json.loads(entries[0][1]["data"])
        assert sent["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert sent["requestContext"]["approximateInvokeCount"] == 3
        assert sent["records"] == [{"body": '{"fail": "always"}'}]
        assert entries[0][1]["ErrorCode"] == "RetryAttemptsExhausted"
        assert reported == ["PROBLEM: Function call failed"]
        assert "will be delivered again" in caplog.text
    finally:
        broker.delete(destination_key)
        broker.close()


@synchronously
async def test_poison_message_without_destination_is_logged_whole(caplog: Any) -> None:
    source = MemoryQueue([{"fail": "always", "secret": "keep me"}])
    poller, _ = make_poller(source, Function(), mapping(MaximumRetryAttempts=0))
    with caplog.at_level(logging.INFO, "lambdad.events.mappings.poller"):
        await run_until(poller, lambda: source.acked == ["0"])
    assert "keep me" in caplog.text
    assert "no on-failure destination" in caplog.text


@synchronously
async def test_unbounded_retries_stop_at_the_default_bound() -> None:
    from lambdad.events.mappings.poller import DEFAULT_MAX_ATTEMPTS

    source = MemoryQueue([{"fail": "always"}])
    function = Function()
    poller, _ = make_poller(source, function, mapping())
    await run_until(poller, lambda: source.acked == ["0"])
    assert len(function.calls) == DEFAULT_MAX_ATTEMPTS


@synchronously
async def test_throttled_invokes_are_retried_without_counting_as_failures() -> None:
    source = MemoryQueue([{"n": 0}])
    function = Function(throttle_first=2)
    poller, _ = make_poller(source, function, mapping(MaximumRetryAttempts=0))
    await run_until(poller, lambda: source.acked == ["0"])
    assert function.calls == [["0"]]
    assert source.released == []


@synchronously
async def test_filters_drop_without_invoking() -> None:
    source = MemoryQueue([{"kind": "a"}, {"kind": "b"}])
    function = Function()
    record = mapping(FilterCriteria={"Filters": [{"Pattern": '{"body": {"kind": ["b"]}}'}]})
    poller, _ = make_poller(source, function, record)
    await run_until(poller, lambda: len(source.acked) == 2)
    assert function.calls == [["1"]]
    assert poller.status.filtered == 1


@pytest.mark.parametrize("limit", [2, 3])
@synchronously
async def test_maximum_concurrency_bounds_batches_in_flight(limit: int) -> None:
    source = MemoryQueue([{"n": i} for i in range(12)])
    function = Function(delay=0.1)
    poller, _ = make_poller(
        source, function, mapping(BatchSize=1, ScalingConfig={"MaximumConcurrency": limit})
    )
    await run_until(poller, lambda: len(source.acked) == 12)
    assert function.most_in_flight == limit


class FlakyQueue(MemoryQueue):
    """A MemoryQueue that gives back unacknowledged messages when the connection closes, as brokers do,
    and fails the first ``ack_failures`` acks as an unreachable broker would."""

    def __init__(self, bodies: list[dict[str, Any]], ack_failures: int = 0) -> None:
        super().__init__(bodies)
        self.ack_failures = ack_failures
        self.delivered: dict[str, SourceMessage] = {}
        self.opens = 0

    async def open(self) -> None:
        self.opens += 1

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        taken = await super().receive(max_messages, max_wait)
        self.delivered.update((m.item_id, m) for m in taken)
        return taken

    async def ack(self, messages: Sequence[SourceMessage]) -> None:
        if self.ack_failures:
            self.ack_failures -= 1
            raise SourceUnavailable("broker went away during the ack")
        for m in messages:
            self.delivered.pop(m.item_id, None)
        await super().ack(messages)

    async def release(self, messages: Sequence[SourceMessage]) -> None:
        for m in messages:
            self.delivered.pop(m.item_id, None)
        await super().release(messages)

    async def close(self) -> None:
        returned = [replace(m, delivery_count=m.delivery_count + 1) for m in self.delivered.values()]
        self.waiting = returned + self.waiting  # first again, as a stream would give them
        self.delivered.clear()


@synchronously
async def test_a_batch_whose_ack_fails_comes_back_after_reconnecting() -> None:
    source = FlakyQueue([{"n": 0}], ack_failures=1)
    function = Function()
    poller, _ = make_poller(source, function, mapping())
    await run_until(poller, lambda: source.acked == ["0"], timeout=5)
    assert function.calls == [["0"], ["0"]]
    assert source.opens == 2


class SurprisingQueue(FlakyQueue):
    """Raises an error no source contract names on its first receive (a client library's own error)."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        super().__init__(bodies)
        self.surprises = 1

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        if self.surprises:
            self.surprises -= 1
            raise RuntimeError("the client library's own error")
        return await super().receive(max_messages, max_wait)


@synchronously
async def test_an_unexpected_source_error_does_not_end_the_poller() -> None:
    source = SurprisingQueue([{"n": 0}])
    function = Function()
    poller, _ = make_poller(source, function, mapping())
    await run_until(poller, lambda: source.acked == ["0"], timeout=5)
    assert function.calls == [["0"]]
    assert source.opens == 2  # reconnected after the error


@synchronously
async def test_a_stream_does_not_read_past_a_batch_whose_ack_failed() -> None:
    source = FlakyQueue([{"n": 0}, {"n": 1}], ack_failures=1)
    source.ordered = True
    function = Function()
    poller, _ = make_poller(source, function, mapping(BatchSize=1))
    await run_until(poller, lambda: source.acked == ["0", "1"], timeout=5)
    assert function.calls == [["0"], ["0"], ["1"]]


class UnreadableQueue(FlakyQueue):
    """Opens fine, then every receive finds the broker gone (a deleted stream, a dropped consumer)."""

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        raise SourceUnavailable("the consumer is gone")


@synchronously
async def test_reconnecting_backs_off_when_every_receive_fails_right_after_opening() -> None:
    source = UnreadableQueue([])
    poller, _ = make_poller(source, Function(), mapping())
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(1.6)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # Waits of 0.2, 0.4, 0.8 s: four opens in 1.6 s (a wait reset at each open: eight).
    assert source.opens <= 5


@synchronously
async def test_a_destination_no_source_serves_gets_the_record_logged_whole(caplog: Any) -> None:
    # SNS is a destination AWS accepts but no lambdad event source serves: waiting for it cannot help.
    destination = "arn:aws:sns:us-east-1:000000000000:nobody-serves-this"
    source = FlakyQueue([{"fail": "always", "secret": "keep me"}])
    function = Function()
    record = mapping(MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": destination}})
    poller, _ = make_poller(source, function, record)
    with caplog.at_level(logging.INFO, "lambdad.events.mappings.poller"):
        await run_until(poller, lambda: source.acked == ["0"], timeout=5)
    assert len(function.calls) == 1
    assert "keep me" in caplog.text
    assert destination in caplog.text


@synchronously
async def test_unbounded_stream_retries_run_until_the_record_age_when_one_is_set(monkeypatch: Any) -> None:
    from lambdad.events.mappings import poller as poller_module

    monkeypatch.setattr(poller_module, "BACKOFF_FIRST", 0.001)
    monkeypatch.setattr(poller_module, "BACKOFF_MAX", 0.001)
    source = FlakyQueue([{"fail": "always"}])
    source.ordered = True
    source.waiting = [replace(m, sent_at=time.time()) for m in source.waiting]
    function = Function()
    # AWS's -1: "retries failed records until the record expires", here after an hour.
    record = mapping(MaximumRetryAttempts=-1, MaximumRecordAgeInSeconds=3600)
    poller, _ = make_poller(source, function, record)
    await run_until(poller, lambda: len(function.calls) > poller_module.DEFAULT_MAX_ATTEMPTS + 5, timeout=5)
    assert source.acked == []
