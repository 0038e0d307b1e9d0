"""Each sandbox runs as a host uid of its own (993/990 inside), with its own keyrings and per-uid limits.

Against a shared uid (lambdad before), sandbox B read A's keys and A's exhausting its uid's inotify
instances and keys made B's inotify_init and add_key fail: these tests failed there.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lambdad.sandbox import SandboxUnavailable
from lambdad.sandbox.namespaces import NamespaceSandbox, NamespaceSandboxFactory
from lambdad.sandbox.userns import HostIds
from tests.e2e.invoke_support import eventually
from tests.sandbox.keyring_probe import PROBES
from tests.sandbox.support import CGROUP_ROOT, py_spec, read_line

pytestmark = pytest.mark.timeout(90)

REPORT_AND_WAIT = """
import json, sys, time
print(json.dumps(result), flush=True)
sys.stdin = None
time.sleep(60)
"""


def host_uid_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("Uid:\t")[1].split()[0])


async def start(
    factory: NamespaceSandboxFactory, code_dir: Path, body: str
) -> tuple[NamespaceSandbox, object]:
    """A sandbox running the probes, then ``body`` (which sets ``result``), reporting it and staying up."""
    sandbox = await factory.create(py_spec(PROBES + body + REPORT_AND_WAIT, code_dir))
    assert isinstance(sandbox, NamespaceSandbox)
    line = await asyncio.to_thread(read_line, sandbox.output, 20)
    return sandbox, json.loads(line)


async def stop(*sandboxes: NamespaceSandbox) -> None:
    for sandbox in sandboxes:
        await sandbox.destroy()
        os.close(sandbox.output)


def test_each_sandbox_has_its_own_host_uid_and_sees_993(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    body = (
        "st = os.stat('/var/task/handler.py'); cgroups = open('/proc/self/cgroup').read(); "
        "result = [os.getuid(), os.geteuid(), os.getgid(), cgroups, st.st_uid, st.st_gid]"
    )

    async def scenario() -> None:
        (a, seen_a), (b, seen_b) = await asyncio.gather(
            start(ns_factory, code_dir, body), start(ns_factory, code_dir, body)
        )
        try:
            for sandbox, seen in ((a, seen_a), (b, seen_b)):
                assert seen[:3] == [993, 993, 990]
                # The cgroup namespace is rooted at the sandbox's own cgroups: no host path, no name.
                assert {line.split(":", 2)[2] for line in seen[3].splitlines()} == {"/"}
                # Root-owned code reads as nobody's (65534): host root is not mapped in there (AWS
                # shows root; documented in README's differences).
                assert seen[4:] == [65534, 65534]
                assert sandbox.host_uid is not None
                # From the host: the function's processes run as that uid, not as 993.
                pids = (CGROUP_ROOT / "pids" / "lambdad" / sandbox.id / "cgroup.procs").read_text().split()
                assert sandbox.host_uid in {host_uid_of(int(p)) for p in pids}
            assert a.host_uid != b.host_uid
            assert 993 not in (a.host_uid, b.host_uid)
        finally:
            await stop(a, b)

    asyncio.run(scenario())


def test_a_sandbox_cannot_read_anothers_keys(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    async def scenario() -> None:
        add = "result = {ring: add_key('tenant-a-secret', ring) for ring in RINGS}"
        a, keys = await start(ns_factory, code_dir, add)
        try:
            assert isinstance(keys, dict) and all(isinstance(k, int) for k in keys.values()), keys
            probe = (
                f"result = [{{str(k): read_key(k) for k in {list(keys.values())!r}}}, "
                "{ring: search('tenant-a-secret', ring) for ring in RINGS}]"
            )
            b, (reads, searches) = await start(ns_factory, code_dir, probe)
            await stop(b)
        finally:
            await stop(a)
        assert "secret" not in reads.values(), reads
        assert set(searches.values()) <= {"ENOKEY", "EACCES"}, searches

    asyncio.run(scenario())


def test_exhausting_per_uid_limits_does_not_starve_other_sandboxes(
    ns_factory: NamespaceSandboxFactory, code_dir: Path
):
    async def scenario() -> None:
        a, used = await start(ns_factory, code_dir, "result = exhaust()")
        try:
            assert isinstance(used, dict)
            # A did run into its own uid's limits (so the attack was real)...
            assert used["inotify_error"] == "EMFILE" and used["key_error"] == "EDQUOT", used
            b, still = await start(ns_factory, code_dir, "result = can_still()")
            await stop(b)
        finally:
            await stop(a)
        # ...and B, another tenant, is not affected.
        assert still == {"inotify": "ok", "add_key": "ok"}

    asyncio.run(scenario())


def test_uids_return_to_the_pool_after_destroy(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    async def scenario() -> int:
        sandbox, _ = await start(ns_factory, code_dir, "result = 1")
        uid = sandbox.host_uid
        assert uid is not None and ns_factory._host_ids.pool.held_elsewhere(uid)
        await stop(sandbox)
        return uid

    uid = asyncio.run(scenario())
    pool = HostIds(Path("/run/lambdad")).pool
    assert not pool.held_elsewhere(uid)
    assert (pool.directory / str(uid)).read_text() == ""


SERVER = """
import asyncio, json, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from lambdad.sandbox.namespaces import NamespaceSandboxFactory
from tests.sandbox.support import py_spec, read_line

async def main():
    factory = NamespaceSandboxFactory(uid_first={first}, uid_count=1)
    code = "import time; print('up', flush=True); time.sleep(120)"
    sandbox = await factory.create(py_spec(code, Path({code_dir!r})))
    # Running (bwrap's init armed its death signal before the function ran): now it may be killed.
    read_line(sandbox.output)
    print(json.dumps([sandbox.host_uid, sandbox.id]), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


def test_a_sigkilled_servers_uids_are_reclaimed(code_dir: Path):
    # A range of one uid: the next factory can only work if the dead server's lease came back.
    first = 1_950_000_000 + random.randrange(1_000_000)
    root = str(Path(__file__).resolve().parents[2])
    script = SERVER.format(root=root, first=first, code_dir=str(code_dir))
    server = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        uid, sandbox_id = json.loads(server.stdout.readline())
        assert uid == first
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()

    def no_process_left() -> bool:
        return all(not p.name.isdigit() or _owner(p) != uid for p in Path("/proc").iterdir())

    eventually(no_process_left, timeout=20)
    # The dead server's sandbox left its (emptying) cgroups, as a SIGKILLed server does: tidy them.
    for directory in CGROUP_ROOT.glob(f"*/lambdad/{sandbox_id}"):
        eventually(lambda d=directory: not (d / "cgroup.procs").read_text().strip(), timeout=20)
        directory.rmdir()
    factory = NamespaceSandboxFactory(uid_first=first, uid_count=1)

    async def scenario() -> int | None:
        try:
            sandbox, _ = await start(factory, code_dir, "result = os.getuid()")
            uid_again = sandbox.host_uid
            await stop(sandbox)
            return uid_again
        finally:
            await factory.close()

    assert asyncio.run(scenario()) == first


def test_what_outlived_a_dead_server_is_killed_and_nothing_else(tmp_path: Path):
    # A sandbox made in the last milliseconds before its server's SIGKILL can outlive it (bubblewrap
    # arms its parent-death signal late). Its trace: a lease file naming a dead holder, and processes
    # still running as that uid. A live holder's processes are left alone.
    first = 1_960_000_000 + random.randrange(1_000_000)
    dead, live = first, first + 1
    root = str(Path(__file__).resolve().parents[2])
    holder = (
        f"import sys; sys.path.insert(0, {root!r}); from pathlib import Path; "
        f"from lambdad.sandbox.userns import HostIds; "
        f"HostIds(Path({str(tmp_path)!r}), {dead}, 1).acquire('doomed'); import os; os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", holder], check=True)
    held = HostIds(tmp_path, live, 1).acquire("alive")  # the range's other uid, held by this live process
    ids = HostIds(tmp_path, first, 2)
    orphan = subprocess.Popen(["sleep", "60"], user=dead, group=dead)
    tenant = subprocess.Popen(["sleep", "60"], user=live, group=live)
    try:
        assert ids.kill_orphans() == 1
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert tenant.poll() is None, "a live server's sandbox was killed"
        assert ids.kill_orphans() == 0
        # The dead holder's uid comes back once nothing runs as it.
        again = HostIds(tmp_path, dead, 1).acquire("heir")
        assert again.number == dead
        again.release()
    finally:
        for process in (orphan, tenant):
            process.kill()
            process.wait()
        held.release()


def _owner(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except FileNotFoundError:
        return None


def test_a_machine_that_refuses_user_namespaces_is_told_at_start(monkeypatch: pytest.MonkeyPatch):
    # The kernel is the edge here: refusing user namespaces machine-wide would break other tests.
    def refused(*args: object) -> int:
        raise PermissionError(1, "cannot create a user namespace: Operation not permitted")

    monkeypatch.setattr("lambdad.sandbox.namespaces.user_namespace", refused)
    with pytest.raises(SandboxUnavailable, match="allow user namespaces"):
        NamespaceSandboxFactory()
