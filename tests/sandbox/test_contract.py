"""Every implementation honours the same Sandbox/SandboxFactory contract."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdad.sandbox import (
    NetworkMode,
    Sandbox,
    SandboxError,
    SandboxFactory,
    SandboxSpec,
    SandboxUnavailable,
    create_factory,
)
from lambdad.sandbox.fake import FakeSandbox
from lambdad.sandbox.safe import SafeFactory
from tests.sandbox.support import py_spec, read_all

pytestmark = pytest.mark.timeout(60)

#: What the "runtime" does in the contract test: print, call the Runtime API, exit 3.
RUNTIME = """
import os, socket, sys
print('hello', os.environ['FOO'], flush=True)
host, port = os.environ['AWS_LAMBDA_RUNTIME_API'].split(':')
with socket.create_connection((host, int(port)), timeout=5) as conn:
    conn.sendall(b'ping')
    print('got', conn.recv(4).decode(), file=sys.stderr, flush=True)
sys.exit(3)
"""


async def fake_runtime(sandbox: FakeSandbox) -> int:
    """The same behaviour as RUNTIME, as a fake program."""
    sandbox.write_output(f"hello {sandbox.env['FOO']}\n")
    reader, writer = await sandbox.open_runtime_api()
    writer.write(b"ping")
    reply = await reader.readexactly(4)
    writer.close()
    sandbox.write_output(f"got {reply.decode()}\n")
    return 3


async def fake_forever(sandbox: FakeSandbox) -> int:
    await asyncio.sleep(3600)
    return 0


IMPLEMENTATIONS = ["namespaces", "process", "fake"]


def make_factory(name: str, forever: bool = False) -> SandboxFactory:
    options: dict[str, object] = {}
    if name == "fake":
        options["program"] = fake_forever if forever else fake_runtime
    elif name == "process":
        # The test interpreter lives under /root (mode 0700), which uid 993 cannot enter.
        options["drop_privileges"] = False
    try:
        return create_factory(name, **options)
    except SandboxUnavailable as exc:
        pytest.skip(f"{name} sandboxes are unavailable here: {exc}")


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


@pytest.fixture
def spec_for(code_dir: Path):
    def spec(code: str, **overrides: object) -> SandboxSpec:
        return py_spec(code, code_dir, network=NetworkMode.NONE, **overrides)

    return spec


def test_factory_reports_name_and_isolation(implementation: str) -> None:
    factory = make_factory(implementation)
    assert isinstance(factory, SandboxFactory) and isinstance(factory, SafeFactory)
    assert factory.name == implementation
    assert factory.isolated == (implementation == "namespaces")
    asyncio.run(factory.close())


def test_sandbox_runs_serves_runtime_api_and_reports_exit(implementation: str, spec_for) -> None:
    factory = make_factory(implementation)

    async def scenario() -> None:
        try:
            sandbox = await factory.create(spec_for(RUNTIME))
            assert isinstance(sandbox, Sandbox)
            assert sandbox.id and sandbox.pid > 0 and sandbox.spec.label == "test"
            listener = sandbox.runtime_api_socket
            assert isinstance(listener, socket.socket) and sandbox.runtime_api_address
            # The host side is asyncio, as lambdad's Runtime API server will be.
            loop = asyncio.get_running_loop()
            listener.setblocking(False)
            conn, _ = await asyncio.wait_for(loop.sock_accept(listener), 10)
            with conn:
                assert await asyncio.wait_for(loop.sock_recv(conn, 4), 10) == b"ping"
                await loop.sock_sendall(conn, b"pong")
            assert await asyncio.wait_for(sandbox.wait(), 10) == 3
            output = await asyncio.get_running_loop().run_in_executor(None, read_all, sandbox.output)
            assert output.decode().splitlines() == ["hello bar", "got pong"]
            assert isinstance(sandbox.memory_peak_bytes(), int) and sandbox.memory_peak_bytes() >= 0
            assert sandbox.oom_killed() is False
            await sandbox.destroy()
            await sandbox.destroy()  # idempotent
            assert await sandbox.wait() == 3  # still answers after destroy
            assert listener.fileno() == -1  # destroy closed the socket
            os.close(sandbox.output)
        finally:
            await factory.close()

    asyncio.run(scenario())


def test_destroy_kills_a_running_sandbox(implementation: str, spec_for) -> None:
    factory = make_factory(implementation, forever=True)

    async def scenario() -> None:
        try:
            sandbox = await factory.create(spec_for("import time; time.sleep(60)"))
            await asyncio.gather(sandbox.destroy(), sandbox.destroy())  # concurrent calls are fine
            assert await asyncio.wait_for(sandbox.wait(), 5) == -9
            os.close(sandbox.output)
        finally:
            await factory.close()

    asyncio.run(scenario())


def test_close_destroys_live_sandboxes_and_refuses_new_ones(implementation: str, spec_for) -> None:
    factory = make_factory(implementation, forever=True)

    async def scenario() -> None:
        sandbox = await factory.create(spec_for("import time; time.sleep(60)"))
        await factory.close()
        await factory.close()  # idempotent
        assert await asyncio.wait_for(sandbox.wait(), 5) == -9
        os.close(sandbox.output)
        with pytest.raises(SandboxError, match="closed"):
            await factory.create(spec_for("pass"))

    asyncio.run(scenario())


def test_no_runtime_api_socket_when_the_spec_asks_for_none(implementation: str, spec_for) -> None:
    factory = make_factory(implementation, forever=True)

    async def scenario() -> None:
        try:
            sandbox = await factory.create(spec_for("import time; time.sleep(60)", runtime_api_port=None))
            assert sandbox.runtime_api_socket is None and sandbox.runtime_api_address is None
            await sandbox.destroy()
            os.close(sandbox.output)
        finally:
            await factory.close()

    asyncio.run(scenario())


def test_cancelled_create_leaves_no_sandbox_behind(implementation: str, spec_for) -> None:
    factory = make_factory(implementation, forever=True)
    assert isinstance(factory, SafeFactory)

    async def scenario() -> None:
        try:
            task = asyncio.get_running_loop().create_task(
                factory.create(spec_for("import time; time.sleep(60)"))
            )
            await asyncio.sleep(0)  # let creation start
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert factory.live == 0
        finally:
            await factory.close()

    asyncio.run(scenario())


def test_unknown_implementation_is_rejected() -> None:
    with pytest.raises(ValueError, match="namespaces, process, fake"):
        create_factory("docker")
