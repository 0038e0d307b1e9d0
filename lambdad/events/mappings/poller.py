"""One mapping's poller: receive a batch, filter, invoke, then acknowledge, retry or give up as AWS does.

Queues (``Source.ordered`` false) run up to ``ScalingConfig.MaximumConcurrency`` batches at once; a failed
message is released for the broker to deliver again, until its delivery count passes the mapping's bound
(below), when it goes to the on-failure destination and is acknowledged. Streams run one batch at a time
in order; a failed batch is retried in place (bisected when ``BisectBatchOnFunctionError``) until
``MaximumRetryAttempts`` or ``MaximumRecordAgeInSeconds`` runs out, then its failure record goes to the
on-failure destination and the stream moves on.

Nothing loops forever: AWS's -1 retries "until the record expires", that is until
``MaximumRecordAgeInSeconds``; where a mapping sets no bound at all (-1 for both, and queue brokers that
keep no dead-letter count of their own), lambdad gives up after ``DEFAULT_MAX_ATTEMPTS``.
Nothing is lost silently either: a message given up on with no destination is written whole to the log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import uuid as uuids
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lambdad.errors import LambdaError, TooManyRequestsException
from lambdad.events.backoff import doubling
from lambdad.events.filtering import FilterSet
from lambdad.events.mappings.records import (
    RECORD_AGE_EXCEEDED,
    RETRY_EXHAUSTED,
    failure_record,
    judge,
    split_by_size,
)
from lambdad.events.sources import Source, SourceMessage, SourceUnavailable, arn_service, kind_for
from lambdad.invocation import Invoker, InvokeRequest
from lambdad.models import Scope
from lambdad.services.event_source_mappings import DESTINATION_ACTIONS, SOURCE_ACTIONS, role_refusal
from lambdad.store.event_source_mappings import MappingRecord
from lambdad.store.outage import reason, unavailable

log = logging.getLogger(__name__)

# Attempts (deliveries of a queue message, invocations of a stream batch) when the mapping sets none.
DEFAULT_MAX_ATTEMPTS = 10
# Batches in flight per queue mapping without ScalingConfig (AWS scales SQS up to 1,000).
DEFAULT_QUEUE_CONCURRENCY = 5
# How long one receive waits when the mapping has no batching window (a stop is noticed this fast).
POLL_WAIT = 1.0
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 10.0
OK, FUNCTION_FAILED, NO_RECORDS = "OK", "PROBLEM: Function call failed", "No records processed"
CONNECTION_PROBLEM = "PROBLEM: Connection error."

# Whether the mapped function's execution role may perform an action (e.g. ``sqs:ReceiveMessage``) on a
# resource: None if it may (or roles are not checked), else the denial.
RoleCheck = Callable[[str, str], str | None]


class RoleDenied(Exception):
    """The execution role may no longer read the source: the batch goes back to the broker, and the
    poller backs off as from a broker error until the role is given the permission again."""


# Called with a LastProcessingResult to record.
Reporter = Callable[[str], Awaitable[None]]


@dataclass
class PollerStatus:
    """What ``/_lambdad/event-source-mappings`` shows of a running poller."""

    last_result: str | None = None
    last_error: str | None = None
    connected: bool = False
    invocations: int = 0
    delivered: int = 0
    filtered: int = 0
    failed_to_destination: int = 0
    started_at: float = field(default_factory=time.time)


class Poller:
    """Polls one mapping's source until stopped."""

    def __init__(
        self,
        mapping: MappingRecord,
        source: Source,
        invoker: Invoker,
        account: str,
        endpoints: dict[str, str],
        report: Reporter,
        *,
        batch_info_key: str = "BatchInfo",
        role_check: RoleCheck | None = None,
    ) -> None:
        self.mapping = mapping
        # With authentication on, what the function's execution role may do (None: not checked).
        self._role_check = role_check
        self.source = source
        self.status = PollerStatus(last_result=mapping.last_processing_result)
        self._invoker = invoker
        self._account = account
        self._endpoints = endpoints
        self._report = report
        self._batch_info_key = batch_info_key
        config = mapping.config
        self._filters = FilterSet.from_criteria(config.get("FilterCriteria"))
        self._batch_size = int(config.get("BatchSize") or 10)
        self._window = float(config.get("MaximumBatchingWindowInSeconds") or 0)
        self._report_items = "ReportBatchItemFailures" in (config.get("FunctionResponseTypes") or [])
        self._destination = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        age = config.get("MaximumRecordAgeInSeconds")
        self._max_age = None if age in (None, -1) else float(age)
        retries = config.get("MaximumRetryAttempts")
        # AWS's -1 retries "until the record expires": a MaximumRecordAgeInSeconds is that bound (None:
        # no bound on attempts); with neither, lambdad's own.
        self._max_attempts: int | None = int(retries) + 1 if retries not in (None, -1) else None
        if self._max_attempts is None and self._max_age is None:
            self._max_attempts = DEFAULT_MAX_ATTEMPTS
        self._bisect = bool(config.get("BisectBatchOnFunctionError"))
        concurrency = (config.get("ScalingConfig") or {}).get("MaximumConcurrency")
        self._concurrency = 1 if source.ordered else int(concurrency or DEFAULT_QUEUE_CONCURRENCY)
        parts = mapping.function_arn.split(":")
        self._scope = Scope(account, mapping.region)
        self._function_name = ":".join(parts[:7])
        self._qualifier = parts[7] if len(parts) > 7 else None
        self.opened = asyncio.Event()
        # Why a batch could not be settled (neither acknowledged nor released): its messages are held
        # by this connection until it closes, so the loop reconnects rather than read on past them.
        self._abandoned: Exception | None = None

    # --- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect (again, with backoff, whenever the broker goes away) and process batches."""
        backoff = BACKOFF_FIRST
        in_flight: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self._concurrency)
        try:
            while True:
                self._abandoned = None
                try:
                    await self.source.open()
                    self.status.connected, self.status.last_error = True, None
                    self.opened.set()
                    while True:
                        batch = await self._collect()
                        self._raise_if_abandoned()
                        # Only a source that opens *and* reads is back: one whose every read fails
                        # right after opening (a deleted stream) keeps backing off.
                        backoff = BACKOFF_FIRST
                        if not batch:
                            continue
                        await slots.acquire()
                        task = asyncio.create_task(self._process_released(batch, slots))
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                        if self.source.ordered:
                            await task
                            self._raise_if_abandoned()
                except Exception as error:
                    # Anything else (a client library's own error) must not end the poller for good:
                    # the supervisor would never start it again. It reconnects the same way.
                    denied = isinstance(error, RoleDenied)
                    unreachable = denied or isinstance(error, (SourceUnavailable, OSError, ConnectionError))
                    self.status.connected = False
                    if denied:
                        self.status.last_error = str(error)
                    elif unreachable:
                        self.status.last_error = f"broker unreachable: {error}"
                    else:
                        self.status.last_error = f"unexpected error: {error!r}"
                    self.opened.set()
                    if denied:
                        await self._set_result(f"PROBLEM: {error}")
                    elif unreachable:
                        await self._set_result(CONNECTION_PROBLEM)
                    log.warning(
                        "event source mapping %s: %s; reconnecting in %.1f s",
                        self.mapping.uuid,
                        self.status.last_error,
                        backoff,
                        exc_info=not unreachable,
                    )
                    await asyncio.gather(*in_flight, return_exceptions=True)
                    await self._close_quietly()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            await self._close_quietly()

    def _raise_if_abandoned(self) -> None:
        if self._abandoned is not None:
            raise self._abandoned

    async def _close_quietly(self) -> None:
        try:
            await self.source.close()
        except Exception as error:  # the broker is gone; closing is best effort
            log.debug("event source mapping %s: close failed: %s", self.mapping.uuid, error)

    async def _collect(self) -> list[SourceMessage]:
        """Up to BatchSize messages, gathering for up to MaximumBatchingWindowInSeconds."""
        batch = await self.source.receive(self._batch_size, self._window or POLL_WAIT)
        if not batch or self._window <= 0:
            return batch
        deadline = time.monotonic() + self._window
        while len(batch) < self._batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            more = await self.source.receive(self._batch_size - len(batch), remaining)
            if not more:
                break
            batch.extend(more)
        return batch

    async def _process_released(self, batch: list[SourceMessage], slots: asyncio.Semaphore) -> None:
        try:
            await self.process(batch)
        except RoleDenied as error:
            log.warning("event source mapping %s: %s", self.mapping.uuid, error)
            self._abandoned = self._abandoned or error
        except (SourceUnavailable, OSError, ConnectionError) as error:
            # Unacknowledged messages go back to the broker with the connection; the loop reconnects.
            self.status.last_error = f"broker unreachable: {error}"
            log.warning("event source mapping %s: %s", self.mapping.uuid, self.status.last_error)
            self._abandoned = self._abandoned or error
        except Exception as error:
            if unavailable(error):  # the batch goes back to the broker; the loop reconnects with backoff
                self.status.last_error = "lambdad's database is unavailable"
                log.warning(
                    "event source mapping %s: the database is unavailable: %s",
                    self.mapping.uuid,
                    reason(error),
                )
            else:
                log.exception("event source mapping %s: batch processing failed", self.mapping.uuid)
            self._abandoned = self._abandoned or error
        finally:
            slots.release()

    # --- one batch -------------------------------------------------------------------------------

    async def process(self, batch: list[SourceMessage]) -> None:
        """Filter, invoke and settle one received batch."""
        service = arn_service(self.mapping.event_source_arn)
        if self._role_check is not None:
            for action in SOURCE_ACTIONS.get(service, ()):
                denial = await asyncio.to_thread(
                    self._role_check, f"{service}:{action}", self.mapping.event_source_arn
                )
                if denial is not None:
                    raise RoleDenied(role_refusal(action, service))
        verdicts = [self._filters.matches(m.filter_view) for m in batch]
        kept = [m for m, keep in zip(batch, verdicts, strict=True) if keep]
        dropped = [m for m, keep in zip(batch, verdicts, strict=True) if not keep]
        if dropped:
            for message in dropped:
                log.info(
                    "event source mapping %s: dropped %s (no filter matches)",
                    self.mapping.uuid,
                    message.item_id,
                )
            self.status.filtered += len(dropped)
            await self.source.ack(dropped)
        for run in split_by_size(kept):
            if self.source.ordered:
                await self._process_stream(run)
            else:
                await self._process_queue(run)

    async def _process_queue(self, batch: list[SourceMessage]) -> None:
        outcome, result = await self._invoke_judged(batch)
        if outcome.succeeded:
            await self.source.ack(outcome.succeeded)
            self.status.delivered += len(outcome.succeeded)
        if not outcome.failed:
            return
        # A queue with a dead-letter mechanism of its own (SQS's RedrivePolicy) is left to it, as on AWS.
        bounded = not getattr(self.source, "broker_dead_letters", False)
        exhausted: list[SourceMessage] = []
        retried: list[SourceMessage] = []
        for message in outcome.failed:
            spent = (
                bounded and self._max_attempts is not None and message.delivery_count >= self._max_attempts
            )
            (exhausted if spent else retried).append(message)
        for message in retried:
            log.info(
                "event source mapping %s: %s will be delivered again (%s, delivery %d of %s)",
                self.mapping.uuid,
                message.item_id,
                outcome.reason,
                message.delivery_count,
                self._max_attempts,
            )
        if retried:
            await self.source.release(retried)
        for message in exhausted:
            await self._give_up([message], RETRY_EXHAUSTED, message.delivery_count, result, outcome.reason)

    async def _process_stream(self, batch: list[SourceMessage]) -> None:
        parts: list[list[SourceMessage]] = [batch]
        while parts:
            part = parts.pop(0)
            attempts = 0
            if self._max_age is not None:
                # Records already older than MaximumRecordAgeInSeconds are not sent at all (a prefix:
                # a stream is in arrival order).
                expired = _arrived_before(part, time.time() - self._max_age)
                if expired:
                    not_invoked = _Invoked(str(uuids.uuid4()), b"", None, "$LATEST", None)
                    await self._give_up(expired, RECORD_AGE_EXCEEDED, 0, not_invoked, "record too old")
                    part = part[len(expired) :]
            while part:
                outcome, result = await self._invoke_judged(part)
                attempts += 1
                if outcome.succeeded:
                    await self.source.ack(outcome.succeeded)
                    self.status.delivered += len(outcome.succeeded)
                if not outcome.failed:
                    break
                part = list(outcome.failed)
                if self._max_age is not None and time.time() - part[0].sent_at > self._max_age:
                    await self._give_up(part, RECORD_AGE_EXCEEDED, attempts, result, outcome.reason)
                    break
                if self._bisect and len(part) > 1 and result.function_error is not None:
                    middle = len(part) // 2
                    log.info(
                        "event source mapping %s: bisecting a failed batch of %d (%s)",
                        self.mapping.uuid,
                        len(part),
                        outcome.reason,
                    )
                    parts[:0] = [part[:middle], part[middle:]]
                    break
                if self._max_attempts is not None and attempts >= self._max_attempts:
                    await self._give_up(part, RETRY_EXHAUSTED, attempts, result, outcome.reason)
                    break
                log.info(
                    "event source mapping %s: retrying %d record(s) from %s (%s, attempt %d of %s)",
                    self.mapping.uuid,
                    len(part),
                    part[0].item_id,
                    outcome.reason,
                    attempts,
                    self._max_attempts,
                )
                await asyncio.sleep(doubling(attempts, BACKOFF_FIRST, BACKOFF_MAX))

    async def _invoke_judged(self, batch: Sequence[SourceMessage]) -> tuple[Any, _Invoked]:
        """Invoke until not throttled; AWS's judgement of the answer."""
        backoff = BACKOFF_FIRST
        while True:
            result = await self._invoke(batch)
            if result.throttled_or_missing is None:
                break
            self.status.last_error = result.throttled_or_missing
            log.warning(
                "event source mapping %s: %s; invoking again in %.1f s",
                self.mapping.uuid,
                result.throttled_or_missing,
                backoff,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
        outcome = judge(batch, result.payload, result.function_error, self._report_items, self.source.ordered)
        await self._set_result(FUNCTION_FAILED if result.function_error else OK)
        if result.function_error:
            self.status.last_error = f"function error {result.function_error}: {result.payload[:200]!r}"
        return outcome, result

    async def _invoke(self, batch: Sequence[SourceMessage]) -> _Invoked:
        request_id = str(uuids.uuid4())
        payload = json.dumps(self.source.event(batch)).encode()
        request = InvokeRequest(self._scope, self._function_name, self._qualifier, payload, request_id)
        self.status.invocations += 1
        try:
            answer = await self._invoker.invoke(request)
        except TooManyRequestsException as error:
            return _Invoked(request_id, b"", None, "", f"throttled: {error.message}")
        except LambdaError as error:
            # The function is gone or cannot run now (Pending, Failed): not the records' fault.
            return _Invoked(request_id, b"", None, "", f"{error.code}: {error.message}")
        return _Invoked(request_id, answer.payload, answer.function_error, answer.executed_version, None)

    async def _give_up(
        self,
        batch: Sequence[SourceMessage],
        condition: str,
        invoke_count: int,
        result: _Invoked,
        reason: str,
    ) -> None:
        """Send the batch's failure record to the on-failure destination (or the log), then ack it."""
        record = failure_record(
            request_id=result.request_id,
            function_arn=self.mapping.function_arn,
            condition=condition,
            invoke_count=invoke_count,
            executed_version=result.executed_version or "$LATEST",
            function_error=result.function_error,
            event_source_arn=self.mapping.event_source_arn,
            batch=batch,
            batch_info_key=self._batch_info_key,
            now=time.time(),
        )
        if not self.source.ordered:
            # A queue message has no place in a stream to point back at: the record carries it.
            record["records"] = [message.record for message in batch]
        body = json.dumps(record).encode()
        # A destination no event source serves (an SNS topic, an S3 bucket) will never be reachable:
        # waiting for it would hold the records (and a stream behind them) forever, so they are logged.
        kind = kind_for(self._destination) if self._destination else None
        denial = await self._destination_denial()
        if self._destination and kind is not None and denial is None:
            endpoint = self._endpoints.get(arn_service(self._destination), "")
            attributes = {
                "RequestID": result.request_id,
                "ErrorCode": condition,
                "ErrorMessage": reason,
            }
            await kind.publish(self._destination, endpoint, body, attributes)
            log.warning(
                "event source mapping %s: gave up on %d record(s) from %s (%s, %s); failure record to %s",
                self.mapping.uuid,
                len(batch),
                batch[0].item_id,
                condition,
                reason,
                self._destination,
            )
        else:
            log.error(
                "event source mapping %s: gave up on %d record(s) (%s, %s) with no on-failure destination%s; "
                "failure record: %s; records: %s",
                self.mapping.uuid,
                len(batch),
                condition,
                reason,
                _why_undelivered(self._destination, denial),
                body.decode(),
                json.dumps([message.record for message in batch]),
            )
        self.status.failed_to_destination += len(batch)
        await self.source.ack(batch)

    async def _destination_denial(self) -> str | None:
        """Why the execution role may not send to the on-failure destination (None: it may, or roles
        are not checked); the failure record then goes to the log, as to no destination."""
        if self._role_check is None or not self._destination:
            return None
        service = arn_service(self._destination)
        for action in DESTINATION_ACTIONS.get(service, ()):
            if await asyncio.to_thread(self._role_check, f"{service}:{action}", self._destination):
                return role_refusal(action, service)
        return None

    async def _set_result(self, result: str) -> None:
        if result != self.status.last_result:
            self.status.last_result = result
            await self._report(result)


def _why_undelivered(destination: str | None, denial: str | None) -> str:
    """Why a failure record went to the log: the role may not send it, or nothing serves the ARN."""
    if denial:
        return f" ({denial})"
    return f" (no event source serves {destination})" if destination else ""


def _arrived_before(messages: list[SourceMessage], moment: float) -> list[SourceMessage]:
    """The leading messages that arrived before ``moment``."""
    return list(itertools.takewhile(lambda message: message.sent_at < moment, messages))


@dataclass(frozen=True)
class _Invoked:
    request_id: str
    payload: bytes
    function_error: str | None
    executed_version: str
    # Why the invocation did not run at all (throttled, function missing), or None when it ran.
    throttled_or_missing: str | None
