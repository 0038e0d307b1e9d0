"""Event (asynchronous) invocations, durable: accepted into the store, run at least once, retried and
finished as AWS does, their records sent to destinations and dead-letter queues.

- ``submit`` returns once the event is committed (the API answers 202 after that). Concurrent submits
  share transactions (``GroupCommitter``), so thousands per second cost a few commits each.
- A dispatcher *claims* due events for this process with a lease (``owner`` + ``lease_until``) and hands
  them to workers; a heartbeat extends the leases this process holds. An event is removed only once it is
  finished: it succeeded, its record reached its destination(s), or it was dropped with a logged reason.
  A process killed at any moment loses nothing: its leases run out (or, for a process on this host that
  is gone, are released at the next start) and another worker runs those events again.
- What happens after each attempt is ``async_policy``: function errors are retried
  ``MaximumRetryAttempts`` times after ``Settings.async_retry_delays``; throttles and system errors go back
  to the queue with exponential backoff until ``MaximumEventAgeInSeconds``.
- Records go to a Lambda function (a new durable event, in the same commit that removes this one) or to
  a queue an event source kind serves (``kind.publish``); a target that cannot be reached now keeps the
  event stored and is tried again with backoff. A record is sent with the function's execution role: with
  authentication on (``roles``), a role the identity store has must allow sending there (sqs:SendMessage,
  sns:Publish, lambda:InvokeFunction, ...) when the event finishes, else the record is dropped with a
  logged reason, as AWS drops what the role cannot deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Connection

from lambdad.errors import LambdaError, ResourceNotFoundException, TooManyRequestsException
from lambdad.events import async_policy as policy
from lambdad.events.group_commit import GroupCommitter
from lambdad.events.invocation_records import (
    dead_letter_attributes,
    function_response,
    invocation_record,
    service_error,
)
from lambdad.events.ownership import LocalOwnership, WorkOwnership
from lambdad.events.sources import NumberAttribute, SourceKind, SourceUnavailable, arn_service, kind_for
from lambdad.invocation.invoker import Invoker, InvokeRequest
from lambdad.models import LATEST, Scope, parse_function_ref
from lambdad.policy.roles import RolePermissions, function_source
from lambdad.services.lookup import RunnableFunction
from lambdad.services.resolution import resolve
from lambdad.store import Database
from lambdad.store import async_events as store
from lambdad.store import function_configs as config_records
from lambdad.store.async_events import NewEvent, StoredEvent
from lambdad.store.function_configs import EventInvokeConfig
from lambdad.store.outage import Outage

log = logging.getLogger(__name__)
T = TypeVar("T")

# What the execution role needs to deliver a record or dead-letter message, per ARN service.
DELIVERY_ACTIONS = {
    "sqs": "SendMessage",
    "sns": "Publish",
    "lambda": "InvokeFunction",
    "events": "PutEvents",
    "s3": "PutObject",
}
# How long a record that cannot reach its destination is kept trying after the event finished.
DELIVERY_MAX_AGE = 6 * 3600.0
_CLAIM_MAX = 500


class EventQueue:
    """The durable queue of Event invocations and the workers that run them."""

    def __init__(
        self,
        database: Database,
        invoker: Invoker,
        *,
        retry_delays: Sequence[float] = (60.0, 120.0),
        throttle_backoff_max: float = 300.0,
        event_sources: Mapping[str, str] | None = None,
        workers: int = 16,
        lease_seconds: float = 60.0,
        poll_interval: float = 1.0,
        kinds: Callable[[str], SourceKind | None] = kind_for,
        ownership: WorkOwnership | None = None,
        owner: str | None = None,
    ) -> None:
        self._database = database
        self._invoker = invoker
        self._retry_delays = tuple(retry_delays)
        self._backoff_max = throttle_backoff_max
        self._endpoints = dict(event_sources or {})
        self._workers_wanted = max(1, workers)
        self._lease_ms = int(lease_seconds * 1000)
        self._poll_interval = poll_interval
        self._kinds = kinds
        # In a cluster, only events of the partitions this node owns are claimed here.
        self._ownership = ownership or LocalOwnership()
        self._ownership.subscribe(self.wake)
        # host:pid:token names this process in ``owner``; the token tells a reused pid from this one.
        self.owner = owner or process_owner()
        self._committer = GroupCommitter(database)
        self._ready: asyncio.Queue[tuple[StoredEvent, EventInvokeConfig | None]] = asyncio.Queue()
        self._busy = 0
        # Events this process holds and is still working on: the heartbeat renews these leases only, so
        # an event a worker lost track of (a bug, a failed write) comes back when its lease runs out.
        self._held: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Shared by the workers: an outage is logged once, not once per worker.
        self._recording_outage = Outage(log, "Event invocations (recording results)")
        # What execution roles may do, set by the composition root with authentication on: a destination
        # or dead-letter queue the function's role may no longer send to gets nothing (None: not checked).
        self.roles: RolePermissions | None = None

    # --- the interface ---------------------------------------------------------------------------

    async def submit(self, request: InvokeRequest) -> None:
        """Accept an Event invocation; returns once it is committed to the store."""
        await self._committer.add(store.insert_many, _new_event(request))
        self._wake.set()

    @staticmethod
    def enqueue_in(connection: Connection, request: InvokeRequest) -> None:
        """Accept an Event invocation inside the caller's write transaction (the schedule runner claims
        a slot and enqueues its invocation atomically); the workers find it within a poll, or at once
        after ``wake()``."""
        store.insert(connection, _new_event(request))

    def wake(self) -> None:
        """Look for due events now (after a caller enqueued one with ``store.async_events.insert``)."""
        self._wake.set()

    async def start(self) -> None:
        """Resume: release the events of processes on this host that are gone, then start working.
        Events held by a live process elsewhere come back when their lease runs out."""
        if self._tasks:
            return
        released = await self._committer.write(self._release_dead_owners)
        if released:
            log.info("resuming %d Event invocation(s) left running by a stopped process", released)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._dispatch()), loop.create_task(self._heartbeat())]
        self._tasks += [loop.create_task(self._work()) for _ in range(self._workers_wanted)]

    async def close(self, grace: float = 3.0) -> None:
        """Stop working: stop claiming, give running invocations up to ``grace`` seconds to finish, then
        release every event this process holds so that the next start (or another process) runs them
        at once."""
        tasks, self._tasks = self._tasks, []
        dispatcher_and_heartbeat, workers = tasks[:2], tasks[2:]
        for task in dispatcher_and_heartbeat:
            task.cancel()
        while not self._ready.empty():  # claimed but not started: released below
            self._ready.get_nowait()
        deadline = time.monotonic() + grace
        while self._busy and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in workers:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._committer.write(lambda c: store.release_owners(c, [self.owner]))
        self._held.clear()
        await self._committer.close()

    @property
    def commits(self) -> int:
        """Write transactions committed so far (group commits count once)."""
        return self._committer.commits

    # --- claiming and leases -----------------------------------------------------------------------

    def _release_dead_owners(self, connection: Connection) -> int:
        dead = {owner for owner in store.owners(connection) if _is_gone(owner, self.owner)}
        return store.release_owners(connection, dead)

    async def _dispatch(self) -> None:
        outage = Outage(log, "Event invocations (claiming)")
        while True:
            self._wake.clear()
            room = self._workers_wanted * 2 - self._ready.qsize() - self._busy
            if room > 0:
                now = store.now_ms()
                limit = min(room, _CLAIM_MAX)
                try:
                    claimed = await self._committer.write(
                        partial(
                            store.claim,
                            owner=self.owner,
                            now=now,
                            lease_ms=self._lease_ms,
                            limit=limit,
                            partitions=self._ownership.partitions(),
                        )
                    )
                    outage.succeeded()
                except Exception as error:
                    delay = outage.failed(error)
                    if delay is None:
                        log.exception("could not claim Event invocations; trying again shortly")
                    else:
                        await asyncio.sleep(delay)
                    claimed = []
                self._held.update(event.request_id for event in claimed)  # renewed from now on
                try:
                    # Claimed events wait for their configs through an outage rather than for their lease.
                    read = partial(anyio.to_thread.run_sync, self._read_configs, claimed)
                    configs = await self._outlasting(read) if claimed else {}
                except Exception:
                    # They come back when their lease runs out.
                    log.exception("could not read the configs of %d Event invocation(s)", len(claimed))
                    self._held.difference_update(event.request_id for event in claimed)
                    claimed, configs = [], {}
                for event in claimed:
                    self._ready.put_nowait((event, configs.get(event.request_id)))
                if len(claimed) == limit:
                    continue  # more may be due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    def _read_configs(self, events: list[StoredEvent]) -> dict[str, EventInvokeConfig | None]:
        """The event invoke config of each event's qualifier (alias, version or $LATEST)."""
        found: dict[tuple[Scope, str, str], EventInvokeConfig | None] = {}
        answer: dict[str, EventInvokeConfig | None] = {}
        with self._database.read() as connection:
            for event in events:
                try:
                    name, qualifier = resolve(_scope(event), event.function_name, event.qualifier)
                except LambdaError:
                    continue
                key = (_scope(event), name, qualifier or LATEST)
                if key not in found:
                    found[key] = config_records.get_event_invoke_config(connection, *key)
                answer[event.request_id] = found[key]
        return answer

    async def _heartbeat(self) -> None:
        outage = Outage(log, "Event invocation leases")
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                until = store.now_ms() + self._lease_ms
                held = sorted(self._held)
                await self._committer.write(
                    partial(store.renew, owner=self.owner, until=until, request_ids=held)
                )
                outage.succeeded()
            except Exception as error:
                if outage.failed(error) is None:
                    log.exception("could not renew the leases of running Event invocations")

    # --- running one event -------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            event, config = await self._ready.get()
            self._busy += 1
            try:
                await self._process(event, config)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug or a failed write, not the function's fault: the event comes back when its lease
                # runs out (it is no longer renewed).
                log.exception("Event invocation %s failed unexpectedly; it will run again", event.request_id)
            finally:
                self._held.discard(event.request_id)
                self._busy -= 1
                if self._ready.qsize() < self._workers_wanted:
                    self._wake.set()

    async def _process(self, event: StoredEvent, config: EventInvokeConfig | None) -> None:
        if event.outcome is not None:  # finished earlier; its record still has to be delivered
            await self._deliver(event, event.outcome, event.deliveries or [], event.attempts, event.response)
            return
        scope = _scope(event)
        limits = policy.Limits.of(config)
        created = event.created_at / 1000
        request = InvokeRequest(
            scope, event.function_name, event.qualifier, event.payload, event.request_id, event.client_context
        )
        try:
            runnable = await self._outlasting(
                lambda: self._invoker.find(scope, event.function_name, event.qualifier)
            )
        except ResourceNotFoundException as error:
            log.warning("Event invocation %s dropped: %s", event.request_id, error.message)
            await self._outlasting(lambda: self._committer.add(store.delete_events, event.request_id))
            return
        except LambdaError as error:  # not runnable yet (Pending) or now (Failed): the queue waits
            await self._requeue(event, config, None, service_error(error.status, error.code, error.message))
            return
        if policy.expired(created, time.time(), limits):
            await self._finish(
                event, config, runnable, policy.EVENT_AGE_EXCEEDED, event.attempts, event.response
            )
            return
        if runnable.reserved_concurrency == 0:
            await self._finish(
                event, config, runnable, policy.ZERO_RESERVED_CONCURRENCY, event.attempts, None
            )
            return
        try:
            result = await self._invoker.invoke(request)
        except TooManyRequestsException as error:
            await self._requeue(event, config, runnable, service_error(429, error.code, error.message))
            return
        except LambdaError as error:
            if error.status >= 500 or error.status == 409:
                await self._requeue(
                    event, config, runnable, service_error(error.status, error.code, error.message)
                )
            else:
                log.warning("Event invocation %s dropped: %s %s", event.request_id, error.code, error.message)
                await self._outlasting(lambda: self._committer.add(store.delete_events, event.request_id))
            return
        except Exception as error:  # the sandbox or environment failed: a system error
            log.warning("Event invocation %s hit a system error: %r", event.request_id, error)
            # The error's text names host paths; records and dead letters say where the detail is.
            message = f"lambdad failed to run the invocation; see the server log for {event.request_id}"
            await self._requeue(event, config, runnable, service_error(500, "ServiceException", message))
            return
        attempts = event.attempts + 1
        response = function_response(result.payload, result.function_error, result.executed_version)
        if result.function_error is None:
            await self._finish(event, config, runnable, policy.SUCCESS, attempts, response)
            return
        now = time.time()
        decision = policy.after_function_error(created, now, attempts, limits, self._retry_delays)
        if isinstance(decision, policy.Finish):
            await self._finish(event, config, runnable, decision.condition, attempts, response)
            return
        log.info("Event invocation %s of %s: %s", event.request_id, _arn(runnable, scope), decision.reason)
        await self._reschedule(
            event,
            due_at=int(decision.due * 1000),
            attempts=attempts,
            response=response,
        )

    async def _requeue(
        self,
        event: StoredEvent,
        config: EventInvokeConfig | None,
        runnable: RunnableFunction | None,
        error: dict[str, Any],
    ) -> None:
        """Back to the queue after a throttle or system error, or finished if it would come too late."""
        requeues = event.requeues + 1
        limits = policy.Limits.of(config)
        decision = policy.after_throttle(
            event.created_at / 1000, time.time(), requeues, limits, self._backoff_max
        )
        # The record and dead-letter message show the function's last answer if it ever ran, else this.
        response = event.response if event.response and "payload" in event.response else error
        if isinstance(decision, policy.Finish):
            await self._finish(event, config, runnable, decision.condition, event.attempts, response)
            return
        log.info(
            "Event invocation %s of %s: %s %s; %s",
            event.request_id,
            event.function_name,
            error["errorCode"],
            error["errorMessage"],
            decision.reason,
        )
        await self._reschedule(event, due_at=int(decision.due * 1000), requeues=requeues, response=response)

    async def _reschedule(self, event: StoredEvent, **changes: Any) -> None:
        held = await self._outlasting(
            lambda: self._committer.write(
                lambda c: store.reschedule(c, event.request_id, self.owner, **changes)
            )
        )
        if not held:
            log.warning("Event invocation %s was taken over by another worker", event.request_id)
        self._wake.set()

    async def _outlasting(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, tried again while the database is unavailable: what a worker records after a
        run must not be lost to an outage (the event would run again when its lease ran out), and an
        event whose function could not be looked up has not run yet."""
        outage = self._recording_outage
        while True:
            try:
                result = await attempt()
            except Exception as error:
                delay = outage.failed(error)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                continue
            outage.succeeded()
            return result

    # --- finishing ---------------------------------------------------------------------------------

    async def _finish(
        self,
        event: StoredEvent,
        config: EventInvokeConfig | None,
        runnable: RunnableFunction | None,
        condition: str,
        attempts: int,
        response: dict[str, Any] | None,
    ) -> None:
        """Build what the event's destination and dead-letter queue receive, then deliver it."""
        deliveries: list[dict[str, Any]] = []
        scope = _scope(event)
        arn = _arn(runnable, scope) if runnable else _invoked_arn(event)
        which = "OnSuccess" if condition == policy.SUCCESS else "OnFailure"
        destination = ((config.destinations if config else {}).get(which) or {}).get("Destination")
        if destination:
            record = invocation_record(
                request_id=event.request_id,
                function_arn=arn,
                condition=condition,
                attempts=attempts,
                request_payload=event.payload,
                response=response,
            )
            deliveries.append({"target": destination, "body": json.dumps(record), "attributes": {}})
        dead_letter = None
        if condition != policy.SUCCESS and runnable is not None:
            dead_letter = (runnable.version.extra.get("DeadLetterConfig") or {}).get("TargetArn")
        if dead_letter:
            attributes = dead_letter_attributes(event.request_id, condition, response)
            deliveries.append(
                {
                    "target": dead_letter,
                    "body": event.payload.decode(errors="replace"),
                    "attributes": attributes,
                    # Kept by name: a delivery waiting in the store is JSON, which has no NumberAttribute.
                    "numbers": [k for k, v in attributes.items() if isinstance(v, NumberAttribute)],
                }
            )
        if runnable is not None and deliveries and self.roles is not None:
            deliveries = await anyio.to_thread.run_sync(self._permitted, event, runnable, deliveries)
        if condition != policy.SUCCESS:
            where = ", ".join(d["target"] for d in deliveries) or "no destination or dead-letter queue"
            log.warning(
                "Event invocation %s of %s finished with %s after %d attempt(s); sent to %s",
                event.request_id,
                arn,
                condition,
                attempts,
                where,
            )
        await self._deliver(event, condition, deliveries, attempts, response)

    def _permitted(
        self, event: StoredEvent, runnable: RunnableFunction, deliveries: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The deliveries the function's execution role may make (sqs:SendMessage, sns:Publish,
        lambda:InvokeFunction, events:PutEvents...); the others are dropped, as AWS drops a record its
        role cannot deliver (a role the identity store does not know is not checked)."""
        assert self.roles is not None
        role = runnable.version.role
        if not role:
            return deliveries
        allowed = []
        for delivery in deliveries:
            target = str(delivery["target"])
            service = arn_service(target)
            action = DELIVERY_ACTIONS.get(service)
            denial = None
            if action is not None:
                denial = self.roles.denial(
                    role,
                    f"{service}:{action}",
                    target,
                    service="lambda.amazonaws.com",
                    session=runnable.version.name,
                    context=function_source(_arn(runnable, _scope(event))),
                )
            if denial is None:
                allowed.append(delivery)
            else:
                log.warning(
                    "Event invocation %s: not delivered to %s: the execution role may not (%s)",
                    event.request_id,
                    target,
                    denial,
                )
        return allowed

    async def _deliver(
        self,
        event: StoredEvent,
        condition: str,
        deliveries: list[dict[str, Any]],
        attempts: int,
        response: dict[str, Any] | None,
    ) -> None:
        """Send each message; remove the event once none is left, else keep it for another try."""
        undelivered: list[dict[str, Any]] = []
        new_events: list[NewEvent] = []
        for delivery in deliveries:
            target, body = str(delivery["target"]), str(delivery["body"])
            service = arn_service(target)
            if service == "lambda":
                new_events.append(_destination_event(target, body))
                continue
            kind = self._kinds(target)
            if kind is None:
                log.warning(
                    "Event invocation %s: no event source serves %r; its %s message for %s is dropped",
                    event.request_id,
                    service,
                    condition,
                    target,
                )
                continue
            endpoint = self._endpoints.get(service)
            try:
                if not endpoint:
                    raise SourceUnavailable(
                        f"no endpoint is configured for {service} (LAMBDAD_EVENT_SOURCES)"
                    )
                await kind.publish(target, endpoint, body.encode(), _attributes(delivery))
            except SourceUnavailable as error:
                log.warning(
                    "Event invocation %s: %s unreachable (%s); delivery will be retried",
                    event.request_id,
                    target,
                    error,
                )
                undelivered.append(delivery)
            except Exception:
                log.exception(
                    "Event invocation %s: delivery to %s failed; message dropped", event.request_id, target
                )
        now = time.time()
        finished_at = event.finished_at / 1000 if event.finished_at else now
        if undelivered and now - finished_at > DELIVERY_MAX_AGE:
            log.error(
                "Event invocation %s: gave up delivering to %s after %.0f s",
                event.request_id,
                ", ".join(d["target"] for d in undelivered),
                now - finished_at,
            )
            undelivered = []
        if not undelivered and not new_events:
            await self._outlasting(lambda: self._committer.add(store.delete_events, event.request_id))
            return
        if not undelivered:

            def finish(connection: Connection) -> None:
                for new_event in new_events:
                    store.insert(connection, new_event)
                store.delete_events(connection, [event.request_id])

            await self._outlasting(lambda: self._committer.write(finish))
            if new_events:
                self._wake.set()
            return
        requeues = event.requeues + 1
        due = now + policy.backoff(requeues, self._backoff_max)

        def keep(connection: Connection) -> bool:
            for new_event in new_events:
                store.insert(connection, new_event)
            return store.reschedule(
                connection,
                event.request_id,
                self.owner,
                outcome=condition,
                deliveries=undelivered,
                attempts=attempts,
                response=response,
                requeues=requeues,
                due_at=int(due * 1000),
                finished_at=int(finished_at * 1000),
            )

        await self._outlasting(lambda: self._committer.write(keep))


def _attributes(delivery: Mapping[str, Any]) -> dict[str, str]:
    """A delivery's message attributes, those it names as numbers typed again (after the store)."""
    numbers = set(delivery.get("numbers") or ())
    return {
        name: NumberAttribute(value) if name in numbers else str(value)
        for name, value in (delivery.get("attributes") or {}).items()
    }


def _scope(event: StoredEvent) -> Scope:
    return Scope(event.account, event.region)


def _arn(runnable: RunnableFunction, scope: Scope) -> str:
    """The function ARN a record names: qualified as invoked, ``$LATEST`` when unqualified (as AWS)."""
    return scope.function_arn(runnable.version.name, runnable.qualifier or LATEST)


def _invoked_arn(event: StoredEvent) -> str:
    """The function ARN an event was invoked with, without looking the function up."""
    scope = _scope(event)
    try:
        name, qualifier = resolve(scope, event.function_name, event.qualifier)
    except LambdaError:
        return event.function_name
    return scope.function_arn(name, qualifier or LATEST)


def _destination_event(target: str, body: str) -> NewEvent:
    """A record for a Lambda destination: an Event invocation of that function (as AWS sends it)."""
    ref = parse_function_ref(target)
    account = ref.account if ref and ref.account else ""
    region = ref.region if ref and ref.region else ""
    return NewEvent(
        request_id=str(uuid.uuid4()),
        account=account,
        region=region,
        function_name=target,
        qualifier=None,
        payload=body.encode(),
    )


def _new_event(request: InvokeRequest) -> NewEvent:
    return NewEvent(
        request_id=request.request_id,
        account=request.scope.account,
        region=request.scope.region,
        function_name=request.function_name,
        qualifier=request.qualifier,
        payload=request.payload or b"{}",
        client_context=request.client_context,
    )


def process_owner() -> str:
    """A name for this process in the queue's ``owner`` column: host:pid:token."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _is_gone(owner: str, me: str) -> bool:
    """Whether the process named ``owner`` (host:pid:token) is known to be gone: on this host, and either
    no process has its pid or the pid is this process's under another token (reused)."""
    if owner == me:
        return False
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
