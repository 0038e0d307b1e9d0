"""An in-memory sandbox for unit tests of the layers above: no processes are started.

Each fake sandbox still has a real ``output`` pipe and a real listening Runtime API socket
on a free host loopback port, so the code under test can use both exactly as with a real
sandbox. What the "process" does is a *program*: an async function given the sandbox that
may write output, talk to the Runtime API and returns the exit status::

    async def runtime(sb: FakeSandbox) -> int:
        reader, writer = await sb.open_runtime_api()
        ...
        return 0

    factory = FakeSandboxFactory(program=runtime)

Without a program the fake "runs" until it is destroyed or told to ``exit()``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import socket
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from lambdad.sandbox.api import Sandbox, SandboxError, SandboxSpec
from lambdad.sandbox.network import listen_tcp

__all__ = ["FakeProgram", "FakeSandbox", "FakeSandboxFactory"]

FakeProgram = Callable[["FakeSandbox"], Awaitable[int]]
_fake_pids = itertools.count(4_000_000)  # above any real pid_max, so never a real process


class FakeSandbox:
    """A sandbox whose process is a coroutine; test helpers drive what it reports."""

    def __init__(self, factory: FakeSandboxFactory, spec: SandboxSpec) -> None:
        self._factory = factory
        self._spec = spec
        self._id = f"{spec.label}-{secrets.token_hex(6)}"
        self._pid = next(_fake_pids)
        self._output, self._output_w = os.pipe2(os.O_CLOEXEC)
        self._socket: socket.socket | None = None
        self._address: str | None = None
        self.env = dict(spec.env)
        if spec.runtime_api_port is not None:
            self._socket = listen_tcp("127.0.0.1", 0)
            self._address = f"127.0.0.1:{self._socket.getsockname()[1]}"
            self.env["AWS_LAMBDA_RUNTIME_API"] = self._address
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self.memory_peak = 0
        self.oom = False
        self.cpu_boost_ended = False
        self.destroyed = False
        #: What ``specialize`` was given: (code directory, memory_mb).
        self.specialized: tuple[Path, int] | None = None

    @property
    def id(self) -> str:
        return self._id

    @property
    def spec(self) -> SandboxSpec:
        return self._spec

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def output(self) -> int:
        return self._output

    @property
    def runtime_api_socket(self) -> socket.socket | None:
        return self._socket

    @property
    def runtime_api_address(self) -> str | None:
        return self._address

    # -- test helpers ----------------------------------------------------------------------

    def write_output(self, data: bytes | str) -> None:
        """Append to the sandbox's output, as if the process printed it."""
        if self._output_w < 0:
            raise SandboxError("the fake process has exited")
        os.write(self._output_w, data.encode() if isinstance(data, str) else data)

    def exit(self, status: int) -> None:
        """Make the process exit with ``status`` (negative: killed by that signal)."""
        if self._task is not None and asyncio.current_task() is not self._task:
            self._task.cancel()
        self._finish(status)

    def kill_oom(self) -> None:
        """Simulate the kernel's OOM killer."""
        self.oom = True
        self.memory_peak = max(self.memory_peak, self._spec.memory_mb * 1024 * 1024)
        self.exit(-9)

    async def open_runtime_api(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the Runtime API the way the sandboxed runtime would."""
        if self._address is None:
            raise SandboxError("this sandbox has no Runtime API")
        host, port = self._address.rsplit(":", 1)
        return await asyncio.open_connection(host, int(port))

    def _finish(self, status: int) -> None:
        if not self._exit.done():
            self._exit.set_result(status)
        if self._output_w >= 0:
            os.close(self._output_w)  # EOF for the reader, like a real process exiting
            self._output_w = -1

    def _run(self, program: FakeProgram) -> None:
        async def main() -> None:
            try:
                status = await program(self)
            except asyncio.CancelledError:
                return
            except Exception:
                self.write_output(traceback.format_exc())
                status = 1
            self._finish(status)

        self._task = asyncio.get_running_loop().create_task(main())

    # -- Sandbox protocol ------------------------------------------------------------------

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def memory_peak_bytes(self) -> int:
        return self.memory_peak

    def end_cpu_boost(self) -> None:
        self.cpu_boost_ended = True

    def oom_killed(self) -> bool:
        return self.oom

    async def specialize(self, code: Path, memory_mb: int, label: str | None = None) -> None:
        if self._spec.code_slot is None or self.specialized is not None:
            raise SandboxError(f"sandbox {self._id} cannot be specialized")
        self.specialized = (code, memory_mb)
        self._spec = replace(self._spec, memory_mb=memory_mb, label=label or self._spec.label)
        if label:
            self._id = f"{label}-{self._id.rsplit('-', 1)[1]}"

    async def destroy(self) -> None:
        if self.destroyed:
            return
        self.destroyed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._finish(-9)
        if self._socket is not None:
            self._socket.close()
        self._factory._live.discard(self)


class FakeSandboxFactory:
    """Creates :class:`FakeSandbox` es and remembers them in ``created``."""

    name = "fake"
    isolated = False
    specializable = True

    def __init__(self, program: FakeProgram | None = None, *, fail_with: Exception | None = None) -> None:
        self.program = program
        #: If set, ``create()`` raises it (to test callers' error paths).
        self.fail_with = fail_with
        self.created: list[FakeSandbox] = []
        self.closed = False
        self._live: set[FakeSandbox] = set()

    async def create(self, spec: SandboxSpec) -> Sandbox:
        if self.closed:
            raise SandboxError("sandbox factory is closed")
        if self.fail_with is not None:
            raise self.fail_with
        sandbox = FakeSandbox(self, spec)
        self.created.append(sandbox)
        self._live.add(sandbox)
        if self.program is not None:
            sandbox._run(self.program)
        return sandbox

    async def close(self) -> None:
        self.closed = True
        await asyncio.gather(*(s.destroy() for s in list(self._live)), return_exceptions=True)
