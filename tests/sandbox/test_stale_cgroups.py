"""Cgroups and processes a dead server left behind are removed; a live sandbox's are not."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from lambdad.sandbox.cgroups import CONTROLLERS, kill_orphaned_sandboxes, remove_stale_cgroups

ROOT = Path("/sys/fs/cgroup")
pytestmark = pytest.mark.skipif(not (ROOT / "memory").is_dir(), reason="needs cgroup v1 controllers")


def test_only_empty_cgroups_older_than_the_threshold_are_removed() -> None:
    parent = f"lambdad-test-{uuid.uuid4().hex[:8]}"
    for controller in CONTROLLERS:
        (ROOT / controller / parent / "stale").mkdir(parents=True)
        (ROOT / controller / parent / "alive").mkdir()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (ROOT / "memory" / parent / "alive" / "cgroup.procs").write_text(str(sleeper.pid))
        assert remove_stale_cgroups(ROOT, parent, older_than_s=3600) == 0  # too young to judge
        removed = remove_stale_cgroups(ROOT, parent, older_than_s=0)
        assert not (ROOT / "memory" / parent / "stale").exists()
        assert (ROOT / "memory" / parent / "alive").exists(), "a cgroup with a process is kept"
        # "alive" holds a process only in memory: the empty pids/cpu twins count as stale too.
        assert removed == len(CONTROLLERS) + len(CONTROLLERS) - 1
    finally:
        sleeper.kill()
        sleeper.wait()
        for controller in CONTROLLERS:
            for name in ("alive", "stale"):
                leftover = ROOT / controller / parent / name
                if leftover.exists():
                    leftover.rmdir()
            (ROOT / controller / parent).rmdir()


def test_processes_whose_server_died_are_killed_and_live_ones_kept() -> None:
    parent = f"lambdad-test-{uuid.uuid4().hex[:8]}"
    pids = ROOT / "pids" / parent
    (pids / "orphaned").mkdir(parents=True)
    (pids / "alive").mkdir()
    # A process whose parent exited (reparented to init, as a dead server's sandbox), in "orphaned"...
    join = f"echo $$ > {pids / 'orphaned' / 'cgroup.procs'}"
    started = subprocess.run(
        ["sh", "-c", f"sh -c '{join}; exec sleep 30' </dev/null >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    )
    orphan = int(started.stdout)
    # ... and one whose parent (this test, as a live server) is alive, in "alive".
    child = subprocess.Popen(["sleep", "30"])
    try:
        (pids / "alive" / "cgroup.procs").write_text(str(child.pid))
        deadline = time.monotonic() + 5
        while str(orphan) not in (pids / "orphaned" / "cgroup.procs").read_text():
            assert time.monotonic() < deadline, "the orphan never joined its cgroup"
            time.sleep(0.01)
        assert kill_orphaned_sandboxes(ROOT, parent) == 1
        while (pids / "orphaned" / "cgroup.procs").read_text().strip():
            assert time.monotonic() < deadline, "the orphan outlived SIGKILL"
            time.sleep(0.01)
        assert child.poll() is None, "a process with a live parent is kept"
    finally:
        child.kill()
        child.wait()
        if os.path.exists(f"/proc/{orphan}"):
            os.kill(orphan, 9)
        time.sleep(0.05)
        for name in ("orphaned", "alive"):
            (pids / name).rmdir()
        pids.rmdir()
