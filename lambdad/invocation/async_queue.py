"""Event (asynchronous) invocations: accepted at once, run in the background with AWS's retries.

In-process for now: an event accepted here is lost if the server stops before running it. Durable
delivery (the events issue) replaces this queue with one in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from lambdad.errors import LambdaError, TooManyRequestsException
from lambdad.invocation.invoker import Invoker, InvokeRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueuedEvent:
    request: InvokeRequest
    attempt: int = 1


class EventQueue:
    """Workers draining a queue of Event invocations; a failed event is retried after each delay."""

    def __init__(self, invoker: Invoker, retry_delays: Sequence[float] = (60, 120), workers: int = 4) -> None:
        self._invoker = invoker
        self._retry_delays = tuple(retry_delays)
        self._workers_wanted = workers
        self._queue: asyncio.Queue[QueuedEvent] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()

    def submit(self, request: InvokeRequest) -> None:
        """Accept an event (the caller has already answered 202)."""
        if not self._workers:
            loop = asyncio.get_running_loop()
            self._workers = [loop.create_task(self._work()) for _ in range(self._workers_wanted)]
        self._queue.put_nowait(QueuedEvent(request))

    async def close(self) -> None:
        """Stop the workers (events still queued are dropped, as the docstring warns)."""
        for timer in self._timers:
            timer.cancel()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._run(event)
            except Exception:
                log.exception("event %s failed unexpectedly", event.request.request_id)

    async def _run(self, event: QueuedEvent) -> None:
        request = event.request
        try:
            result = await self._invoker.invoke(request)
            failed = result.function_error is not None
        except TooManyRequestsException:
            failed = True  # throttled: AWS retries these too
        except LambdaError as error:
            log.warning(
                "event %s for %s dropped: %s", request.request_id, request.function_name, error.message
            )
            return
        if not failed:
            return
        if event.attempt > len(self._retry_delays):
            log.warning(
                "event %s for %s failed %d times; dropped",
                request.request_id,
                request.function_name,
                event.attempt,
            )
            return
        delay = self._retry_delays[event.attempt - 1]
        log.info(
            "event %s for %s failed (attempt %d); retrying in %ss",
            request.request_id,
            request.function_name,
            event.attempt,
            delay,
        )
        retry = replace(event, attempt=event.attempt + 1)
        timer = asyncio.get_running_loop().call_later(delay, self._requeue, retry)
        self._timers.add(timer)

    def _requeue(self, event: QueuedEvent) -> None:
        self._timers = {
            t for t in self._timers if not t.cancelled() and t.when() > asyncio.get_running_loop().time()
        }
        self._queue.put_nowait(event)
