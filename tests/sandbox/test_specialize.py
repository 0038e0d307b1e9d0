"""Spare sandboxes: started with an empty code slot, given a function's code and limits while running.

The code appears read-only at the slot inside the running sandbox (mount propagation), the memory limit
and the cgroup names become the function's, and nothing (mount, slot directory, cgroup) is left after
destroy() and the factory's close()."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from lambdad.sandbox import MB, Mount, SandboxError, SandboxUnavailable, create_factory
from lambdad.sandbox.namespaces import NamespaceSandboxFactory
from tests.sandbox.support import RUNTIME_DIR, leftovers, make_code_dir, py_spec, read_line

WAIT_FOR_CODE = """
import errno, os, time
print("before:", sorted(os.listdir("/var/task")), flush=True)
deadline = time.time() + 10
while not os.path.exists("/var/task/handler.py") and time.time() < deadline:
    time.sleep(0.005)
print("after:", sorted(os.listdir("/var/task")), flush=True)
try:
    open("/var/task/written", "w")
    print("write: ok", flush=True)
except OSError as e:
    print("write:", errno.errorcode[e.errno], flush=True)
time.sleep(60)
"""


def mounted(path: Path) -> bool:
    return any(f" {path} " in line for line in Path("/proc/self/mountinfo").read_text().splitlines())


def test_specialize_attaches_code_read_only_sets_limits_and_leaves_nothing(tmp_path: Path) -> None:
    try:
        factory = NamespaceSandboxFactory(state_dir=tmp_path / "state")
    except SandboxUnavailable as exc:
        pytest.skip(f"isolated sandboxes are unavailable here: {exc}")
    code_dir = make_code_dir(tmp_path / "code")

    async def scenario() -> None:
        spec = py_spec(
            WAIT_FOR_CODE,
            code_dir,
            mounts=[Mount(RUNTIME_DIR, str(RUNTIME_DIR))],
            code_slot="/var/task",
            memory_mb=4096,
            label="spare-test",
        )
        sandbox = await factory.create(spec)
        try:
            assert await asyncio.to_thread(read_line, sandbox.output) == "before: []"
            slot = sandbox.code_slot_source
            assert slot is not None and slot.is_dir() and not mounted(slot)
            await sandbox.specialize(code_dir, 256, label="fn-special")
            assert await asyncio.to_thread(read_line, sandbox.output) == "after: ['handler.py']"
            assert await asyncio.to_thread(read_line, sandbox.output) == "write: EROFS"
            assert mounted(slot)
            assert sandbox.id.startswith("fn-special-")
            dirs = sandbox.cgroup_dirs()
            assert len(dirs) == 3 and all(d.name == sandbox.id and d.is_dir() for d in dirs)
            memory = next(d for d in dirs if d.parts[-3] == "memory")
            assert int((memory / "memory.limit_in_bytes").read_text()) == 256 * MB
            memsw = memory / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                assert int(memsw.read_text()) == 256 * MB
            assert sandbox.spec.memory_mb == 256
            with pytest.raises(SandboxError):
                await sandbox.specialize(code_dir, 128)  # once only
        finally:
            await sandbox.destroy()
            os.close(sandbox.output)
        assert leftovers(sandbox) == []
        assert not any(d.exists() for d in dirs)
        assert not mounted(slot) and not slot.exists()
        slots_dir = slot.parent
        assert mounted(slots_dir)  # the factory's shared mount, until close
        await factory.close()
        assert not mounted(slots_dir) and not slots_dir.exists()

    async def closing() -> None:
        try:
            await scenario()
        finally:
            await factory.close()  # idempotent: also when the scenario failed half-way

    asyncio.run(closing())


def test_factories_that_cannot_attach_code_later_refuse_a_code_slot(tmp_path: Path) -> None:
    code_dir = make_code_dir(tmp_path / "code")
    factory = create_factory("process")
    assert not getattr(factory, "specializable", False)

    async def scenario() -> None:
        with pytest.raises(SandboxUnavailable):
            await factory.create(py_spec("pass", code_dir, code_slot="/var/task"))
        await factory.close()

    asyncio.run(scenario())


def test_a_code_slot_must_be_an_absolute_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="code_slot"):
        py_spec("pass", tmp_path, code_slot="var/task")
    with pytest.raises(ValueError, match="code_slot"):
        py_spec("pass", tmp_path, code_slot="/var/../etc")


def test_slot_mounts_left_by_a_dead_server_are_removed(tmp_path: Path) -> None:
    from lambdad.sandbox import owners
    from lambdad.sandbox.mounts import attach_read_only, make_shared_dir, remove_stale_slots

    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    dead = next(p for p in range(pid_max - 1, 0, -1) if not Path(f"/proc/{p}").exists())
    root = tmp_path / "slots"
    stale = root / f"{dead}-0123abcd"
    stale.parent.mkdir()
    make_shared_dir(stale)
    slot = stale / "sandbox"
    slot.mkdir()
    code = tmp_path / "code"
    code.mkdir()
    attach_read_only(code, slot)
    live = root / f"{os.getpid()}-89abcdef"
    live.mkdir()
    current = root / f"{owners.me()}-76543210"
    current.mkdir()
    # A dead server's pid now used by another process: the start time tells them apart.
    reused = root / f"{os.getpid()}.1-fedcba98"
    (reused / "sandbox").mkdir(parents=True)
    try:
        assert remove_stale_slots(root) == 2
        assert not stale.exists() and not reused.exists()
        assert live.exists() and current.exists(), "a running server's slots are left alone"
        assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()
    finally:
        for leftover in (slot, stale):
            subprocess.run(["umount", "-l", str(leftover)], capture_output=True)
