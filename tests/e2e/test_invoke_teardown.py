"""Nothing outlives a stopped server: no process of its sandboxes (not even one a function left running in
the background), no cgroup, no veth, no mount. Everything checked is found through this test's own
function (its name, a marker in its environment), so servers of other test workers cannot confuse it."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from tests.e2e.invoke_support import (
    cgroup_dirs,
    deploy_python,
    eventually,
    health,
    invoke,
    processes_with,
    start_server,
    unique,
)

# Leaves a detached grandchild behind (new session, its parent gone) and names its environment.
LEAVE_BEHIND = """
import subprocess, time, uuid

ENVIRONMENT_ID = uuid.uuid4().hex

def handler(event, context):
    subprocess.Popen(["/bin/sh", "-c", "sleep 600 &"], start_new_session=True).wait()
    time.sleep(event.get("sleep", 0))
    return ENVIRONMENT_ID
"""


def host_veth_peers(pids: list[int]) -> set[int]:
    """Host-side interface indexes of the veths the sandboxes of ``pids`` have (``eth0@ifN``)."""
    peers: set[int] = set()
    for pid in pids:
        result = subprocess.run(
            ["nsenter", "-t", str(pid), "-n", "ip", "-o", "link", "show"],
            capture_output=True,
            text=True,
            check=False,
        )
        peers.update(int(index) for index in re.findall(r"eth0@if(\d+)", result.stdout))
    return peers


def host_interface_indexes() -> set[int]:
    indexes = set()
    for link in Path("/sys/class/net").iterdir():
        with contextlib.suppress(OSError):
            indexes.add(int((link / "ifindex").read_text()))
    return indexes


def host_mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if prefix in line]


def deploy_leaver(client: Any, name: str, marker: str) -> None:
    deploy_python(client, name, LEAVE_BEHIND, Environment={"Variables": {"TEARDOWN_MARKER": marker}})


def test_stopping_the_server_leaves_no_process_cgroup_veth_or_mount(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        client = server.client()
        name, marker = unique("teardown"), unique("teardown-marker")
        deploy_leaver(client, name, marker)
        answers: list[Any] = []
        threads = [
            threading.Thread(target=lambda: answers.append(invoke(client, name, {"sleep": 1})[1]))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

        assert len(set(answers)) == 2, answers  # two environments
        running = processes_with(marker)
        assert len(running) >= 4, running  # two runtimes and two background sleeps, seen from the host
        assert len(cgroup_dirs(name)) >= 2 * 3  # memory, cpu and pids for each sandbox
        veths = host_veth_peers(running)
        assert len(veths) == 2 and veths <= host_interface_indexes()
    finally:
        exit_code = server.stop(timeout=60)

    assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean shutdown
    assert processes_with(marker) == []
    assert cgroup_dirs(name) == []
    assert veths.isdisjoint(host_interface_indexes())
    assert host_mounts_under(tmp_path) == []


def test_an_idle_reaped_environment_leaves_nothing_behind(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--idle-timeout", "1")
    try:
        client = server.client()
        name, marker = unique("reaped"), unique("reaped-marker")
        deploy_leaver(client, name, marker)
        invoke(client, name, {})
        running = processes_with(marker)
        veths = host_veth_peers(running)
        assert running and cgroup_dirs(name) and veths

        eventually(lambda: health(server)["environments"] == 0, timeout=30)

        eventually(lambda: processes_with(marker) == [] and cgroup_dirs(name) == [], timeout=10)
        assert veths.isdisjoint(host_interface_indexes())
    finally:
        server.stop(timeout=60)
