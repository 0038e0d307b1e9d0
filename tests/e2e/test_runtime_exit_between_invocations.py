"""A runtime that dies between invocations (a thread of the function calls os._exit after the handler
returned; the process is killed while idle) is replaced unseen: the next invocation runs in a new
environment instead of answering Runtime.ExitError, and the log says what happened (issue 10)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from tests.e2e.invoke_support import (
    cgroup_dirs,
    deploy_python,
    eventually,
    invoke,
    log_messages,
    server_fixture,
    unique,
)
from tests.support import Server

server = server_fixture()

# Each environment has an id of its own; asked to, the handler leaves a thread behind that ends the
# runtime process once the invocation is over.
LEAVES_A_TIMER = """
import os, threading, uuid

ENVIRONMENT = uuid.uuid4().hex

def handler(event, context):
    if event.get("exit_after"):
        threading.Timer(event["exit_after"], os._exit, (event.get("status", 0),)).start()
    return {"environment": ENVIRONMENT}
"""

EXITED_WHILE_IDLE = "lambdad: the runtime exited between invocations"


def sandbox_processes(name: str) -> set[int]:
    """Host pids of the processes in the function's sandboxes (there is one here): its runtime, and
    what holds the sandbox together."""
    pids: set[int] = set()
    for directory in cgroup_dirs(name):
        pids |= {int(pid) for pid in (directory / "cgroup.procs").read_text().split()}
    return pids


def exited_while_idle(server: Server, name: str) -> list[str]:
    return [m for m in log_messages(server, name) if m.startswith(EXITED_WHILE_IDLE)]


def test_a_runtime_ended_by_its_own_thread_after_returning_is_replaced_unseen(
    server: Server, client: Any
) -> None:
    name = unique("exits-later")
    deploy_python(client, name, LEAVES_A_TIMER)
    response, first = invoke(client, name, {"exit_after": 1.0, "status": 3})
    assert "FunctionError" not in response, first
    sandbox = sandbox_processes(name)
    assert sandbox, "the sandbox was gone before the test looked"
    eventually(lambda: all(not Path(f"/proc/{pid}").exists() for pid in sandbox))

    response, second = invoke(client, name, {})
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response, second
    assert second["environment"] != first["environment"]
    # The exit watcher saw the runtime go and said so in the function's log.
    (line,) = exited_while_idle(server, name)
    assert "(exit status 3)" in line


def test_a_runtime_killed_while_idle_is_replaced_unseen(server: Server, client: Any) -> None:
    name = unique("killed-idle")
    deploy_python(client, name, LEAVES_A_TIMER)
    _, first = invoke(client, name, {})

    sandbox = sandbox_processes(name)
    for pid in sandbox:
        # Killing the sandbox's init first takes the rest with it: a pid may be gone when its turn comes.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    eventually(lambda: all(not Path(f"/proc/{pid}").exists() for pid in sandbox))

    response, second = invoke(client, name, {})
    assert "FunctionError" not in response, second
    assert second["environment"] != first["environment"]
    (line,) = eventually(lambda: exited_while_idle(server, name))
    assert "(signal: killed)" in line
