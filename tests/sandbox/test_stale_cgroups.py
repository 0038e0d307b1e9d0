"""Cgroups a dead server left behind are removed; a live sandbox's are not."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from lambdad.sandbox.cgroups import CONTROLLERS, remove_stale_cgroups

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
