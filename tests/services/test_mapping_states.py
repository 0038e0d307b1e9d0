"""An event source mapping's state table: every legal move, and the illegal ones refused."""

from __future__ import annotations

import pytest

from lambdad.services.mapping_states import (
    TRANSITIONS,
    IllegalMove,
    MappingMove,
    MappingState,
    next_state,
    settled,
)

S, M = MappingState, MappingMove


@pytest.mark.parametrize(
    ("state", "move", "target"),
    [
        (S.CREATING, M.STARTED, S.ENABLED),
        (S.CREATING, M.STOPPED, S.DISABLED),
        (S.ENABLED, M.UPDATE, S.UPDATING),
        (S.UPDATING, M.STARTED, S.ENABLED),
        (S.UPDATING, M.STOPPED, S.DISABLED),
        (S.ENABLED, M.DISABLE, S.DISABLING),
        (S.DISABLING, M.STOPPED, S.DISABLED),
        (S.DISABLED, M.ENABLE, S.ENABLING),
        (S.ENABLING, M.STARTED, S.ENABLED),
        (S.DISABLED, M.UPDATE, S.UPDATING),
        (S.ENABLED, M.DELETE, S.DELETING),
        (S.CREATING, M.DELETE, S.DELETING),
        (S.DISABLED, M.DELETE, S.DELETING),
        # After a restart the poller settles mappings that were already settled.
        (S.ENABLED, M.STARTED, S.ENABLED),
        (S.DISABLED, M.STOPPED, S.DISABLED),
    ],
)
def test_legal_move(state: MappingState, move: MappingMove, target: MappingState) -> None:
    assert next_state(state.value, move) is target


@pytest.mark.parametrize(
    ("state", "move"),
    [
        (S.DELETING, M.STARTED),
        (S.DELETING, M.STOPPED),
        (S.DELETING, M.UPDATE),
        (S.DELETING, M.DELETE),
        (S.ENABLING, M.STOPPED),
        (S.DISABLING, M.STARTED),
    ],
)
def test_illegal_move_raises(state: MappingState, move: MappingMove) -> None:
    with pytest.raises(IllegalMove, match=f"in state {state.value} cannot {move.value}"):
        next_state(state.value, move)


def test_deleting_is_final() -> None:
    assert not [move for (state, move) in TRANSITIONS if state is S.DELETING]


def test_poller_settles_towards_what_the_user_asked() -> None:
    assert settled(True) is M.STARTED
    assert settled(False) is M.STOPPED
