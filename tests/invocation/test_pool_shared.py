"""The pool with Managed Instances images: several invocations per environment, up to its concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from lambdad.environment import FunctionImage
from lambdad.environment.lifecycle import EnvironmentState
from lambdad.invocation.pool import EnvironmentPool, PoolFull
from tests.invocation.test_pool_placement import StandIn, image, make_pool


class SlowStart(StandIn):
    """A stand-in whose start waits for ``go``: concurrent acquires arrive while it initialises."""

    go: asyncio.Event

    async def start(self) -> None:
        await self.go.wait()
        await super().start()


def shared(concurrency: int = 3) -> FunctionImage:
    return dataclasses.replace(image(), max_concurrency=concurrency)


def test_invocations_pack_into_one_environment_up_to_its_concurrency() -> None:
    async def scenario() -> None:
        made: list[StandIn] = []
        pool = make_pool(made)
        held = [await pool.acquire(shared(3)) for _ in range(3)]
        assert len(made) == 1 and held == [made[0]] * 3
        assert pool.running_invocations == 3 and pool.busy_environments == 1
        fourth = await pool.acquire(shared(3))  # the first is full: a second environment
        assert fourth is not made[0] and len(made) == 2
        for environment in [*held, fourth]:
            pool.release(environment)
        assert pool.running_invocations == 0 and pool.environments == 2
        assert await pool.acquire(shared(3)) in made  # warm again, no third one
        assert len(made) == 2
        await pool.close()

    asyncio.run(scenario())


def test_concurrent_cold_invocations_join_the_environment_being_started() -> None:
    async def scenario() -> None:
        made: list[StandIn] = []
        go = asyncio.Event()

        def make(img: FunctionImage) -> Any:
            environment = SlowStart(img)
            environment.go = go
            made.append(environment)
            return environment

        pool = EnvironmentPool(make)
        tasks = [asyncio.create_task(pool.acquire(shared(4))) for _ in range(4)]
        await asyncio.sleep(0.01)
        assert len(made) == 1 and not any(task.done() for task in tasks)
        go.set()
        assert {await task for task in tasks} == {made[0]}
        await pool.close()

    asyncio.run(scenario())


def test_the_limit_counts_environments_not_invocations() -> None:
    async def scenario() -> None:
        made: list[StandIn] = []
        pool = make_pool(made)
        for _ in range(2):
            await pool.acquire(shared(2), limit=1)
        with pytest.raises(PoolFull):
            await pool.acquire(shared(2), limit=1)
        await pool.close()

    asyncio.run(scenario())


def test_a_shared_environment_idles_when_its_last_invocation_ends_and_is_reaped() -> None:
    async def scenario() -> None:
        made: list[StandIn] = []
        pool = make_pool(made, idle_timeout=10)
        first, second = await pool.acquire(shared(2)), await pool.acquire(shared(2))
        first.last_used = 100.0
        pool.release(first)
        assert pool.reap(now=200.0) == 0  # one invocation still runs in it
        pool.release(second)
        assert pool.reap(now=200.0) == 1
        await pool.settle()
        assert made[0].lifecycle.state is EnvironmentState.DEAD
        await pool.close()

    asyncio.run(scenario())
