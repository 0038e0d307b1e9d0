"""The in-memory fake's test helpers."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lambdad.sandbox import SandboxError, SandboxUnavailable
from lambdad.sandbox.fake import FakeSandbox, FakeSandboxFactory
from tests.sandbox.support import py_spec, read_all

pytestmark = pytest.mark.timeout(10)


def test_fake_without_program_runs_until_told_to_exit(code_dir: Path) -> None:
    async def scenario() -> None:
        factory = FakeSandboxFactory()
        sandbox = await factory.create(py_spec("ignored", code_dir))
        assert isinstance(sandbox, FakeSandbox) and factory.created == [sandbox]
        assert sandbox.env["AWS_LAMBDA_RUNTIME_API"] == sandbox.runtime_api_address
        sandbox.write_output("log line\n")
        await asyncio.sleep(0.01)
        assert not sandbox._exit.done()
        sandbox.exit(0)
        assert await sandbox.wait() == 0
        assert read_all(sandbox.output) == b"log line\n"
        os.close(sandbox.output)
        await factory.close()
        assert sandbox.destroyed

    asyncio.run(scenario())


def test_fake_oom_kill_reports_oom_and_peak(code_dir: Path) -> None:
    async def scenario() -> None:
        factory = FakeSandboxFactory()
        sandbox = await factory.create(py_spec("ignored", code_dir, memory_mb=128))
        assert isinstance(sandbox, FakeSandbox)
        sandbox.kill_oom()
        assert await sandbox.wait() == -9
        assert sandbox.oom_killed() and sandbox.memory_peak_bytes() == 128 << 20
        await sandbox.destroy()
        os.close(sandbox.output)

    asyncio.run(scenario())


def test_fake_program_crash_exits_1_with_traceback_in_output(code_dir: Path) -> None:
    async def crash(sandbox: FakeSandbox) -> int:
        raise RuntimeError("boom")

    async def scenario() -> None:
        factory = FakeSandboxFactory(crash)
        sandbox = await factory.create(py_spec("ignored", code_dir))
        assert await sandbox.wait() == 1
        assert b"RuntimeError: boom" in read_all(sandbox.output)
        await sandbox.destroy()
        os.close(sandbox.output)

    asyncio.run(scenario())


def test_fake_factory_can_simulate_creation_failures(code_dir: Path) -> None:
    factory = FakeSandboxFactory(fail_with=SandboxUnavailable("no namespaces here"))
    with pytest.raises(SandboxUnavailable):
        asyncio.run(factory.create(py_spec("ignored", code_dir)))
    assert factory.created == []


def test_fake_refuses_output_after_exit(code_dir: Path) -> None:
    async def scenario() -> None:
        sandbox = await FakeSandboxFactory().create(py_spec("ignored", code_dir))
        assert isinstance(sandbox, FakeSandbox)
        sandbox.exit(2)
        with pytest.raises(SandboxError):
            sandbox.write_output("late")
        await sandbox.destroy()
        os.close(sandbox.output)

    asyncio.run(scenario())
