"""An event source mapping's states as data: the moves between them, nothing else.

The API moves a mapping into a transitional state and answers it at once; the mapping's poller settles
it (``STARTED`` once it polls, ``STOPPED`` once it stopped)::

    Creating --started--> Enabled --update--> Updating --started--> Enabled
        |                    |  ^                 |
        +--stopped--> Disabled  +--started-- Enabling <--enable-- Disabled
                             ^                                        |
                             +--stopped-- Disabling <--disable-- Enabled

Every state but Deleting may be deleted (``delete`` -> Deleting; the row goes once the poller stopped).
Anything the table does not list raises ``IllegalMove``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class MappingState(enum.StrEnum):
    CREATING = "Creating"
    ENABLING = "Enabling"
    ENABLED = "Enabled"
    DISABLING = "Disabling"
    DISABLED = "Disabled"
    UPDATING = "Updating"
    DELETING = "Deleting"


class MappingMove(enum.StrEnum):
    STARTED = "started"  # the poller polls
    STOPPED = "stopped"  # the poller stopped (disabled)
    UPDATE = "update"
    ENABLE = "enable"
    DISABLE = "disable"
    DELETE = "delete"


_S, _M = MappingState, MappingMove
_SETTLED_BY_POLLER = {
    (state, move): target
    for state in (_S.CREATING, _S.UPDATING, _S.ENABLING, _S.DISABLING, _S.ENABLED, _S.DISABLED)
    for move, target in ((_M.STARTED, _S.ENABLED), (_M.STOPPED, _S.DISABLED))
    # A mapping being enabled never lands on Disabled, nor one being disabled on Enabled.
    if not (state == _S.ENABLING and move == _M.STOPPED)
    and not (state == _S.DISABLING and move == _M.STARTED)
}
_USER_MOVES = {
    (state, move): target
    for state in (_S.CREATING, _S.UPDATING, _S.ENABLING, _S.DISABLING, _S.ENABLED, _S.DISABLED)
    for move, target in (
        (_M.UPDATE, _S.UPDATING),
        (_M.ENABLE, _S.ENABLING),
        (_M.DISABLE, _S.DISABLING),
        (_M.DELETE, _S.DELETING),
    )
}
TRANSITIONS: Mapping[tuple[MappingState, MappingMove], MappingState] = MappingProxyType(
    {**_SETTLED_BY_POLLER, **_USER_MOVES}
)
# States the poller has yet to settle: it polls or stops, then moves the mapping on.
TRANSITIONAL = frozenset({_S.CREATING, _S.ENABLING, _S.DISABLING, _S.UPDATING, _S.DELETING})


class IllegalMove(RuntimeError):
    """A move the table does not allow from the current state."""

    def __init__(self, state: MappingState, move: MappingMove) -> None:
        super().__init__(f"an event source mapping in state {state.value} cannot {move.value}")
        self.state, self.move = state, move


def next_state(state: str, move: MappingMove) -> MappingState:
    """Where ``move`` takes a mapping in ``state``; ``IllegalMove`` if the table does not allow it."""
    current = MappingState(state)
    try:
        return TRANSITIONS[current, move]
    except KeyError:
        raise IllegalMove(current, move) from None


def settled(enabled: bool) -> MappingMove:
    """The poller's move once it did what the user asked: polling, or stopped."""
    return MappingMove.STARTED if enabled else MappingMove.STOPPED
