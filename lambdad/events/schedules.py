"""The schedule runner: fires EventBridge Scheduler schedules at their Lambda targets, on time.

Every tick the runner reads the schedules, works out each one's next *slot* (the time its expression
names) and fires the slots that are due. Firing is, in ONE store transaction:

1. claim the slot: compare-and-set the schedule's ``last_slot`` from what the runner read to the slot
   (``store.schedules.claim_slot``), so a slot is fired at most once, across restarts too;
2. hand the invocation over (``hand_over(connection, request)``: ``EventQueue.enqueue_in``, an insert
   into the durable Event queue in the same transaction), after checking the target function exists.

So a slot fires once, and the invocation it fired is never lost, whenever the server dies.

AWS's behaviour, as documented:

- Lambda targets are invoked asynchronously (``InvocationType: Event``) with ``Target.Input`` as the
  payload, its context attributes (``<aws.scheduler.scheduled-time>``, ``<aws.scheduler.execution-id>``,
  ``<aws.scheduler.attempt-number>``, ``<aws.scheduler.schedule-arn>``) filled in.
- FlexibleTimeWindow FLEXIBLE: a slot fires at a random moment within the window after it; the moment
  is derived from the schedule and the slot, so a restart does not move it.
- StartDate/EndDate bound recurring schedules (``at()`` ignores them); DISABLED schedules do not fire;
  a schedule with no slot left is complete, and ActionAfterCompletion DELETE then deletes it.
- When the target cannot be invoked (the function does not exist, or cannot take invocations yet), the
  runner retries with exponential backoff while the attempts stay within RetryPolicy's
  MaximumRetryAttempts and the event is younger than MaximumEventAgeInSeconds, then sends the event to
  DeadLetterConfig's queue with AWS's message attributes (or drops it, saying so, without one).
- The schedule acts with its ``Target.RoleArn``, assumed by ``scheduler.amazonaws.com``: when the role
  is one the identity store has (``roles``, given with ``--auth sigv4``), it must trust the scheduler and
  allow ``lambda:InvokeFunction`` on the target, else the attempt fails with AccessDeniedException and
  is retried and dead-lettered like any failed attempt (the role may be fixed meanwhile); the dead-letter
  message needs ``sqs:SendMessage`` on the queue too (else it is dropped, saying so). A role the store
  does not know, and every role with authentication off, is not checked.
- Slots missed while lambdad was down: AWS documents no downtime of its own; its rule for events it
  could not deliver is the retry policy's MaximumEventAgeInSeconds. lambdad fires only the most recent
  missed slot of each schedule (when it is younger than MaximumEventAgeInSeconds) and logs how many
  earlier slots it skipped, rather than a burst of stale invocations.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import Connection

from lambdad.errors import InvalidRequestContentException
from lambdad.events import sources
from lambdad.events.backoff import doubling
from lambdad.events.ownership import LocalOwnership, WorkKind, WorkOwnership
from lambdad.events.schedule_expressions import At, Rate, next_fire, parse, time_zone
from lambdad.invocation import InvokeRequest
from lambdad.invocation.invoker import check_json
from lambdad.models import FunctionState, Scope, parse_function_ref
from lambdad.policy.roles import RolePermissions
from lambdad.services.resolution import read_target
from lambdad.store import Database
from lambdad.store import schedules as records
from lambdad.store.outage import Outage
from lambdad.store.schedules import ScheduleRecord

log = logging.getLogger(__name__)

# Called inside the transaction that claims the slot, with that transaction's connection.
HandOver = Callable[[Connection, InvokeRequest], None]

SCHEDULER = "scheduler.amazonaws.com"
_MICROSECOND = timedelta(microseconds=1)
_MAX_RETRY_DELAY = 60.0
_MISSED_SCAN_LIMIT = 100_000


@dataclass(frozen=True)
class Slot:
    """One firing of a schedule: the time its expression names, and when it fires (later when flexible)."""

    scheduled: datetime
    fire_at: datetime


@dataclass(frozen=True)
class Failure:
    """Why a target could not be invoked: AWS's error code and message."""

    code: str
    message: str
    # False for failures a retry cannot fix (a payload Lambda refuses): straight to the dead-letter queue.
    retryable: bool = True


@dataclass(frozen=True)
class Delivery:
    """A committed firing (or retry): ``failure`` says why the target could not take it, None if it did."""

    failure: Failure | None


class ScheduleRunner:
    """Fires due schedules every ``tick`` seconds; ``status()`` tells what each schedule will do next."""

    def __init__(
        self,
        database: Database,
        account: str,
        event_sources: dict[str, str],
        hand_over: HandOver,
        wake: Callable[[], None] = lambda: None,
        tick: float = 1.0,
        minute_seconds: float = 60.0,
        retry_base_delay: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ownership: WorkOwnership | None = None,
        roles: RolePermissions | None = None,
    ) -> None:
        self._database = database
        # What each schedule's role may do (None: authentication off, roles are not checked).
        self._roles = roles
        self._account = account
        self._event_sources = event_sources
        self._hand_over = hand_over
        # Tells the Event queue an invocation was handed over (it would otherwise find it within a poll).
        self._wake = wake
        self._tick = tick
        self._minute_seconds = minute_seconds
        self._retry_base_delay = retry_base_delay
        self._clock = clock
        # In a cluster each schedule fires from the node that owns it (claim_slot keeps a slot from firing
        # twice even if two nodes ever believed they owned it).
        self._ownership = ownership or LocalOwnership()
        self._next: dict[tuple[Scope, str, str], datetime | None] = {}
        self._planned: dict[tuple[Scope, str, str], tuple[tuple[datetime, datetime | None], Slot | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._retries: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start ticking on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop ticking and retrying (a retry in progress is given up; its slot stays claimed)."""
        for task in [*self._retries, *([self._task] if self._task else [])]:
            task.cancel()
        for task in [*self._retries, *([self._task] if self._task else [])]:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        outage = Outage(log, "schedules")
        while True:
            try:
                await self.tick()
                outage.succeeded()
            except Exception as error:
                if outage.failed(error) is None:
                    log.exception("schedule runner tick failed; trying again")
            await asyncio.sleep(self._tick)

    async def tick(self) -> None:
        """Fire every slot that is due now."""
        now = self._clock()
        schedules = await anyio.to_thread.run_sync(self._read_all)
        self._ownership.track(WorkKind.SCHEDULE, {work_key(schedule) for schedule in schedules})
        seen = set()
        for schedule in schedules:
            key = _key(schedule)
            seen.add(key)
            if not self._ownership.owns(WorkKind.SCHEDULE, work_key(schedule)):
                continue  # another node fires it
            try:
                await self._consider(schedule, now)
            except Exception:  # one schedule's trouble must not hold the others up
                log.exception("schedule %s could not be fired; trying again next tick", self._arn(schedule))
        for gone in set(self._next) - seen:
            del self._next[gone]
        for gone in set(self._planned) - seen:
            del self._planned[gone]

    def status(self) -> list[dict[str, Any]]:
        """Each schedule's state, last and next fire times and last result (lambdad's own view)."""
        with self._database.read() as connection:
            schedules = records.all_schedules(connection)
        return [
            {
                "Region": s.region,
                "GroupName": s.group_name,
                "Name": s.name,
                "Arn": self._arn(s),
                "State": s.state,
                "ScheduleExpression": s.config.get("ScheduleExpression"),
                "ScheduleExpressionTimezone": s.config.get("ScheduleExpressionTimezone", "UTC"),
                "TargetArn": s.config["Target"]["Arn"],
                "LastScheduledTime": _iso(s.last_slot),
                "LastFireTime": _iso(s.last_fired_at),
                "NextFireTime": _iso(self._next.get(_key(s))),
                "LastResult": s.last_result,
            }
            for s in schedules
        ]

    # --- planning ----------------------------------------------------------------------------------

    def _read_all(self) -> list[ScheduleRecord]:
        with self._database.read() as connection:
            return records.all_schedules(connection)

    def next_slot(self, schedule: ScheduleRecord, after: datetime | None = None) -> Slot | None:
        """The schedule's first slot after ``after`` (default: after its last claimed slot); None when
        it has none left."""
        config = schedule.config
        expression = parse(config["ScheduleExpression"])
        zone = time_zone(config.get("ScheduleExpressionTimezone"))
        changed = datetime.fromisoformat(config["Anchor"])
        start = _date(config.get("StartDate"))
        end = _date(config.get("EndDate"))
        if isinstance(expression, At):
            start = end = None  # AWS ignores both for one-time schedules
        anchor = start or changed
        if after is None:
            # Slots from the last change on (a rate fires at once), never one already claimed.
            after = max(changed - _MICROSECOND, start - _MICROSECOND if start else changed - _MICROSECOND)
            if schedule.last_slot is not None:
                after = max(after, schedule.last_slot)
        scheduled = next_fire(expression, after, zone, anchor, self._minute_seconds)
        if scheduled is None or (end is not None and scheduled > end):
            return None
        return Slot(scheduled, scheduled + self._flex_offset(schedule, scheduled))

    def _planned_slot(self, schedule: ScheduleRecord) -> Slot | None:
        """``next_slot``, computed once per change of the schedule or of its last slot (a yearly cron
        would otherwise walk a year of days every tick)."""
        key = _key(schedule)
        version = (schedule.last_modified, schedule.last_slot)
        planned = self._planned.get(key)
        if planned is None or planned[0] != version:
            planned = (version, self.next_slot(schedule))
            self._planned[key] = planned
        return planned[1]

    def _flex_offset(self, schedule: ScheduleRecord, scheduled: datetime) -> timedelta:
        window = schedule.config.get("FlexibleTimeWindow", {})
        if window.get("Mode") != "FLEXIBLE":
            return timedelta(0)
        seconds = int(window["MaximumWindowInMinutes"] * self._minute_seconds)
        # Random per slot, but the same after a restart: derived from the schedule and the slot.
        digest = hashlib.sha256(f"{self._arn(schedule)}|{scheduled.isoformat()}".encode()).digest()
        return timedelta(seconds=int.from_bytes(digest[:8], "big") % max(seconds, 1))

    def _latest_due(self, schedule: ScheduleRecord, slot: Slot, now: datetime) -> tuple[Slot, int]:
        """The most recent slot due by ``now`` from ``slot`` on, and how many earlier ones it passes."""
        expression = parse(schedule.config["ScheduleExpression"])
        skipped = 0
        if isinstance(expression, Rate):
            period = timedelta(seconds=expression.minutes * self._minute_seconds)
            skipped = max(0, int((now - slot.scheduled) // period) - 1)
            if skipped:
                scheduled = slot.scheduled + skipped * period
                slot = Slot(scheduled, scheduled + self._flex_offset(schedule, scheduled))
        for _ in range(_MISSED_SCAN_LIMIT):
            following = self.next_slot(schedule, slot.scheduled)
            if following is None or following.fire_at > now:
                break
            slot, skipped = following, skipped + 1
        return slot, skipped

    async def _consider(self, schedule: ScheduleRecord, now: datetime) -> None:
        key = _key(schedule)
        if schedule.state != "ENABLED":
            self._next[key] = None  # neither fires nor completes while disabled
            return
        try:
            slot = self._planned_slot(schedule)
        except ValueError as error:  # stored before a check existed, or a zone since removed
            self._next[key] = None
            log.warning("schedule %s cannot be evaluated: %s", self._arn(schedule), error)
            return
        if slot is None:
            self._next[key] = None
            if schedule.config.get("ActionAfterCompletion") == "DELETE":
                await anyio.to_thread.run_sync(self._delete_completed, schedule)
            return
        if slot.fire_at > now:
            self._next[key] = slot.fire_at
            return
        # Late by more than a tick or two: slots were missed (lambdad was down); fire the latest only.
        slot, skipped = self._latest_due(schedule, slot, now)
        if skipped:
            log.warning(
                "schedule %s: %d slot(s) missed while lambdad was not running were skipped; firing the "
                "latest (%s) only",
                self._arn(schedule),
                skipped,
                _iso(slot.scheduled),
            )
        max_age = schedule.config["Target"]["RetryPolicy"]["MaximumEventAgeInSeconds"]
        too_old = (now - slot.scheduled).total_seconds() > max_age
        await self._fire(schedule, slot, now, too_old)

    def _delete_completed(self, schedule: ScheduleRecord) -> None:
        with self._database.write() as connection:
            if records.delete_schedule(connection, schedule.scope, schedule.group_name, schedule.name):
                log.info("schedule %s completed; deleted (ActionAfterCompletion DELETE)", self._arn(schedule))

    # --- firing ------------------------------------------------------------------------------------

    async def _fire(self, schedule: ScheduleRecord, slot: Slot, now: datetime, too_old: bool) -> None:
        execution_id = str(uuid.uuid4())
        request = self._request(schedule, slot, execution_id, attempt=1)
        outcome = await anyio.to_thread.run_sync(
            self._claim_and_hand_over, schedule, slot, now, request, too_old
        )
        if outcome is None:
            return  # another claim got there first
        failure = outcome.failure
        following = self.next_slot(schedule, slot.scheduled)
        self._next[_key(schedule)] = following.fire_at if following else None
        if failure is None and not too_old:
            self._wake()
        if too_old:
            log.warning(
                "schedule %s: slot %s is older than MaximumEventAgeInSeconds; dropped",
                self._arn(schedule),
                _iso(slot.scheduled),
            )
        elif failure is None:
            log.info("schedule %s fired for %s", self._arn(schedule), _iso(slot.scheduled))
        elif not failure.retryable:
            await self._dead_letter(schedule, slot, execution_id, failure, 0, None)
        else:
            task = asyncio.get_running_loop().create_task(self._retry(schedule, slot, execution_id, failure))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)

    def _claim_and_hand_over(
        self,
        schedule: ScheduleRecord,
        slot: Slot,
        now: datetime,
        request: InvokeRequest | None,
        too_old: bool,
    ) -> Delivery | None:
        """Claim the slot and hand the invocation over, in one transaction; None when the claim lost."""
        with self._database.write() as connection:
            claimed = records.claim_slot(
                connection,
                schedule.scope,
                schedule.group_name,
                schedule.name,
                schedule.last_slot,
                slot.scheduled,
                now,
            )
            if not claimed:
                return None
            if too_old:
                records.record_result(
                    connection, *_key(schedule), "Dropped: older than MaximumEventAgeInSeconds"
                )
                return Delivery(None)
            failure = self._deliver(connection, schedule, request)
            records.record_result(connection, *_key(schedule), _result(failure))
            return Delivery(failure)

    def _deliver(
        self, connection: Connection, schedule: ScheduleRecord, request: InvokeRequest | None
    ) -> Failure | None:
        """Hand ``request`` over inside the caller's transaction, or say why the target cannot take it."""
        if request is None:
            arn = schedule.config["Target"]["Arn"]
            return Failure("ValidationException", f"lambdad invokes Lambda functions only, not {arn}")
        try:
            check_json(request.payload)
        except InvalidRequestContentException as error:
            return Failure(error.code, error.message, retryable=False)
        found = read_target(connection, request.scope, request.function_name, request.qualifier)
        if found is None:
            return Failure(
                "ResourceNotFoundException",
                f"Function not found: {schedule.config['Target']['Arn']}",
            )
        if found.version.state in (FunctionState.PENDING, FunctionState.FAILED):
            return Failure(
                "ResourceConflictException",
                "The operation cannot be performed at this time. The function is currently in the "
                f"following state: {found.version.state.value}",
            )
        denial = self._denial(schedule, "lambda:InvokeFunction", schedule.config["Target"]["Arn"])
        if denial is not None:
            return Failure("AccessDeniedException", denial)
        self._hand_over(connection, request)
        return None

    def _denial(self, schedule: ScheduleRecord, action: str, resource: str) -> str | None:
        """Why the schedule's role may not perform ``action`` on ``resource`` (None: it may, or roles are
        not checked). Reads the identity store on connections of its own."""
        role = schedule.config["Target"].get("RoleArn")
        if self._roles is None or not role:
            return None
        context = {"aws:SourceArn": self._arn(schedule), "aws:SourceAccount": schedule.scope.account}
        return self._roles.denial(
            role, action, resource, service=SCHEDULER, session=schedule.name[:64], context=context
        )

    async def _retry(self, schedule: ScheduleRecord, slot: Slot, execution_id: str, failure: Failure) -> None:
        policy = schedule.config["Target"]["RetryPolicy"]
        max_attempts, max_age = policy["MaximumRetryAttempts"], policy["MaximumEventAgeInSeconds"]
        retries = 0
        condition = "MaximumRetryAttempts"
        while True:
            if retries >= max_attempts:
                break
            delay = doubling(retries + 1, self._retry_base_delay, _MAX_RETRY_DELAY)
            if (self._clock() + timedelta(seconds=delay) - slot.scheduled).total_seconds() > max_age:
                condition = "MaximumEventAgeInSeconds"
                break
            log.info(
                "schedule %s: target not invoked (%s: %s); retry %d in %.1fs",
                self._arn(schedule),
                failure.code,
                failure.message,
                retries + 1,
                delay,
            )
            await asyncio.sleep(delay)
            retries += 1
            request = self._request(schedule, slot, execution_id, attempt=retries + 1)
            outcome = await anyio.to_thread.run_sync(self._hand_over_again, schedule, request)
            if outcome is None:
                log.info("schedule %s was deleted; its retries stop", self._arn(schedule))
                return
            again = outcome.failure
            if again is None:
                self._wake()
                log.info(
                    "schedule %s fired for %s on retry %d", self._arn(schedule), _iso(slot.scheduled), retries
                )
                return
            failure = again
        await self._dead_letter(schedule, slot, execution_id, failure, retries, condition)

    def _hand_over_again(self, schedule: ScheduleRecord, request: InvokeRequest | None) -> Delivery | None:
        """A retry's hand-over; None when the schedule has been deleted meanwhile."""
        with self._database.write() as connection:
            if records.get_schedule(connection, *_key(schedule)) is None:
                return None
            failure = self._deliver(connection, schedule, request)
            records.record_result(connection, *_key(schedule), _result(failure))
            return Delivery(failure)

    async def _dead_letter(
        self,
        schedule: ScheduleRecord,
        slot: Slot,
        execution_id: str,
        failure: Failure,
        retries: int,
        condition: str | None,
    ) -> None:
        target = schedule.config["Target"]
        queue = target.get("DeadLetterConfig", {}).get("Arn")
        summary = f"{failure.code}: {failure.message} after {retries} retr{'y' if retries == 1 else 'ies'}"
        if queue is None:
            log.warning(
                "schedule %s: event for %s dropped (%s; no DeadLetterConfig)",
                self._arn(schedule),
                _iso(slot.scheduled),
                summary,
            )
            return
        kind = sources.kind_for(queue)
        if kind is None:
            log.warning(
                "schedule %s: event for %s dropped (%s): lambdad has no event source for %s",
                self._arn(schedule),
                _iso(slot.scheduled),
                summary,
                queue,
            )
            return
        attributes = dead_letter_attributes(
            self._arn(schedule), target["Arn"], slot.scheduled, execution_id, failure, retries, condition
        )
        denial = await anyio.to_thread.run_sync(self._denial, schedule, "sqs:SendMessage", queue)
        if denial is not None:
            log.warning(
                "schedule %s: event for %s dropped (%s): its role may not send to %s: %s",
                self._arn(schedule),
                _iso(slot.scheduled),
                summary,
                queue,
                denial,
            )
            return
        body = (target.get("Input") or "{}").encode()
        endpoint = self._event_sources.get(sources.arn_service(queue), "")
        try:
            await kind.publish(queue, endpoint, body, attributes)
        except sources.SourceUnavailable as error:
            log.warning(
                "schedule %s: dead-letter queue %s unreachable (%s); event dropped",
                self._arn(schedule),
                queue,
                error,
            )
            return
        log.warning(
            "schedule %s: event for %s sent to %s (%s)",
            self._arn(schedule),
            _iso(slot.scheduled),
            queue,
            summary,
        )

    # --- helpers -----------------------------------------------------------------------------------

    def _request(
        self, schedule: ScheduleRecord, slot: Slot, execution_id: str, attempt: int
    ) -> InvokeRequest | None:
        """The Event invocation of a Lambda target, or None when the target is not a Lambda function."""
        target = schedule.config["Target"]
        ref = parse_function_ref(target["Arn"])
        if ref is None or not ref.is_arn or not target["Arn"].startswith("arn:aws:lambda:"):
            return None
        payload = render_input(
            target.get("Input"), self._arn(schedule), slot.scheduled, execution_id, attempt
        )
        return InvokeRequest(
            # In the schedule's own account: a schedule invokes its account's functions.
            scope=Scope(schedule.scope.account, ref.region or schedule.region),
            function_name=ref.name,
            qualifier=ref.qualifier,
            payload=payload.encode(),
            request_id=str(uuid.uuid4()),
        )

    def _arn(self, schedule: ScheduleRecord) -> str:
        scope, group, name = _key(schedule)
        return f"arn:aws:scheduler:{scope.region}:{scope.account}:schedule/{group}/{name}"


def render_input(
    text: str | None, schedule_arn: str, scheduled: datetime, execution_id: str, attempt: int
) -> str:
    """Target.Input with AWS's context attributes filled in (``{}`` when there is no Input)."""
    if not text:
        return "{}"
    values = {
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.scheduled-time>": _iso(scheduled) or "",
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def dead_letter_attributes(
    schedule_arn: str,
    target_arn: str,
    scheduled: datetime,
    execution_id: str,
    failure: Failure,
    retries: int,
    condition: str | None,
) -> dict[str, str]:
    """The message attributes EventBridge Scheduler puts on a dead-letter message
    (EXHAUSTED_RETRY_CONDITION only when a retry limit ended the delivery)."""
    return {
        "ERROR_CODE": failure.code,
        "ERROR_MESSAGE": failure.message,
        "EXECUTION_ID": execution_id,
        **({"EXHAUSTED_RETRY_CONDITION": condition} if condition else {}),
        "IS_PAYLOAD_TRUNCATED": "false",
        "RETRY_ATTEMPTS": str(retries),
        "SCHEDULED_TIME": _iso(scheduled) or "",
        "SCHEDULE_ARN": schedule_arn,
        "TARGET_ARN": target_arn,
    }


def work_key(schedule: ScheduleRecord) -> str:
    """The schedule's key among the work with one owner: ``account/region/group/name``."""
    return f"{schedule.scope.account}/{schedule.region}/{schedule.group_name}/{schedule.name}"


def _key(schedule: ScheduleRecord) -> tuple[Scope, str, str]:
    return schedule.scope, schedule.group_name, schedule.name


def _result(failure: Failure | None) -> str:
    return "Invoked (Event)" if failure is None else f"{failure.code}: {failure.message}"


def _date(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None
