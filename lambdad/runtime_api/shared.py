"""A channel for a runtime that serves several invocations at once (Lambda Managed Instances).

With ``AWS_LAMBDA_MAX_CONCURRENCY=N`` AWS's runtime clients start N workers (processes for Python, tasks
or threads elsewhere), each long-polling ``next`` on its own connection and answering the invocation it
got. So up to N invocations are outstanding, keyed by request id: ``invoke`` queues an invocation until a
worker asks for one; each ``response``/``error`` must name an invocation that was handed out and not yet
answered. The state table (``states.step``) still rules each invocation on its own (Ready -> response ->
sent), and the runtime as a whole (Started -> Ready, or InitError).

AWS's Managed Instances documentation sets the other rules: init is done once one worker has called
``next``; a timeout fails only that invocation (the worker's code keeps running, and its late answer is
accepted and dropped); a worker that dies fails its invocation while the other workers go on. Ordinary
functions never take this class: ``RuntimeChannel`` is theirs, with one invocation at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field

from lambdad.runtime_api.channel import NextWaiter, RuntimeChannel
from lambdad.runtime_api.model import (
    ApiError,
    ChannelClosed,
    Invocation,
    InvocationResult,
    ResultKind,
    invalid_request_id,
)
from lambdad.runtime_api.states import Move, State, step

WORKER_LOST_ERROR_TYPE = "Runtime.ExitError"


@dataclass(eq=False)
class _Outstanding:
    """One invocation put into the environment and not yet answered."""

    invocation: Invocation
    result: asyncio.Future[InvocationResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    state: State = State.READY  # this invocation's own place in the state table, once delivered
    delivered: bool = False


class SharedRuntimeChannel(RuntimeChannel):
    """Up to ``max_concurrency`` invocations outstanding at once, each answered by its request id."""

    def __init__(self, max_concurrency: int) -> None:
        super().__init__()
        self.max_concurrency = max_concurrency
        self._outstanding: dict[str, _Outstanding] = {}  # by request id: queued or delivered
        self._queued: deque[_Outstanding] = deque()  # put by the owner, not yet taken by a worker
        self._idle_workers: deque[NextWaiter] = deque()  # ``next`` long-polls waiting for an invocation

    @property
    def outstanding(self) -> int:
        """Invocations put and not yet answered (queued, running, or abandoned after a timeout)."""
        return len(self._outstanding)

    def delivered(self, invocation: Invocation) -> bool:
        entry = self._outstanding.get(invocation.request_id)
        return entry is None or entry.delivered  # answered (gone), or handed to a worker

    # -- the owner's side ---------------------------------------------------------------------------------

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        """Hand ``invocation`` to the first free worker (or queue it until one asks: a worker still busy
        with an invocation that timed out holds its place) and wait for its result.
        Cancelling (a timeout) abandons it: a queued one is withdrawn, a running one's late answer is
        dropped when it comes."""
        if self._closed is not None:
            raise ChannelClosed(self._closed)
        if self._init_error is not None:
            return self._init_error
        entry = _Outstanding(invocation)
        self._outstanding[invocation.request_id] = entry
        if self._idle_workers:
            self._hand_out(entry, self._idle_workers.popleft())
        else:
            self._queued.append(entry)
        try:
            return await entry.result
        except asyncio.CancelledError:
            if not entry.delivered:
                with contextlib.suppress(ValueError):
                    self._queued.remove(entry)
                self._outstanding.pop(invocation.request_id, None)
            raise

    def close(self, reason: str = "the execution environment was closed") -> None:
        if self._closed is not None:
            return
        super().close(reason)
        # Entries stay: ``delivered`` still tells the owner which invocations never reached a worker.
        for entry in self._outstanding.values():
            if not entry.result.done():
                entry.result.set_exception(ChannelClosed(reason))
                entry.result.exception()
        self._queued.clear()
        workers, self._idle_workers = self._idle_workers, deque()
        for worker in workers:
            worker(None)

    # -- the runtime's side -------------------------------------------------------------------------------

    def request_next(self, waiter: NextWaiter) -> None:
        """A worker's ``next``: the oldest queued invocation at once, else the next one put."""
        self._check_open()
        if self._state is State.INIT_ERROR:
            raise ApiError(403, "InvalidStateTransition", "The runtime reported an init error")
        if self._state is State.STARTED:
            self._state = State.READY
            if not self._ready.done():
                self._ready.set_result(None)
        if self._queued:
            self._hand_out(self._queued.popleft(), waiter)
        else:
            self._idle_workers.append(waiter)

    def cancel_next(self, waiter: NextWaiter) -> None:
        with contextlib.suppress(ValueError):
            self._idle_workers.remove(waiter)

    def start_response(self, request_id: str, move: Move) -> Invocation:
        """The id must be one handed to a worker and not yet answered (400 InvalidRequestID); then that
        invocation's state decides (403 for a second response to it)."""
        self._check_open()
        entry = self._outstanding.get(request_id)
        if entry is None or not entry.delivered:
            raise invalid_request_id()
        entry.state = step(entry.state, move)
        return entry.invocation

    def deliver(self, result: InvocationResult, request_id: str | None = None) -> None:
        entry = self._outstanding.get(request_id) if request_id is not None else None
        if entry is not None and not entry.result.done():
            entry.result.set_result(result)

    def response_sent(self, request_id: str | None = None) -> None:
        """The worker answered: the invocation leaves the channel, whoever still awaits it."""
        if request_id is None:
            return
        entry = self._outstanding.pop(request_id, None)
        if entry is not None:
            entry.state = step(entry.state, Move.SENT)

    def connection_lost(self, request_id: str) -> None:
        """The worker that took ``request_id`` went away before answering: that invocation fails, as on
        AWS, while the other workers go on."""
        entry = self._outstanding.pop(request_id, None)
        if entry is None or entry.result.done():
            return
        message = f"RequestId: {request_id} Error: the runtime worker running it exited"
        body = json.dumps({"errorType": WORKER_LOST_ERROR_TYPE, "errorMessage": message}).encode()
        entry.result.set_result(
            InvocationResult(ResultKind.FUNCTION_ERROR, body, WORKER_LOST_ERROR_TYPE, "application/json")
        )

    def init_error(self, result: InvocationResult) -> None:
        """The first worker's ``init/error`` ends init; the others' are refused (403), which AWS's
        multi-concurrency clients expect and ignore."""
        self._check_open()
        if self._state is not State.STARTED:
            raise ApiError(403, "InvalidStateTransition", "Init has already ended")
        self._state = State.INIT_ERROR
        self._init_error = result
        if not self._ready.done():
            self._ready.set_result(result)
        for entry in list(self._outstanding.values()):
            if not entry.result.done():
                entry.result.set_result(result)
        self._outstanding.clear()
        self._queued.clear()

    def _hand_out(self, entry: _Outstanding, waiter: NextWaiter) -> None:
        entry.delivered = True
        waiter(entry.invocation)
