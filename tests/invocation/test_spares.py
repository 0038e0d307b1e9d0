"""The spare pool: spares kept per key in use, replaced when taken, dropped when the key goes idle, given
up on when they keep failing, and all stopped at close (stand-in spares)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lambdad.environment import SpareKey
from lambdad.invocation.spares import MAX_FAILURES, SparePool
from lambdad.runtimes import Interpreter
from lambdad.sandbox import NetworkMode

KEY = SpareKey(
    "python3.12",
    Interpreter("python3.12", Path("/usr/bin/python3"), "3.12.0"),
    Path("/rt"),
    NetworkMode.NONE,
    512,
)
OTHER = SpareKey(KEY.runtime, KEY.interpreter, KEY.runtime_dir, NetworkMode.DEFAULT, 512)


class StandInSpare:
    def __init__(self, key: SpareKey, fail: bool = False) -> None:
        self.key = key
        self.fail = fail
        self.started = False
        self.destroyed = False
        self.alive = True

    @property
    def ready(self) -> bool:
        return self.started and self.alive and not self.destroyed

    async def start(self) -> None:
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("no sandbox today")
        self.started = True

    async def destroy(self) -> None:
        self.destroyed = True


def make_pool(made: list[StandInSpare], fail: bool = False, per_key: int = 1, idle: float = 300) -> SparePool:
    def make(key: SpareKey) -> Any:
        spare = StandInSpare(key, fail)
        made.append(spare)
        return spare

    return SparePool(make, per_key, idle)


def test_the_first_use_of_a_key_starts_spares_and_a_taken_one_is_replaced() -> None:
    async def scenario() -> None:
        made: list[StandInSpare] = []
        pool = make_pool(made, per_key=2)
        assert pool.take(KEY, lambda s: True) is None  # nothing yet: the first cold start takes the full path
        assert pool.starting == 0  # nothing competes with that cold start
        pool.note(KEY)  # the pool notes the key once the cold start is done
        await pool.settle()
        assert pool.spares == 2 and len(made) == 2
        taken = pool.take(KEY, lambda s: True)
        assert taken is made[-1]
        pool.note(KEY)
        await pool.settle()
        assert pool.spares == 2 and len(made) == 3
        assert pool.take(OTHER, lambda s: True) is None  # keys do not share spares
        await pool.close()
        assert all(s.destroyed for s in made if s is not taken) and not taken.destroyed  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_a_spare_that_does_not_fit_or_died_is_not_handed_out() -> None:
    async def scenario() -> None:
        made: list[StandInSpare] = []
        pool = make_pool(made)
        pool.note(KEY)
        await pool.settle()
        assert pool.take(KEY, lambda s: False) is None
        assert pool.spares == 1  # kept for a function it fits
        made[0].alive = False
        assert pool.take(KEY, lambda s: True) is None
        pool.note(KEY)
        await pool.settle()
        assert made[0].destroyed and pool.spares == 1 and made[1].ready
        await pool.close()

    asyncio.run(scenario())


def test_spares_of_an_idle_key_are_dropped_scale_to_zero() -> None:
    async def scenario() -> None:
        made: list[StandInSpare] = []
        pool = make_pool(made, idle=0.05)
        pool.note(KEY)
        await pool.settle()
        assert pool.spares == 1
        await asyncio.sleep(0.06)
        assert pool.reap() == 1
        await pool.settle()
        assert pool.spares == 0 and pool.starting == 0 and made[0].destroyed
        await pool.close()

    asyncio.run(scenario())


def test_a_key_whose_spares_keep_failing_is_given_up() -> None:
    async def scenario() -> None:
        made: list[StandInSpare] = []
        pool = make_pool(made, fail=True)
        for _ in range(MAX_FAILURES + 2):
            assert pool.take(KEY, lambda s: True) is None
            pool.note(KEY)
            await pool.settle()
        assert len(made) == MAX_FAILURES
        await pool.close()

    asyncio.run(scenario())


def test_close_stops_spares_being_started() -> None:
    async def scenario() -> None:
        made: list[StandInSpare] = []
        pool = make_pool(made)
        pool.note(KEY)
        assert pool.starting == 1
        await pool.close()
        assert pool.spares == 0 and pool.starting == 0
        pool.note(KEY)  # closed: nothing new
        assert pool.starting == 0

    asyncio.run(scenario())
