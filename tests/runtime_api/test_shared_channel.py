"""The channel of a runtime with several workers (Managed Instances): invocations keyed by request id."""

from __future__ import annotations

import asyncio

import pytest

from lambdad.runtime_api import (
    ApiError,
    ChannelClosed,
    Invocation,
    InvocationResult,
    Move,
    ResultKind,
    SharedRuntimeChannel,
)


def invocation(request_id: str) -> Invocation:
    return Invocation(request_id=request_id, payload=b"{}", deadline_ms=0, invoked_function_arn="arn")


def answer(channel: SharedRuntimeChannel, request_id: str, payload: bytes) -> None:
    channel.start_response(request_id, Move.RESPONSE)
    channel.deliver(InvocationResult(ResultKind.SUCCESS, payload), request_id)
    channel.response_sent(request_id)


def test_workers_answer_their_own_invocations_in_any_order() -> None:
    async def scenario() -> None:
        channel = SharedRuntimeChannel(2)
        taken: list[Invocation | None] = []
        channel.request_next(taken.append)  # two workers long-poll
        channel.request_next(taken.append)
        assert await channel.wait_ready() is None
        first = asyncio.create_task(channel.invoke(invocation("a")))
        second = asyncio.create_task(channel.invoke(invocation("b")))
        await asyncio.sleep(0)
        assert [i.request_id for i in taken if i] == ["a", "b"]
        answer(channel, "b", b"B")
        answer(channel, "a", b"A")
        assert (await first).payload == b"A" and (await second).payload == b"B"
        assert channel.outstanding == 0

    asyncio.run(scenario())


def test_an_invocation_waits_for_a_free_worker() -> None:
    async def scenario() -> None:
        channel = SharedRuntimeChannel(2)
        queued = asyncio.create_task(channel.invoke(invocation("q")))
        await asyncio.sleep(0)
        assert not channel.delivered(invocation("q"))
        taken = await channel.next_invocation()
        assert taken.request_id == "q" and channel.delivered(taken)
        answer(channel, "q", b"ok")
        assert (await queued).payload == b"ok"

    asyncio.run(scenario())


def test_unknown_ids_and_second_answers_are_refused() -> None:
    async def scenario() -> None:
        channel = SharedRuntimeChannel(2)
        channel.request_next(lambda _: None)
        task = asyncio.create_task(channel.invoke(invocation("a")))
        await asyncio.sleep(0)
        with pytest.raises(ApiError) as unknown:
            channel.start_response("nope", Move.RESPONSE)
        assert (unknown.value.status, unknown.value.error_type) == (400, "InvalidRequestID")
        channel.start_response("a", Move.RESPONSE)
        with pytest.raises(ApiError) as twice:
            channel.start_response("a", Move.ERROR)
        assert (twice.value.status, twice.value.error_type) == (403, "InvalidStateTransition")
        channel.deliver(InvocationResult(ResultKind.SUCCESS, b"x"), "a")
        channel.response_sent("a")
        await task

    asyncio.run(scenario())


def test_a_lost_worker_fails_its_invocation_only() -> None:
    async def scenario() -> None:
        channel = SharedRuntimeChannel(2)
        channel.request_next(lambda _: None)
        channel.request_next(lambda _: None)
        lost = asyncio.create_task(channel.invoke(invocation("lost")))
        kept = asyncio.create_task(channel.invoke(invocation("kept")))
        await asyncio.sleep(0)
        channel.connection_lost("lost")
        result = await lost
        assert result.kind is ResultKind.FUNCTION_ERROR and result.error_type == "Runtime.ExitError"
        answer(channel, "kept", b"fine")
        assert (await kept).payload == b"fine"

    asyncio.run(scenario())


def test_only_the_first_init_error_counts() -> None:
    async def scenario() -> None:
        channel = SharedRuntimeChannel(2)
        failure = InvocationResult(ResultKind.INIT_ERROR, b"{}", "Runtime.ImportModuleError")
        channel.init_error(failure)
        with pytest.raises(ApiError) as again:
            channel.init_error(failure)
        assert again.value.status == 403
        assert await channel.wait_ready() is failure
        assert await channel.invoke(invocation("a")) is failure
        channel.close()
        with pytest.raises(ChannelClosed):
            await channel.invoke(invocation("b"))

    asyncio.run(scenario())
