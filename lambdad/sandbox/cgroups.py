"""cgroup v1 limits for sandboxes: memory (no swap, OOM kill), CPU (AWS-proportional), pids.

Each sandbox gets ``/sys/fs/cgroup/<controller>/<parent>/<sandbox-id>`` for the memory, cpu
and pids controllers. Only cgroup v1 is implemented because that is what the target
machines mount (the v2 hierarchy there has no controllers enabled).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lambdad.sandbox.api import MB, SandboxSpec, SandboxUnavailable, cpu_quota_us

__all__ = [
    "CONTROLLERS",
    "CgroupStats",
    "SandboxCgroups",
    "check_cgroups_v1",
    "kill_orphaned_sandboxes",
    "remove_stale_cgroups",
]

log = logging.getLogger(__name__)

CONTROLLERS = ("memory", "cpu", "pids")


def check_cgroups_v1(root: Path) -> None:
    """Raise :class:`SandboxUnavailable` unless the v1 controllers we need are writable."""
    for controller in CONTROLLERS:
        directory = root / controller
        if not (directory / "cgroup.procs").exists():
            raise SandboxUnavailable(
                f"cgroup v1 controller {controller!r} is not mounted at {directory}; mount it "
                "(mount -t cgroup -o {controller} cgroup {directory}) or use the unisolated "
                "'process' sandbox implementation"
            )
        if not os.access(directory, os.W_OK):
            raise SandboxUnavailable(
                f"{directory} is not writable: run lambdad as root to use isolated sandboxes, "
                "or use the unisolated 'process' sandbox implementation"
            )


@dataclass(frozen=True)
class CgroupStats:
    """Memory accounting read from the memory controller."""

    memory_peak_bytes: int
    oom_kills: int
    failcnt: int


class SandboxCgroups:
    """The three cgroups of one sandbox.

    Directories are created with limits before any process joins, so a process is never
    briefly unlimited; ``remove()`` kills stragglers and deletes the directories.
    """

    def __init__(self, root: Path, parent: str, sandbox_id: str, cpu_period_us: int | None) -> None:
        self.dirs = {c: root / c / parent / sandbox_id for c in CONTROLLERS}
        self._root = root
        self._parents = [root / c / parent for c in CONTROLLERS]
        self._cpu_period_us = cpu_period_us
        self._final: CgroupStats | None = None
        self._peak_fd: int | None = None

    def create(self, spec: SandboxSpec) -> None:
        """Make the directories and write the limits derived from ``spec``."""
        for controller, directory in self.dirs.items():
            # The parent directory is shared with other factories (maybe in other processes)
            # which remove it when they close and it is empty: retry if it vanishes under us.
            for _ in range(5):
                try:
                    directory.parent.mkdir(exist_ok=True)
                    directory.mkdir()
                    break
                except FileNotFoundError:
                    continue
            else:
                raise OSError(errno.ENOENT, f"cannot create cgroup {directory}")
            if controller == "memory":
                limit = str(spec.memory_mb * MB)
                self._write(directory / "memory.limit_in_bytes", limit)
                # memsw (memory+swap) equal to the limit: the function may never swap.
                memsw = directory / "memory.memsw.limit_in_bytes"
                if memsw.exists():
                    self._write(memsw, limit)
                self._write(directory / "memory.swappiness", "0")
            elif controller == "cpu" and self._cpu_period_us is not None:
                # No quota yet: the thread that spawns the sandbox passes through this cgroup
                # (``entered``) and must not be throttled; ``limit_cpu`` applies it after.
                self._write(directory / "cpu.cfs_period_us", str(self._cpu_period_us))
                self._write(directory / "cpu.cfs_quota_us", "-1")
            elif controller == "pids":
                self._write(directory / "pids.max", str(spec.pids_max))

    def set_memory(self, memory_mb: int) -> None:
        """Change the memory limit (memory+swap equal to it) of a running sandbox.

        The kernel keeps ``memsw >= limit`` at every step: lowering writes the limit first, raising
        writes memsw first.
        """
        directory = self.dirs["memory"]
        limit = str(memory_mb * MB)
        memsw = directory / "memory.memsw.limit_in_bytes"
        current = int((directory / "memory.limit_in_bytes").read_text())
        order = [directory / "memory.limit_in_bytes", memsw]
        if memory_mb * MB > current:
            order.reverse()
        for path in order:
            if path is not memsw or memsw.exists():
                self._write(path, limit)

    def rename(self, sandbox_id: str) -> None:
        """Rename the sandbox's cgroups (cgroup v1 allows renames within a parent; members stay)."""
        for controller, directory in self.dirs.items():
            target = directory.parent / sandbox_id
            directory.rename(target)
            self.dirs[controller] = target

    def limit_cpu(self, memory_mb: int) -> None:
        """Apply the CPU quota proportional to ``memory_mb`` (after a boosted start)."""
        if self._cpu_period_us is not None:
            quota = cpu_quota_us(memory_mb, self._cpu_period_us)
            self._write(self.dirs["cpu"] / "cpu.cfs_quota_us", str(quota))

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the block with the calling *thread* in these cgroups (v1 moves single threads).

        Processes it forks are born inside: a cgroup namespace they create is rooted here, and they
        are never briefly outside the limits. The thread goes back where it was afterwards.
        """
        # "0" is the writing thread itself: the kernel then skips the machine-wide threadgroup lock
        # (an RCU grace period, ~2 ms per write) that a pid written out takes.
        tid = "0"
        home: dict[str, str] = {}
        for line in Path("/proc/thread-self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                home[controller] = path
        moved: list[str] = []
        try:
            for controller, directory in self.dirs.items():
                self._write(directory / "tasks", tid)
                moved.append(controller)
            yield
        finally:
            for controller in moved:
                back = self._root / controller / home[controller].lstrip("/")
                self._write(back / "tasks", tid)

    def memory_peak_bytes(self) -> int:
        """``memory.max_usage_in_bytes``, read through a file kept open: this runs on every invocation."""
        if self._final is not None:
            return self._final.memory_peak_bytes
        try:
            if self._peak_fd is None:
                self._peak_fd = os.open(self.dirs["memory"] / "memory.max_usage_in_bytes", os.O_RDONLY)
            return int(os.pread(self._peak_fd, 32, 0))
        except (FileNotFoundError, ValueError):
            return 0

    def stats(self) -> CgroupStats:
        """Current memory accounting, or the last values read before ``remove()``."""
        if self._final is not None:
            return self._final
        memory = self.dirs["memory"]
        try:
            peak = int((memory / "memory.max_usage_in_bytes").read_text())
            failcnt = int((memory / "memory.failcnt").read_text())
            oom_kills = 0
            for line in (memory / "memory.oom_control").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    oom_kills = int(value)
        except FileNotFoundError:
            return CgroupStats(0, 0, 0)
        return CgroupStats(peak, oom_kills, failcnt)

    def pids(self) -> list[int]:
        """Processes still in the sandbox (read from the pids controller)."""
        try:
            text = (self.dirs["pids"] / "cgroup.procs").read_text()
        except FileNotFoundError:
            return []
        return [int(p) for p in text.split()]

    def remove(self, timeout: float = 5.0) -> None:
        """Kill any process left, then delete the cgroups. Idempotent.

        Processes are normally already dead (the PID namespace died with its init); the kill
        loop only catches a process that somehow outlived it.
        """
        if self._final is None:
            self._final = self.stats()
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
        deadline = time.monotonic() + timeout
        for directory in self.dirs.values():
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    self._kill_members(directory)
                    time.sleep(0.001)

    def remove_parents(self) -> None:
        """Delete the shared parent directories if no other sandbox uses them."""
        for parent in self._parents:
            try:
                parent.rmdir()
            except OSError as exc:
                # EBUSY/ENOTEMPTY: another factory (maybe another process) still has sandboxes.
                if exc.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
                    raise

    @staticmethod
    def _kill_members(directory: Path) -> None:
        try:
            members = (directory / "cgroup.procs").read_text().split()
        except FileNotFoundError:
            return
        for pid in members:
            # Last-resort sweep (the PID namespace normally died with its init already); the
            # window between reading a pid and killing it is tiny.
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)

    @staticmethod
    def _write(path: Path, value: str) -> None:
        # One write() per value: cgroup files reject values split over several writes.
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)


def remove_stale_cgroups(root: Path, parent: str, older_than_s: float = 60.0) -> int:
    """Delete sandbox cgroups a dead server left (a SIGKILLed server's sandboxes die with it, their
    directories do not): empty ones, untouched for ``older_than_s``. A live sandbox's cgroups hold its
    processes from the first milliseconds on, so age and emptiness together single out the leftovers.
    Returns how many directories were removed."""
    removed = 0
    now = time.time()
    for controller in CONTROLLERS:
        base = root / controller / parent
        if not base.is_dir():
            continue
        for directory in base.iterdir():
            if not directory.is_dir():
                continue
            try:
                if (directory / "cgroup.procs").read_text().strip():
                    continue
                if now - directory.stat().st_mtime < older_than_s:
                    continue
                directory.rmdir()
                removed += 1
            except OSError:
                continue  # gone meanwhile, or busy: not ours to judge
    return removed


def kill_orphaned_sandboxes(root: Path, parent: str) -> int:
    """SIGKILL what SIGKILLed servers left running in sandbox cgroups; returns how many processes.

    A sandbox's inner bubblewrap (pid 1 of its PID namespace, root in its user namespace, so not caught
    by the sweep of dead servers' uids) can outlive its server, reparented to init and holding its
    cgroups. In a live sandbox that process's parent is the outer bubblewrap, a child of its server; every
    other sandbox process has a parent inside the sandbox. So a process of a sandbox cgroup whose parent is
    init belongs to no server, whichever server on this machine made it. Killing pid 1 of a PID namespace
    kills the rest of it; the emptied cgroups go with the next sweep of stale ones.
    """
    killed = 0
    base = root / "pids" / parent
    if not base.is_dir():
        return 0
    for procs in base.glob("*/cgroup.procs"):
        try:
            pids = procs.read_text().split()
        except OSError:
            continue  # removed meanwhile
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue  # exited meanwhile
            if "\nPPid:\t1\n" in status:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
                    killed += 1
    return killed
