"""Spare environments: sandboxes started ahead of demand, their runtime initialised, waiting for a function.

A spare is function-independent. What is fixed when a sandbox is created makes its key (``SpareKey``:
runtime, interpreter, runtime directory, network mode, size of /tmp); everything else is handed over when
a cold start takes it (``ExecutionEnvironment.start(spare)``): the function's code is attached read-only at
/var/task (mount propagation, see ``lambdad.sandbox.mounts``), its memory limit and CPU share applied, and
its environment variables and handler answered to the zygote's ``lambdad/specialize`` long-poll.

Only Python runtimes have spares (``lambdad.runtimes.python_zygote``). A function whose environment would
change how the interpreter itself starts (``PYTHON*``, ``LANG``/``LC_*``, ``LD_*`` differing from the
spare's) is never given one: those take effect at interpreter start only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from lambdad.environment.pipes import read_available
from lambdad.runtime_api import RuntimeApiServer, RuntimeChannel, Specialization
from lambdad.runtimes import Family, Interpreter, spec, standard_environment, zygote_command
from lambdad.sandbox import (
    Mount,
    NetworkMode,
    Sandbox,
    SandboxError,
    SandboxFactory,
    SandboxSpec,
    supports_specialization,
)

log = logging.getLogger(__name__)

#: Memory limit of a spare until it is specialised (AWS's largest function size).
SPARE_MEMORY_MB = 10240
#: How long a spare may take to get its runtime initialised.
SPARE_START_LIMIT_S = 10.0
TASK_ROOT = "/var/task"
_STARTUP_PREFIXES = ("PYTHON", "LC_", "LD_")
_STARTUP_NAMES = frozenset({"LANG"})


@dataclass(frozen=True)
class SpareKey:
    """What a sandbox is created with and a spare cannot change later."""

    runtime: str
    interpreter: Interpreter
    runtime_dir: Path
    network: NetworkMode
    ephemeral_mb: int


def spare_key(
    runtime: str,
    interpreter: Interpreter,
    runtime_dir: Path | None,
    network: NetworkMode,
    ephemeral_mb: int,
) -> SpareKey | None:
    """The key of the spares that can serve such a function; None if no spare can."""
    if runtime_dir is None or interpreter.path is None or spec(runtime).family is not Family.PYTHON:
        return None
    return SpareKey(runtime, interpreter, runtime_dir, network, ephemeral_mb)


def mounts_for(runtime_dir: Path | None, interpreter: Interpreter) -> list[Mount]:
    """The runtime directory at /var/runtime and the interpreter's installation prefix at its own path."""
    mounts = []
    if runtime_dir is not None:
        mounts.append(Mount(runtime_dir, "/var/runtime"))
    if interpreter.path is not None:
        # The interpreter's whole installation prefix (bin/, lib/), read-only at its own path.
        prefix = interpreter.path.resolve().parent.parent
        if prefix != Path("/usr"):
            mounts.append(Mount(prefix, str(prefix)))
    return mounts


def startup_compatible(spare_env: dict[str, str], function_env: dict[str, str]) -> bool:
    """Whether the variables read only at interpreter start are the same for the spare and the function."""
    names = {
        name
        for name in (*spare_env, *function_env)
        if name in _STARTUP_NAMES or name.startswith(_STARTUP_PREFIXES)
    }
    return all(spare_env.get(name) == function_env.get(name) for name in names)


@dataclass
class Handover:
    """What an environment takes over from a spare."""

    sandbox: Sandbox
    channel: RuntimeChannel
    server: RuntimeApiServer
    specialization: Specialization
    serve_task: asyncio.Task[None]
    output_fd: int


class Spare:
    """One spare: a sandbox running the zygote, its Runtime API served, its output discarded."""

    def __init__(self, key: SpareKey, factory: SandboxFactory) -> None:
        self.key = key
        self._factory = factory
        launch = zygote_command(key.runtime, key.interpreter)
        env = standard_environment(
            runtime=key.runtime,
            handler=None,
            function_name="lambdad-spare",
            runtime_api="127.0.0.1:9001",  # the sandbox sets the real address
            interpreter_dir=str(key.interpreter.path.parent) if key.interpreter.path else None,
        )
        env.update(launch.env)
        env["PYTHONUNBUFFERED"] = "1"
        #: The spare's own environment; the function's replaces it at specialisation.
        self.env = env
        self._spec = SandboxSpec(
            argv=list(launch.argv),
            env=env,
            mounts=mounts_for(key.runtime_dir, key.interpreter),
            memory_mb=SPARE_MEMORY_MB,
            tmp_mb=key.ephemeral_mb,
            network=key.network,
            label=f"spare-{key.runtime}",
            cpu_boost=True,
            code_slot=TASK_ROOT,
        )
        self._sandbox: Sandbox | None = None
        self._channel: RuntimeChannel | None = None
        self._server: RuntimeApiServer | None = None
        self._specialization: Specialization | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._output_fd: int | None = None
        self._exited = False
        self._taken = False
        self._destroyed = False

    @property
    def ready(self) -> bool:
        """Initialised, waiting for a function, and not taken or gone."""
        return (
            self._specialization is not None
            and self._specialization.polled.done()
            and not self._specialization.polled.cancelled()
            and not self._exited
            and not self._taken
            and not self._destroyed
        )

    def fits(self, function_env: dict[str, str]) -> bool:
        return startup_compatible(self.env, function_env)

    async def start(self) -> None:
        """Create the sandbox and wait until the zygote is initialised; raises (and cleans up) if it fails."""
        if not supports_specialization(self._factory):
            raise SandboxError(f"sandbox implementation {self._factory.name!r} has no spares")
        loop = asyncio.get_running_loop()
        try:
            self._channel = RuntimeChannel()
            self._specialization = Specialization()
            # No Lambda API until specialised: the environment that takes the spare binds its own caller.
            self._server = RuntimeApiServer(self._channel, None, self._specialization)
            self._sandbox = sandbox = await self._factory.create(self._spec)
            self._output_fd = sandbox.output
            os.set_blocking(self._output_fd, False)
            loop.add_reader(self._output_fd, self._discard_output)
            socket_ = sandbox.runtime_api_socket
            assert socket_ is not None
            self._serve_task = loop.create_task(self._server.serve(socket_))
            self._watch_task = loop.create_task(self._watch_exit(sandbox))
            polled = self._specialization.polled
            await asyncio.wait_for(asyncio.shield(polled), SPARE_START_LIMIT_S)
        except BaseException:
            await asyncio.shield(self.destroy())
            raise

    async def _watch_exit(self, sandbox: Sandbox) -> None:
        status = await sandbox.wait()
        self._exited = True
        if self._specialization is not None and not self._specialization.polled.done():
            self._specialization.polled.set_exception(
                SandboxError(f"the spare runtime exited with status {status} before it was ready")
            )
        if not self._taken:
            log.warning("spare %s exited (status %s)", sandbox.id, status)

    def _discard_output(self) -> None:
        """The zygote's output before specialisation belongs to no function's log."""
        if self._output_fd is not None and (chunk := read_available(self._output_fd)):
            log.debug("spare output: %r", chunk[:200])

    def take(self) -> Handover:
        """Hand the spare over to an environment, which owns everything from now on."""
        if not self.ready:
            raise SandboxError("the spare is not ready")
        assert self._sandbox and self._channel and self._server and self._specialization
        assert self._serve_task is not None and self._output_fd is not None
        self._taken = True
        asyncio.get_running_loop().remove_reader(self._output_fd)
        self._discard_output()  # whatever the zygote wrote while it was initialising
        if self._watch_task is not None:
            self._watch_task.cancel()
        handover = Handover(
            self._sandbox,
            self._channel,
            self._server,
            self._specialization,
            self._serve_task,
            self._output_fd,
        )
        self._output_fd = None
        return handover

    async def destroy(self) -> None:
        """Stop a spare that was not taken (idempotent; a taken spare is the environment's to stop)."""
        if self._destroyed or self._taken:
            return
        self._destroyed = True
        if self._output_fd is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._output_fd)
            os.close(self._output_fd)
            self._output_fd = None
        if self._channel is not None:
            self._channel.close("the spare was discarded")
        if self._server is not None:
            self._server.close()
        if self._sandbox is not None:
            await self._sandbox.destroy()
        for task in (self._serve_task, self._watch_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
