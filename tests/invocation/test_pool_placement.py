"""The warm pool: reuse, scale-out, draining on change, idle reaping, shutdown (stand-in environments)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lambdad.environment import FunctionImage
from lambdad.environment.lifecycle import EnvironmentState, Lifecycle, Move
from lambdad.invocation.pool import EnvironmentPool
from lambdad.runtimes import Interpreter


class StandIn:
    """Just enough of an ExecutionEnvironment for the pool: a lifecycle, an image, timestamps."""

    def __init__(self, image: FunctionImage) -> None:
        self.id = f"env-{id(self)}"
        self.image = image
        self.lifecycle = Lifecycle()
        self.last_used = 0.0

    @property
    def reusable(self) -> bool:
        return self.lifecycle.state is EnvironmentState.READY

    async def start(self) -> None:
        self.lifecycle.move(Move.START)
        self.lifecycle.move(Move.READY)

    def run(self) -> None:  # what an invocation does to the lifecycle
        self.lifecycle.move(Move.INVOKE)
        self.lifecycle.move(Move.FINISH)

    async def shutdown(self) -> None:
        if self.lifecycle.can(Move.STOP):
            self.lifecycle.move(Move.STOP)
        self.lifecycle.move(Move.DESTROYED)


def image(memory: int = 128, name: str = "f") -> FunctionImage:
    return FunctionImage(
        function_name=name,
        version="$LATEST",
        function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{name}",
        region="us-east-1",
        runtime="python3.12",
        handler="h.h",
        memory_mb=memory,
        timeout_s=3,
        ephemeral_mb=512,
        code_dir=Path("/code"),
        runtime_dir=None,
        interpreter=Interpreter("python3.12", Path("/usr/bin/python3"), "3.12.0"),
    )


def make_pool(made: list[StandIn], idle_timeout: float = 300) -> EnvironmentPool:
    def make(img: FunctionImage) -> Any:
        environment = StandIn(img)
        made.append(environment)
        return environment

    return EnvironmentPool(make, idle_timeout)


def test_a_released_environment_is_reused_warm() -> None:
    async def scenario() -> None:
        made: list[StandIn] = []
        pool = make_pool(made)
        first = await pool.acquire(image())
        pool.release(first)
        assert await pool.acquire(image()) is first
        assert len(made) == 1
        await pool.close()

    asyncio.run(scenario())


def test_concurrent_invocations_get_their_own_environments() -> None:
    async def scenario() -> None:
        made: list[StandIn] = []
        pool = make_pool(made)
        first, second = await pool.acquire(image()), await pool.acquire(image())
        assert first is not second and pool.environments == 2
        await pool.close()
        assert all(e.lifecycle.state is EnvironmentState.DEAD for e in made)

    asyncio.run(scenario())


def test_a_changed_image_drains_the_old_environments() -> None:
    async def scenario() -> None:
        made: list[StandIn] = []
        pool = make_pool(made)
        old = await pool.acquire(image(memory=128))
        busy_old = await pool.acquire(image(memory=128))
        pool.release(old)
        new = await pool.acquire(image(memory=256))
        await pool.settle()
        assert new is not old and old.lifecycle.state is EnvironmentState.DEAD
        pool.release(busy_old)  # finishing its invocation, it is not kept: its image is stale
        await pool.settle()
        assert busy_old.lifecycle.state is EnvironmentState.DEAD
        await pool.close()

    asyncio.run(scenario())


def test_idle_environments_are_reaped_after_the_timeout() -> None:
    async def scenario() -> None:
        made: list[StandIn] = []
        pool = make_pool(made, idle_timeout=10)
        environment = await pool.acquire(image())
        environment.last_used = 100.0
        pool.release(environment)
        assert pool.reap(now=105.0) == 0
        assert pool.reap(now=110.0) == 1
        await pool.settle()
        assert environment.lifecycle.state is EnvironmentState.DEAD and pool.environments == 0
        await pool.close()

    asyncio.run(scenario())


def test_a_failed_environment_is_not_kept() -> None:
    async def scenario() -> None:
        made: list[StandIn] = []
        pool = make_pool(made)
        environment = await pool.acquire(image())
        environment.lifecycle.move(Move.INVOKE)
        environment.lifecycle.move(Move.FAIL)  # a timeout or crash
        pool.release(environment)
        await pool.settle()
        assert environment.lifecycle.state is EnvironmentState.DEAD
        assert await pool.acquire(image()) is not environment
        await pool.close()

    asyncio.run(scenario())


def test_drain_stops_idle_environments_of_a_deleted_function() -> None:
    async def scenario() -> None:
        made: list[StandIn] = []
        pool = make_pool(made)
        environment = await pool.acquire(image())
        pool.release(environment)
        pool.drain(environment.image.function_arn)
        await pool.settle()
        assert environment.lifecycle.state is EnvironmentState.DEAD
        await pool.close()

    asyncio.run(scenario())
