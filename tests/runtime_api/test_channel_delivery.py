"""Whether an invocation reached the runtime: the line between "run it elsewhere" and "it may have run"."""

from __future__ import annotations

import asyncio
import contextlib

from lambdad.runtime_api import ChannelClosed, Invocation, RuntimeChannel


def invocation(request_id: str) -> Invocation:
    return Invocation(request_id=request_id, payload=b"{}", deadline_ms=0, invoked_function_arn="arn")


def test_an_invocation_no_next_took_was_not_delivered() -> None:
    async def scenario() -> None:
        channel = RuntimeChannel()
        event = invocation("a")
        task = asyncio.create_task(channel.invoke(event))
        await asyncio.sleep(0)
        channel.close("runtime exited")  # the runtime died with no `next` outstanding
        with contextlib.suppress(ChannelClosed):
            await task
        assert not channel.delivered(event)

    asyncio.run(scenario())


def test_an_invocation_a_waiting_next_took_was_delivered() -> None:
    async def scenario() -> None:
        channel = RuntimeChannel()
        taken: list[Invocation | None] = []
        channel.request_next(taken.append)  # the runtime's long-poll, waiting
        event = invocation("b")
        task = asyncio.create_task(channel.invoke(event))
        await asyncio.sleep(0)
        assert taken == [event]
        channel.close("runtime exited")
        with contextlib.suppress(ChannelClosed):
            await task
        assert channel.delivered(event)

    asyncio.run(scenario())


def test_an_invocation_a_later_next_took_was_delivered() -> None:
    async def scenario() -> None:
        channel = RuntimeChannel()
        event = invocation("c")
        task = asyncio.create_task(channel.invoke(event))
        await asyncio.sleep(0)
        assert not channel.delivered(event)
        taken: list[Invocation | None] = []
        channel.request_next(taken.append)  # the runtime asks after the event was put
        assert taken == [event] and channel.delivered(event)
        channel.close("gone")
        with contextlib.suppress(ChannelClosed):
            await task

    asyncio.run(scenario())
