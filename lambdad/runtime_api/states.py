"""The runtime's lifecycle as data: which Runtime API call is allowed in which state, and where it leads.

Modelled on the state machine of AWS's Runtime Interface Emulator (``core/states.go``), with its state
names, because they appear in the error messages a runtime receives::

    Started --next--> Ready --response--> InvocationResponse --sent--> RuntimeResponseSentState
       |                |  \\--error----> InvocationErrorResponse --sent--/           |
       |                |<-------------------------------next--------------------------/
       |                \\--next--> Ready   (the outstanding event is rendered again, as the RIE does)
       \\--init/error--> InitError   (terminal)

Every other move is illegal and is answered with 403 ``InvalidStateTransition``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from lambdad.runtime_api.model import ApiError


class State(enum.StrEnum):
    STARTED = "Started"
    INIT_ERROR = "InitError"
    READY = "Ready"
    INVOCATION_RESPONSE = "InvocationResponse"
    INVOCATION_ERROR_RESPONSE = "InvocationErrorResponse"
    RESPONSE_SENT = "RuntimeResponseSentState"


class Move(enum.Enum):
    """A Runtime API call (or its completion), named by the state it asks to enter."""

    NEXT = State.READY
    RESPONSE = State.INVOCATION_RESPONSE
    ERROR = State.INVOCATION_ERROR_RESPONSE
    SENT = State.RESPONSE_SENT
    INIT_ERROR = State.INIT_ERROR


TRANSITIONS: Mapping[tuple[State, Move], State] = MappingProxyType(
    {
        (State.STARTED, Move.NEXT): State.READY,
        (State.STARTED, Move.INIT_ERROR): State.INIT_ERROR,
        (State.READY, Move.NEXT): State.READY,
        (State.READY, Move.RESPONSE): State.INVOCATION_RESPONSE,
        (State.READY, Move.ERROR): State.INVOCATION_ERROR_RESPONSE,
        (State.INVOCATION_RESPONSE, Move.SENT): State.RESPONSE_SENT,
        (State.INVOCATION_ERROR_RESPONSE, Move.SENT): State.RESPONSE_SENT,
        (State.RESPONSE_SENT, Move.NEXT): State.READY,
    }
)


class IllegalTransition(ApiError):
    """403 InvalidStateTransition, worded as AWS words it."""

    def __init__(self, state: State, move: Move) -> None:
        super().__init__(
            403,
            "InvalidStateTransition",
            f"State transition from {state.value} to {move.value.value} failed for runtime. "
            "Error: State transition is not allowed",
        )
        self.state, self.move = state, move


def step(state: State, move: Move) -> State:
    """The state ``move`` leads to from ``state``; raises IllegalTransition if the table has no such edge."""
    try:
        return TRANSITIONS[state, move]
    except KeyError:
        raise IllegalTransition(state, move) from None
