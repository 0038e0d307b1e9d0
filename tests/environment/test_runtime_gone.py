"""A runtime that dies after init while no invocation is outstanding: an invocation that lands on it
before its exit is seen is refused with RuntimeGone (it never reached the runtime, so the invoker may
run it elsewhere) when redeliverable, and answers Runtime.ExitError otherwise (a fake sandbox plays
the runtime: its long-poll goes away, then the process ends)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lambdad.environment import EnvironmentState, ExecutionEnvironment, RuntimeGone
from lambdad.observability.logs import LogStore
from lambdad.runtime_api import Invocation
from lambdad.sandbox.fake import FakeSandbox, FakeSandboxFactory
from tests.environment.test_spare_handover import image


def dying_runtime(dies: asyncio.Event) -> FakeSandboxFactory:
    async def program(sb: FakeSandbox) -> int:
        _, writer = await sb.open_runtime_api()
        writer.write(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()  # init is over: the first `next` waits for an event
        await dies.wait()
        writer.close()  # the runtime dies: its long-poll goes first ...
        await asyncio.sleep(0.2)  # ... its exit is seen a little later
        return 0

    return FakeSandboxFactory(program=program)


def event(request_id: str) -> Invocation:
    return Invocation(request_id=request_id, payload=b"{}", deadline_ms=0, invoked_function_arn="arn")


@pytest.mark.parametrize("redeliverable", [True, False])
def test_an_invocation_the_dead_runtime_never_took(tmp_path: Path, redeliverable: bool) -> None:
    async def scenario() -> None:
        dies = asyncio.Event()
        logs = LogStore(tmp_path / "logs")
        environment = ExecutionEnvironment(image(tmp_path / "code"), dying_runtime(dies), logs)
        await environment.start()
        assert environment.state is EnvironmentState.READY
        dies.set()
        await asyncio.sleep(0.05)  # the long-poll's connection is gone; the process is not yet
        try:
            if redeliverable:
                with pytest.raises(RuntimeGone):
                    await environment.invoke(event("never-ran"), 5, redeliverable=True)
                assert not environment.reusable
            else:
                outcome = await environment.invoke(event("never-ran"), 5)
                assert outcome.error_type == "Runtime.ExitError"
        finally:
            await environment.shutdown()
        messages = [e.message for e in logs.events("/aws/lambda/handed")]
        said = [m for m in messages if "before invocation never-ran reached it" in m]
        assert len(said) == (1 if redeliverable else 0), messages

    asyncio.run(scenario())
