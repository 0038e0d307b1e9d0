"""The meeting point of an execution environment's owner and its runtime.

The owner (the environment layer) calls ``invoke``, ``wait_ready`` and ``close``; the Runtime API server calls
``next_invocation``, ``start_response``, ``deliver``, ``response_sent`` and ``init_error`` on behalf of the
runtime. Every runtime call first asks the state table (``states.step``) whether it is allowed; a refusal is
an ``ApiError`` that the server answers as AWS does. One invocation is outstanding at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from lambdad.runtime_api.model import (
    ChannelBusy,
    ChannelClosed,
    Invocation,
    InvocationResult,
    ResultKind,
    invalid_request_id,
)
from lambdad.runtime_api.states import Move, State, step

NextWaiter = Callable[[Invocation | None], None]


@dataclass(eq=False)
class _Slot:
    """The invocation last put into the environment; current (for request-id checks) until replaced."""

    invocation: Invocation
    result: asyncio.Future[InvocationResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    finished: bool = False  # the runtime completed its response (state reached RuntimeResponseSentState)
    delivered: bool = False  # handed to a ``next`` of the runtime (it may have run, even if no answer came)


class RuntimeChannel:
    """One execution environment's channel. Create it inside the event loop that serves the Runtime API."""

    def __init__(self) -> None:
        self._state = State.STARTED
        self._slot: _Slot | None = None
        self._waiters: list[NextWaiter] = []  # pending ``next`` long-polls
        self._ready: asyncio.Future[InvocationResult | None] = asyncio.get_running_loop().create_future()
        self._init_error: InvocationResult | None = None
        self._closed: str | None = None

    # -- the owner's side ---------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def delivered(self, invocation: Invocation) -> bool:
        """Whether ``invocation`` went to the runtime (a ``next`` rendered it). One that did not can run
        elsewhere without running twice."""
        slot = self._slot
        return slot is not None and slot.invocation is invocation and slot.delivered

    async def wait_ready(self) -> InvocationResult | None:
        """Wait for the end of init: None once the runtime first calls ``next``; the INIT_ERROR result if it
        posted ``init/error``. Raises ChannelClosed if the channel is closed first."""
        return await asyncio.shield(self._ready)

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        """Hand ``invocation`` to the runtime and wait for its result.

        For a streamed response the result comes back as soon as the stream starts. If the runtime posts
        ``init/error`` before taking the event, the result is that INIT_ERROR. Cancelling abandons the
        invocation (a late response is then accepted and dropped); the owner normally tears the
        environment down after a timeout, as AWS does.
        """
        if self._closed is not None:
            raise ChannelClosed(self._closed)
        if self._init_error is not None:
            return self._init_error
        if self._slot is not None and not self._slot.finished:
            raise ChannelBusy(f"invocation {self._slot.invocation.request_id} is still outstanding")
        slot = _Slot(invocation)
        self._slot = slot
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            slot.delivered = True
            waiter(invocation)
        return await slot.result

    def close(self, reason: str = "the execution environment was closed") -> None:
        """Fail everything waiting on this channel with ChannelClosed; idempotent."""
        if self._closed is not None:
            return
        self._closed = reason
        if not self._ready.done():
            self._ready.set_exception(ChannelClosed(reason))
            self._ready.exception()  # mark retrieved: nobody may be waiting
        if self._slot is not None and not self._slot.result.done():
            self._slot.result.set_exception(ChannelClosed(reason))
            self._slot.result.exception()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter(None)

    # -- the runtime's side (called by the Runtime API server) --------------------------------------------

    def request_next(self, waiter: NextWaiter) -> None:
        """``GET /runtime/invocation/next``: ask for the event to render.

        Raises ApiError if the state table refuses. ``waiter`` is called with the invocation at once if one
        is outstanding (a repeated ``next`` renders the same event, as the RIE does), else when the owner
        puts one; it is called with None if the channel closes first.
        """
        self._check_open()
        was = self._state
        self._state = step(self._state, Move.NEXT)
        if was is State.STARTED and not self._ready.done():
            self._ready.set_result(None)
        slot = self._slot
        if slot is not None and not slot.finished and not slot.result.done():
            slot.delivered = True
            waiter(slot.invocation)
        else:
            self._waiters.append(waiter)

    def cancel_next(self, waiter: NextWaiter) -> None:
        """Forget a ``next`` whose connection went away; the event then waits for the next poll."""
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    async def next_invocation(self) -> Invocation:
        """``request_next`` as a coroutine; raises ApiError, or ChannelClosed if the channel closes."""
        future: asyncio.Future[Invocation | None] = asyncio.get_running_loop().create_future()

        def waiter(invocation: Invocation | None) -> None:
            if not future.done():
                future.set_result(invocation)

        self.request_next(waiter)
        try:
            invocation = await future
        finally:
            self.cancel_next(waiter)
        if invocation is None:
            raise ChannelClosed(self._closed or "closed")
        return invocation

    def start_response(self, request_id: str, move: Move) -> Invocation:
        """Begin ``invocation/{id}/response`` (Move.RESPONSE) or ``/error`` (Move.ERROR).

        The id must be the current invocation's (else 400 InvalidRequestID), then the state table decides
        (403 InvalidStateTransition), in that order, as AWS checks them.
        """
        self._check_open()
        slot = self._slot
        if slot is None or request_id != slot.invocation.request_id:
            raise invalid_request_id()
        self._state = step(self._state, move)
        return slot.invocation

    def deliver(self, result: InvocationResult, request_id: str | None = None) -> None:
        """Hand the current invocation's result to whoever awaits ``invoke`` (at most once). The request
        id (checked by ``start_response``) matters only to a channel with several invocations."""
        if self._slot is not None and not self._slot.result.done():
            self._slot.result.set_result(result)

    def response_sent(self, request_id: str | None = None) -> None:
        """The runtime's response or error is complete: the environment may take the next invocation."""
        self._state = step(self._state, Move.SENT)
        if self._slot is not None:
            self._slot.finished = True

    def init_error(self, result: InvocationResult) -> None:
        """``POST /runtime/init/error``: init failed; ends ``wait_ready`` and any invocation put meanwhile."""
        self._check_open()
        self._state = step(self._state, Move.INIT_ERROR)
        self._init_error = result
        if not self._ready.done():
            self._ready.set_result(result)
        self.deliver(result)

    def connection_lost(self, request_id: str) -> None:
        """The connection that took ``request_id`` closed before answering it. One runtime process serves
        this channel: its exit (watched by the environment) is what ends the invocation."""

    def _check_open(self) -> None:
        if self._closed is not None:
            raise ChannelClosed(self._closed)


def init_error_result(payload: bytes, error_type: str | None, content_type: str | None) -> InvocationResult:
    return InvocationResult(ResultKind.INIT_ERROR, payload, error_type, content_type)
