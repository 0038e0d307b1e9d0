"""The runtime lifecycle is a table: every edge AWS allows is there, every other move is refused."""

from __future__ import annotations

import itertools

import pytest

from lambdad.runtime_api import TRANSITIONS, IllegalTransition, Move, State, step

LEGAL = {
    (State.STARTED, Move.NEXT): State.READY,
    (State.STARTED, Move.INIT_ERROR): State.INIT_ERROR,
    (State.READY, Move.NEXT): State.READY,
    (State.READY, Move.RESPONSE): State.INVOCATION_RESPONSE,
    (State.READY, Move.ERROR): State.INVOCATION_ERROR_RESPONSE,
    (State.INVOCATION_RESPONSE, Move.SENT): State.RESPONSE_SENT,
    (State.INVOCATION_ERROR_RESPONSE, Move.SENT): State.RESPONSE_SENT,
    (State.RESPONSE_SENT, Move.NEXT): State.READY,
}


def test_the_table_holds_exactly_the_runtime_interface_emulators_edges() -> None:
    assert dict(TRANSITIONS) == LEGAL


@pytest.mark.parametrize(("state", "move"), sorted(LEGAL, key=str))
def test_a_legal_move_leads_to_its_state(state: State, move: Move) -> None:
    assert step(state, move) is LEGAL[state, move]


@pytest.mark.parametrize(
    ("state", "move"),
    [pair for pair in itertools.product(State, Move) if pair not in LEGAL],
)
def test_an_illegal_move_is_refused_with_403_invalid_state_transition(state: State, move: Move) -> None:
    with pytest.raises(IllegalTransition) as refused:
        step(state, move)
    assert refused.value.status == 403
    assert refused.value.error_type == "InvalidStateTransition"
    assert refused.value.message == (
        f"State transition from {state.value} to {move.value.value} failed for runtime. "
        "Error: State transition is not allowed"
    )


def test_init_error_is_terminal() -> None:
    assert not [move for (state, move) in TRANSITIONS if state is State.INIT_ERROR]


def test_a_response_may_not_come_before_next_nor_twice() -> None:
    with pytest.raises(IllegalTransition):
        step(State.STARTED, Move.RESPONSE)
    with pytest.raises(IllegalTransition):
        step(State.RESPONSE_SENT, Move.RESPONSE)
