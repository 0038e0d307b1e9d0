"""An execution environment's lifecycle as data: states, the moves between them, nothing else.

Modelled on AWS's Runtime Interface Emulator (``core/states.go``): every move is illegal unless the
table lists it, and an illegal move is an error, never a silent no-op::

    CREATED --start--> INITIALIZING --ready--> READY --invoke--> BUSY --finish--> READY
                            |                    |                 |
                            +--fail--+           +--stop--+        +--fail--+
                                     v                    v                 v
                                 SHUTTING_DOWN <----------+-----------------+ --destroyed--> DEAD

``stop`` is also legal from CREATED, INITIALIZING and BUSY (server shutdown, an update draining the
environment); ``fail`` marks an environment that must not be reused (init error, timeout, crash).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class EnvironmentState(enum.StrEnum):
    CREATED = "Created"
    INITIALIZING = "Initializing"
    READY = "Ready"
    BUSY = "Busy"
    SHUTTING_DOWN = "ShuttingDown"
    DEAD = "Dead"


class Move(enum.StrEnum):
    START = "start"
    READY = "ready"
    INVOKE = "invoke"
    FINISH = "finish"
    FAIL = "fail"
    STOP = "stop"
    DESTROYED = "destroyed"


_S, _M = EnvironmentState, Move
TRANSITIONS: Mapping[tuple[EnvironmentState, Move], EnvironmentState] = MappingProxyType(
    {
        (_S.CREATED, _M.START): _S.INITIALIZING,
        (_S.CREATED, _M.STOP): _S.SHUTTING_DOWN,
        (_S.INITIALIZING, _M.READY): _S.READY,
        (_S.INITIALIZING, _M.FAIL): _S.SHUTTING_DOWN,
        (_S.INITIALIZING, _M.STOP): _S.SHUTTING_DOWN,
        (_S.READY, _M.INVOKE): _S.BUSY,
        (_S.READY, _M.STOP): _S.SHUTTING_DOWN,
        (_S.READY, _M.FAIL): _S.SHUTTING_DOWN,
        (_S.BUSY, _M.FINISH): _S.READY,
        (_S.BUSY, _M.FAIL): _S.SHUTTING_DOWN,
        (_S.BUSY, _M.STOP): _S.SHUTTING_DOWN,
        (_S.SHUTTING_DOWN, _M.STOP): _S.SHUTTING_DOWN,
        (_S.SHUTTING_DOWN, _M.FAIL): _S.SHUTTING_DOWN,
        (_S.SHUTTING_DOWN, _M.DESTROYED): _S.DEAD,
    }
)


class IllegalMove(RuntimeError):
    """A move the lifecycle table does not allow from the current state."""

    def __init__(self, state: EnvironmentState, move: Move) -> None:
        super().__init__(f"an execution environment in state {state.value} cannot {move.value}")
        self.state, self.move = state, move


class Lifecycle:
    """The current state of one environment, moved only along the table's edges."""

    def __init__(self) -> None:
        self.state = EnvironmentState.CREATED

    def move(self, move: Move) -> EnvironmentState:
        """Take ``move``; the new state, or IllegalMove."""
        try:
            self.state = TRANSITIONS[self.state, move]
        except KeyError:
            raise IllegalMove(self.state, move) from None
        return self.state

    def can(self, move: Move) -> bool:
        """Whether ``move`` is legal now."""
        return (self.state, move) in TRANSITIONS
