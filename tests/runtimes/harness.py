"""Run a real runtime process (no sandbox) against a real Runtime API server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lambdad.runtime_api import ChannelClosed, Invocation, InvocationResult, RuntimeApiServer, RuntimeChannel
from lambdad.runtimes import (
    Interpreter,
    ensure_installed,
    find_interpreter,
    launch_command,
    standard_environment,
)

# Shared by every test session and xdist worker; ensure_installed locks and is idempotent.
RUNTIME_CACHE = Path(tempfile.gettempdir()) / "lambdad-test-runtimes"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"
T = TypeVar("T")


def runtime_dir(runtime: str, interpreter: Interpreter | None = None) -> Path | None:
    return ensure_installed(runtime, RUNTIME_CACHE, interpreter=interpreter)


def event(
    payload: bytes = b"{}", request_id: str | None = None, timeout_s: float = 30, **kw: str
) -> Invocation:
    return Invocation(
        request_id or str(uuid.uuid4()), payload, int((time.time() + timeout_s) * 1000), ARN, **kw
    )


@dataclass
class Run:
    init_error: InvocationResult | None
    results: list[InvocationResult] = field(default_factory=list)
    logs: str = ""
    exit_code: int | None = None
    note: str | None = None


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def run_function(
    runtime: str,
    handler: str,
    code_dir: Path,
    invocations: Sequence[Invocation],
    *,
    user_env: Mapping[str, str] | None = None,
    opt_dir: Path | None = None,
    interpreter: Interpreter | None = None,
    timeout: float = 60,
) -> Run:
    """Start ``runtime`` on ``code_dir``, wait for init, invoke each invocation in turn, stop it."""
    interp = interpreter or find_interpreter(runtime)
    rdir = runtime_dir(runtime, interp)  # the first install may take a while: not part of the timeout
    return asyncio.run(
        asyncio.wait_for(
            _run(runtime, handler, code_dir, invocations, user_env, opt_dir, interp, rdir), timeout
        )
    )


async def _run(
    runtime: str,
    handler: str,
    code_dir: Path,
    invocations: Sequence[Invocation],
    user_env: Mapping[str, str] | None,
    opt_dir: Path | None,
    interp: Interpreter,
    rdir: Path | None,
) -> Run:
    opt = opt_dir or code_dir.parent / "opt"
    channel = RuntimeChannel()
    server = RuntimeApiServer(channel)
    sock = listening_socket()
    host, port = sock.getsockname()
    serving = asyncio.create_task(server.serve(sock))
    paths = {"task_root": str(code_dir), "opt_root": str(opt), "runtime_dir": str(rdir or "/var/runtime")}
    command = launch_command(runtime, interp, handler, code_dir=code_dir, layers_dir=opt, **paths)
    env = standard_environment(
        runtime=runtime,
        handler=handler,
        function_name="fn",
        runtime_api=f"{host}:{port}",
        user_environment=user_env,
        interpreter_dir=str(interp.path.parent) if interp.path else None,
        **paths,
    )
    env.update(command.env)
    log_path = code_dir.parent / f"log-{uuid.uuid4().hex}.txt"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *command.argv, env=env, cwd=code_dir, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    run = Run(init_error=None, note=command.note)
    exited = asyncio.create_task(proc.wait())
    try:
        run.init_error = await _or_exit(channel.wait_ready(), exited, channel)
        for invocation in invocations:
            result = await _or_exit(channel.invoke(invocation), exited, channel)
            if result.stream is not None:
                chunks = await result.stream.read_all()
                result = InvocationResult(
                    result.kind, chunks, result.error_type, result.content_type, result.stream
                )
            run.results.append(result)
            if run.init_error is not None:
                break
    except ChannelClosed:
        pass
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        run.exit_code = await proc.wait()
        channel.close()
        server.close()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        sock.close()
    run.logs = log_path.read_text(errors="replace")
    os.unlink(log_path)
    return run


async def _or_exit(work: Coroutine[Any, Any, T], exited: asyncio.Task[int], channel: RuntimeChannel) -> T:
    """``work``, unless the runtime process exits first (then the channel closes, as the owner would)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task, exited}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    await asyncio.sleep(0.2)  # let a final init/error or response in flight land
    if task.done():
        return task.result()
    channel.close("the runtime exited")
    task.cancel()
    raise ChannelClosed("the runtime exited")
