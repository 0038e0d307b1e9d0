"""The execution environment's lifecycle table: legal moves lead where drawn, everything else refuses."""

from __future__ import annotations

import itertools

import pytest

from lambdad.environment.lifecycle import TRANSITIONS, EnvironmentState, IllegalMove, Lifecycle, Move

S, M = EnvironmentState, Move


def walk(*moves: Move) -> Lifecycle:
    lifecycle = Lifecycle()
    for move in moves:
        lifecycle.move(move)
    return lifecycle


def test_a_healthy_environment_serves_invocations_one_at_a_time() -> None:
    lifecycle = walk(M.START, M.READY, M.INVOKE, M.FINISH, M.INVOKE, M.FINISH)
    assert lifecycle.state is S.READY
    lifecycle.move(M.INVOKE)
    with pytest.raises(IllegalMove):
        lifecycle.move(M.INVOKE)  # a busy environment takes no second invocation


def test_failures_end_in_shutdown_then_dead() -> None:
    assert walk(M.START, M.FAIL).state is S.SHUTTING_DOWN  # init error
    assert walk(M.START, M.READY, M.INVOKE, M.FAIL).state is S.SHUTTING_DOWN  # timeout, crash
    assert walk(M.START, M.READY, M.INVOKE, M.FAIL, M.DESTROYED).state is S.DEAD


def test_stop_is_legal_from_every_live_state() -> None:
    for moves in [(), (M.START,), (M.START, M.READY), (M.START, M.READY, M.INVOKE)]:
        assert walk(*moves, M.STOP).state is S.SHUTTING_DOWN


def test_a_dead_environment_cannot_be_revived() -> None:
    lifecycle = walk(M.STOP, M.DESTROYED)
    for move in Move:
        assert not lifecycle.can(move)
        with pytest.raises(IllegalMove, match="Dead"):
            lifecycle.move(move)


def test_every_pair_outside_the_table_is_illegal() -> None:
    for state, move in itertools.product(EnvironmentState, Move):
        lifecycle = Lifecycle()
        lifecycle.state = state
        if (state, move) in TRANSITIONS:
            assert lifecycle.move(move) is TRANSITIONS[state, move]
        else:
            with pytest.raises(IllegalMove):
                lifecycle.move(move)
