"""The isolated (bubblewrap + cgroup v1) sandbox, proven with real processes."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import pytest

from lambdad.sandbox import Mount, NetworkMode, SandboxError, cpu_quota_us
from lambdad.sandbox.namespaces import NamespaceSandbox, NamespaceSandboxFactory
from tests.sandbox.support import CGROUP_ROOT, leftovers, py_spec, read_line, run

pytestmark = pytest.mark.timeout(60)


def test_process_runs_with_the_given_argv_env_and_workdir(
    ns_factory: NamespaceSandboxFactory, code_dir: Path
):
    code = "import os, sys, json; print(json.dumps([sys.argv, dict(os.environ), os.getcwd()]))"
    spec = py_spec(code, code_dir, workdir="/var/task", env={"PATH": "/usr/bin", "FOO": "bar"})
    spec.argv.extend(["one", "two words"])
    result = asyncio.run(run(ns_factory, spec))
    assert result.status == 0, result.output
    argv, env, cwd = json.loads(result.output)
    assert argv == ["-c", "one", "two words"]
    assert env["FOO"] == "bar" and env["PATH"] == "/usr/bin"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    # Nothing of the host's (root's) environment leaks in.
    assert not {"HOME", "USER", "PYTEST_CURRENT_TEST", "VIRTUAL_ENV"} & set(env)
    assert cwd == "/var/task"


def test_code_is_readable_at_var_task_but_read_only(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    # World-writable on the host, so only the read-only mount can stop the writes (EROFS).
    code_dir.chmod(0o777)
    (code_dir / "handler.py").chmod(0o666)
    code = """
import errno
print(open('/var/task/handler.py').read().splitlines()[0])
for path in ('/var/task/handler.py', '/var/task/new.py'):
    try:
        open(path, 'a').write('x')
        print('WROTE', path)
    except OSError as exc:
        print(errno.errorcode[exc.errno], path)
"""
    result = asyncio.run(run(ns_factory, py_spec(code, code_dir)))
    assert result.status == 0, result.output
    assert result.output.splitlines() == [
        "def handler(event, context):",
        "EROFS /var/task/handler.py",
        "EROFS /var/task/new.py",
    ]
    assert (code_dir / "handler.py").read_text().endswith("return event\n")


def test_host_files_are_not_visible(ns_factory: NamespaceSandboxFactory, code_dir: Path, tmp_path: Path):
    secrets = [
        Path(f"/root/.lambdad-sandbox-test-{uuid.uuid4().hex}"),
        Path(f"/work/.sandbox-{uuid.uuid4().hex}"),
    ]
    host_tmp = tmp_path / "host-tmp-secret"
    try:
        for path in [*secrets, host_tmp]:
            path.write_text("secret")
        probes = [str(p) for p in secrets] + [str(host_tmp), "/etc/shadow", "/etc/gshadow", "/home", "/work"]
        code = f"""
import os, json
found = {{p: os.path.exists(p) for p in {probes!r}}}
print(json.dumps([found, sorted(os.listdir('/root')), sorted(os.listdir('/tmp'))]))
"""
        result = asyncio.run(run(ns_factory, py_spec(code, code_dir)))
    finally:
        for path in secrets:
            path.unlink(missing_ok=True)
    assert result.status == 0, result.output
    found, root_entries, tmp_entries = json.loads(result.output)
    assert not any(found.values()), found
    # /root only holds the path to the runtime that the spec mounted; /tmp is the sandbox's own.
    assert root_entries == [".pyenv"]
    assert tmp_entries == []


def test_tmp_is_writable_and_capped_at_tmp_mb(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    code = """
import errno
written = 0
try:
    with open('/tmp/fill', 'wb') as f:
        for _ in range(64):
            f.write(b'x' * 1048576)
            f.flush()
            written += 1
except OSError as exc:
    print('error', errno.errorcode[exc.errno])
print('written_mb', written)
"""
    result = asyncio.run(run(ns_factory, py_spec(code, code_dir, tmp_mb=8)))
    assert result.status == 0, result.output
    assert "error ENOSPC" in result.output
    written = int(result.output.split("written_mb")[1])
    assert 6 <= written <= 8


def test_exceeding_memory_limit_gets_the_process_oom_killed(
    ns_factory: NamespaceSandboxFactory, code_dir: Path
):
    code = "chunks = []\nfor _ in range(40):\n    chunks.append(b'x' * (8 << 20))\nprint('survived')"
    result = asyncio.run(run(ns_factory, py_spec(code, code_dir, memory_mb=64)))
    assert result.status == -9, result.output
    assert "survived" not in result.output
    assert result.sandbox.oom_killed()
    peak = result.sandbox.memory_peak_bytes()
    assert 48 << 20 <= peak <= 64 << 20


def test_memory_peak_reflects_usage_within_the_limit(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    code = "data = b'x' * (100 << 20)\nprint(len(data))"
    result = asyncio.run(run(ns_factory, py_spec(code, code_dir, memory_mb=256)))
    assert result.status == 0, result.output
    assert not result.sandbox.oom_killed()
    assert 100 << 20 <= result.sandbox.memory_peak_bytes() < 256 << 20


def test_pids_limit_stops_a_fork_bomb(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    # Bounded: at most 64 forks, each child just sleeps until killed.
    code = """
import os, time, errno
children = []
failure = None
for _ in range(64):
    try:
        pid = os.fork()
    except OSError as exc:
        failure = errno.errorcode[exc.errno]
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children.append(pid)
print(len(children), failure)
for pid in children:
    os.kill(pid, 9)
"""
    result = asyncio.run(run(ns_factory, py_spec(code, code_dir, pids_max=16)))
    assert result.status == 0, result.output
    count, failure = result.output.split()
    # pids_max counts every task in the sandbox: bwrap's init and the Python process too.
    assert int(count) <= 14
    assert failure == "EAGAIN"


def test_process_runs_as_uid_993_without_capabilities(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    code = """
import os, json
status = dict(line.split(':\\t') for line in open('/proc/self/status').read().splitlines() if ':\\t' in line)
caps = {k: status[k] for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')}
print(json.dumps([os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), caps, status['NoNewPrivs'],
                  os.path.exists('/etc/passwd') and open('/etc/passwd').read().count('993')]), flush=True)
import time; time.sleep(30)
"""

    async def scenario() -> None:
        sandbox = await ns_factory.create(py_spec(code, code_dir))
        try:
            uid, euid, gid, groups, caps, nnp, passwd = json.loads(read_line(sandbox.output))
            assert (uid, euid, gid, groups) == (993, 993, 990, [])
            assert set(caps.values()) == {"0000000000000000"}
            assert nnp == "1" and passwd == 1
            # The host's view: every process in the sandbox's cgroup, except bubblewrap (its
            # monitor and tiny init, which hold no capabilities), runs as the sandbox's own host
            # uid, which is 993 only inside its user namespace.
            assert isinstance(sandbox, NamespaceSandbox)
            assert sandbox.host_uid is not None and sandbox.host_uid >= 1_000_000
            pids = (CGROUP_ROOT / "pids" / "lambdad" / sandbox.id / "cgroup.procs").read_text().split()
            owners: dict[str, set[str]] = {}
            for pid in pids:
                status = Path(f"/proc/{pid}/status").read_text()
                name = status.splitlines()[0].split()[1]
                owners.setdefault(name, set()).add(status.split("Uid:\t")[1].split()[0])
            assert owners.pop("bwrap") == {"0"}
            assert owners and set().union(*owners.values()) == {str(sandbox.host_uid)}
        finally:
            await sandbox.destroy()
            os.close(sandbox.output)

    asyncio.run(scenario())


def test_pid_namespace_hides_host_processes(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    code = "import os; print(os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"
    result = asyncio.run(run(ns_factory, py_spec(code, code_dir)))
    assert result.status == 0, result.output
    own_pid, visible = result.output.split(" ", 1)
    assert int(own_pid) == 2  # bubblewrap's reaper is 1
    assert json.loads(visible) == [1, 2]
    assert os.getpid() not in json.loads(visible) or os.getpid() in (1, 2)


def test_exit_status_and_signals_are_reported(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    exited = asyncio.run(run(ns_factory, py_spec("raise SystemExit(3)", code_dir)))
    killed = asyncio.run(run(ns_factory, py_spec("import os; os.kill(os.getpid(), 15)", code_dir)))
    missing = asyncio.run(run(ns_factory, py_spec("", code_dir, argv=["/var/task/no-such-bootstrap"])))
    assert exited.status == 3
    assert killed.status == -15
    assert missing.status != 0 and "no-such-bootstrap" in missing.output


def test_cpu_quota_is_proportional_to_memory(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    async def scenario() -> None:
        sandbox = await ns_factory.create(py_spec("import time; time.sleep(30)", code_dir, memory_mb=512))
        try:
            cpu = CGROUP_ROOT / "cpu" / "lambdad" / sandbox.id
            period = int((cpu / "cpu.cfs_period_us").read_text())
            quota = int((cpu / "cpu.cfs_quota_us").read_text())
            assert quota == cpu_quota_us(512, period)
            assert abs(quota / period - 512 / 1769) < 0.01
            memory = CGROUP_ROOT / "memory" / "lambdad" / sandbox.id
            assert int((memory / "memory.limit_in_bytes").read_text()) == 512 << 20
            assert int((memory / "memory.memsw.limit_in_bytes").read_text()) == 512 << 20
        finally:
            await sandbox.destroy()
            os.close(sandbox.output)

    asyncio.run(scenario())


def test_destroy_leaves_no_process_cgroup_mount_netns_or_veth(
    ns_factory: NamespaceSandboxFactory, code_dir: Path
):
    # A runtime that daemonises a grandchild in its own session, then blocks.
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(120)
    os._exit(0)
print('ready', flush=True)
time.sleep(120)
"""

    async def scenario() -> None:
        sandbox = await ns_factory.create(py_spec(code, code_dir, network=NetworkMode.DEFAULT))
        assert isinstance(sandbox, NamespaceSandbox)
        try:
            assert read_line(sandbox.output) == "ready"
            netns = os.stat(f"/proc/{sandbox.pid}/ns/net").st_ino
            assert netns != os.stat("/proc/self/ns/net").st_ino
            assert sandbox.veth and Path("/sys/class/net", sandbox.veth).exists()
            assert (
                len((CGROUP_ROOT / "pids" / "lambdad" / sandbox.id / "cgroup.procs").read_text().split()) >= 3
            )
        finally:
            await sandbox.destroy()
            os.close(sandbox.output)
        assert leftovers(sandbox, netns) == []
        assert await sandbox.wait() == -9
        await sandbox.destroy()  # idempotent
        assert sandbox.memory_peak_bytes() > 0  # still answers after destroy

    asyncio.run(scenario())


def test_failed_create_reports_bubblewraps_error_and_cleans_up(
    ns_factory: NamespaceSandboxFactory, code_dir: Path
):
    label = f"broken{uuid.uuid4().hex[:8]}"
    spec = py_spec(
        "pass", code_dir, label=label, mounts=[Mount(Path("/nonexistent/lambdad/code"), "/var/task")]
    )
    with pytest.raises(SandboxError, match="/nonexistent/lambdad/code"):
        asyncio.run(ns_factory.create(spec))
    assert list(CGROUP_ROOT.glob(f"*/lambdad/{label}-*")) == []


def test_cpu_boost_lifts_the_quota_until_it_ends(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    async def scenario() -> tuple[str, str]:
        spec = py_spec("import time; time.sleep(5)", code_dir, memory_mb=128, cpu_boost=True)
        sandbox = await ns_factory.create(spec)
        try:
            assert isinstance(sandbox, NamespaceSandbox)
            quota = next(d for d in sandbox.cgroup_dirs() if d.parts[-3] == "cpu") / "cpu.cfs_quota_us"
            during = quota.read_text().strip()
            sandbox.end_cpu_boost()
            return during, quota.read_text().strip()
        finally:
            await sandbox.destroy()

    during, after = asyncio.run(scenario())
    assert during == "-1"
    assert int(after) == cpu_quota_us(128, 20_000)
