"""Helpers for the sandbox tests: specs running the host's real Python, output, leftovers."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lambdad.sandbox import Mount, Sandbox, SandboxFactory, SandboxSpec, SandboxUnavailable
from lambdad.sandbox.namespaces import NamespaceSandboxFactory

#: The real interpreter (never a pyenv shim) and the installation it needs, mounted read-only
#: at its own path inside sandboxes.
PYTHON = os.path.realpath(sys.executable)
RUNTIME_DIR = Path(sys.base_prefix).resolve()
CGROUP_ROOT = Path("/sys/fs/cgroup")


def make_code_dir(path: Path) -> Path:
    """A function code directory as lambdad stores it: world-readable, owned by root."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    handler = path / "handler.py"
    handler.write_text("def handler(event, context):\n    return event\n")
    handler.chmod(0o644)
    return path


def py_spec(code: str, code_dir: Path, **overrides: Any) -> SandboxSpec:
    """A spec running ``python3 -I -S -c code`` with the runtime and code mounted."""
    fields: dict[str, Any] = {
        "argv": [PYTHON, "-I", "-S", "-c", code],
        "env": {"PATH": "/usr/bin:/bin", "FOO": "bar"},
        "mounts": [Mount(RUNTIME_DIR, str(RUNTIME_DIR)), Mount(code_dir, "/var/task")],
        # One full vCPU: Python starts in ~20 ms instead of ~300 ms at 128 MB.
        "memory_mb": 1769,
        "label": "test",
    }
    fields.update(overrides)
    return SandboxSpec(**fields)


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_line(fd: int, timeout: float = 10.0) -> str:
    """Read one line from a pipe (byte by byte: nothing after the newline is consumed)."""
    deadline = time.monotonic() + timeout
    data = b""
    os.set_blocking(fd, False)
    try:
        while not data.endswith(b"\n"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no line within {timeout}s; got {data!r}")
            try:
                byte = os.read(fd, 1)
            except BlockingIOError:
                time.sleep(0.005)
                continue
            if not byte:
                raise EOFError(f"EOF before a full line; got {data!r}")
            data += byte
    finally:
        os.set_blocking(fd, True)
    return data.decode().rstrip("\n")


@dataclass
class Result:
    status: int
    output: str
    sandbox: Sandbox


async def run(factory: SandboxFactory, spec: SandboxSpec, timeout: float = 30.0) -> Result:
    """Create a sandbox, collect its output and exit status, destroy it."""
    sandbox = await factory.create(spec)
    loop = asyncio.get_running_loop()
    reader = loop.run_in_executor(None, read_all, sandbox.output)
    try:
        status = await asyncio.wait_for(sandbox.wait(), timeout)
    finally:
        await sandbox.destroy()
        output = await asyncio.wait_for(reader, 10)
        os.close(sandbox.output)
    return Result(status, output.decode(errors="replace"), sandbox)


def leftovers(sandbox: Sandbox, netns_inode: int | None = None) -> list[str]:
    """Everything of ``sandbox`` still present on the host; [] when fully cleaned up."""
    found: list[str] = []
    for directory in CGROUP_ROOT.glob(f"*/lambdad*/{sandbox.id}"):
        found.append(f"cgroup {directory}")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if sandbox.id in (proc / "cgroup").read_text():
                found.append(f"process {proc.name}")
            if netns_inode is not None and os.stat(proc / "ns" / "net").st_ino == netns_inode:
                found.append(f"process {proc.name} in the sandbox's netns")
        except OSError:
            continue  # exited while we looked
    veth = getattr(sandbox, "veth", None)
    if veth and Path("/sys/class/net", veth).exists():
        found.append(f"veth {veth}")
    for line in Path("/proc/1/mountinfo").read_text().splitlines():
        if sandbox.id in line or "bubblewrap" in line:
            found.append(f"mount {line}")
    netns_dir = Path("/run/netns")
    if netns_dir.exists():
        found += [f"named netns {n.name}" for n in netns_dir.iterdir() if sandbox.id in n.name]
    return found


def host_address() -> str:
    """The host's primary (non-loopback) IPv4 address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it just picks a route
        return str(probe.getsockname()[0])


class TcpServer:
    """A host TCP server that answers every connection with b'host' (to detect reachability)."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = False
        import threading

        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            with conn:
                conn.sendall(b"host")

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def worker_number(worker_id: str) -> int:
    """0 for a run without xdist, 1, 2, ... for its workers: keeps each worker's bridge and subnet apart."""
    return 0 if worker_id == "master" else int(worker_id.removeprefix("gw")) + 1


def bridged_factory(worker_id: str, name: str, second_octet: int, **options: Any) -> NamespaceSandboxFactory:
    """A namespace sandbox factory on a bridge of this worker's own (``lbd<name><N>`` on
    ``10.<second_octet>.<N>.0/24``, cgroups under a parent of its own); the test is skipped where
    isolated sandboxes cannot run."""
    number = worker_number(worker_id)
    try:
        return NamespaceSandboxFactory(
            bridge=f"lbd{name}{number}",
            subnet=f"10.{second_octet}.{number}.0/24",
            cgroup_parent=f"lambdad-test-{name}{number}-{uuid.uuid4().hex[:6]}",
            **options,
        )
    except SandboxUnavailable as exc:
        pytest.skip(str(exc))
