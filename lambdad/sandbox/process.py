"""Unisolated sandboxes: plain child processes, for machines without namespaces or root.

Nothing is isolated: the process sees the host's whole filesystem and network, and neither
memory, CPU nor process limits are enforced. Mount targets cannot be applied either, so
paths inside ``workdir``, ``argv`` and ``env`` that fall under a mount's target are
rewritten to the mount's source (``/var/task/handler.py`` -> ``<code dir>/handler.py``).
When lambdad runs as root the process still drops to the spec's uid/gid.

It must be chosen explicitly (``create_factory("process")``) and logs a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

from lambdad.sandbox.api import Sandbox, SandboxError, SandboxSpec, SandboxUnavailable
from lambdad.sandbox.network import listen_tcp

__all__ = ["ProcessSandbox", "ProcessSandboxFactory", "host_path"]

log = logging.getLogger(__name__)


def host_path(spec: SandboxSpec, path: str) -> str:
    """Translate a sandbox path to the host path it would be mounted from (longest match wins)."""
    best: tuple[int, str] | None = None
    for mount in spec.mounts:
        target = mount.target.rstrip("/") or "/"
        if path == target or path.startswith(target.rstrip("/") + "/"):
            rest = path[len(target) :].lstrip("/")
            candidate = str(Path(mount.source, rest)) if rest else str(mount.source)
            if best is None or len(target) > best[0]:
                best = (len(target), candidate)
    return best[1] if best else path


def _translate_env_value(spec: SandboxSpec, value: str) -> str:
    # PATH-like lists (PATH, PYTHONPATH, LD_LIBRARY_PATH) point into /opt and /var/task.
    return ":".join(host_path(spec, part) if part.startswith("/") else part for part in value.split(":"))


class ProcessSandbox:
    """A plain child process in its own session."""

    def __init__(self, factory: ProcessSandboxFactory, spec: SandboxSpec) -> None:
        self._factory = factory
        self._spec = spec
        self._id = f"{spec.label}-{secrets.token_hex(6)}"
        self._popen: subprocess.Popen[bytes] | None = None
        self._output = -1
        self._socket: socket.socket | None = None
        self._address: str | None = None
        self._exit: asyncio.Future[int] | None = None
        self._maxrss_kb = 0
        self._lock = asyncio.Lock()
        self._destroyed = False

    @property
    def id(self) -> str:
        return self._id

    @property
    def spec(self) -> SandboxSpec:
        return self._spec

    @property
    def pid(self) -> int:
        return self._popen.pid if self._popen else 0

    @property
    def output(self) -> int:
        return self._output

    @property
    def runtime_api_socket(self) -> socket.socket | None:
        return self._socket

    @property
    def runtime_api_address(self) -> str | None:
        return self._address

    def _start(self) -> None:
        spec = self._spec
        env = {name: _translate_env_value(spec, value) for name, value in spec.env.items()}
        if spec.runtime_api_port is not None:
            # No network namespace: the Runtime API goes on a free host loopback port.
            self._socket = listen_tcp("127.0.0.1", 0)
            self._address = f"127.0.0.1:{self._socket.getsockname()[1]}"
            env["AWS_LAMBDA_RUNTIME_API"] = self._address
        argv = [host_path(spec, arg) if arg.startswith("/") else arg for arg in spec.argv]
        credentials: dict[str, Any] = {}
        if os.geteuid() == 0 and self._factory.drop_privileges:
            credentials = {"user": spec.uid, "group": spec.gid, "extra_groups": []}
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        try:
            self._popen = subprocess.Popen(
                argv,
                cwd=host_path(spec, spec.workdir),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                start_new_session=True,
                **credentials,
            )
        except BaseException:
            os.close(out_r)
            if self._socket is not None:
                self._socket.close()
            raise
        finally:
            os.close(out_w)
        self._output = out_r
        self._watch_exit(self._popen.pid)

    def _watch_exit(self, pid: int) -> None:
        loop = asyncio.get_running_loop()
        self._exit = loop.create_future()
        pidfd = os.pidfd_open(pid)

        def exited() -> None:
            # wait4 rather than Popen.poll: it also reports the peak RSS.
            reaped, status, rusage = os.wait4(pid, os.WNOHANG)
            if reaped == 0:
                return
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self._maxrss_kb = rusage.ru_maxrss
            code = os.waitstatus_to_exitcode(status)
            if self._popen is not None:
                self._popen.returncode = code
            if self._exit is not None and not self._exit.done():
                self._exit.set_result(code)

        loop.add_reader(pidfd, exited)

    async def wait(self) -> int:
        assert self._exit is not None
        return await asyncio.shield(self._exit)

    def memory_peak_bytes(self) -> int:
        if self._exit is not None and self._exit.done():
            return self._maxrss_kb * 1024
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return self._maxrss_kb * 1024

    def end_cpu_boost(self) -> None:
        """Nothing to do: the process implementation limits no CPU."""

    def oom_killed(self) -> bool:
        # No memory limit is enforced, so nothing is ever killed for exceeding it.
        return False

    async def destroy(self) -> None:
        async with self._lock:
            if self._destroyed:
                return
            self._destroyed = True
            self._factory._live.discard(self)
            if self._popen is not None:
                # The whole session: the child and whatever it started (unless they setsid'd).
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self._popen.pid, signal.SIGKILL)
                if self._exit is not None:
                    try:
                        await asyncio.wait_for(asyncio.shield(self._exit), 5)
                    except TimeoutError as exc:
                        raise SandboxError(f"process sandbox {self._id} did not exit") from exc
            if self._socket is not None:
                self._socket.close()


class ProcessSandboxFactory:
    """Runs each "sandbox" as a plain child process. NOT isolated; see the module docstring."""

    name = "process"
    isolated = False

    def __init__(self, *, drop_privileges: bool = True) -> None:
        self.drop_privileges = drop_privileges
        self._live: set[ProcessSandbox] = set()
        self._closed = False
        self._warned_egress = False
        log.warning(
            "using the 'process' sandbox implementation: functions run UNISOLATED, with the "
            "host's files and network and no memory, CPU or process limits"
        )

    async def create(self, spec: SandboxSpec) -> Sandbox:
        if self._closed:
            raise SandboxError("sandbox factory is closed")
        if spec.code_slot is not None:
            raise SandboxUnavailable("the process sandbox cannot attach code after start (code_slot)")
        if spec.egress is not None and not self._warned_egress:
            # The operator chose a sandbox that isolates nothing: said once, not refused.
            log.warning("the process sandbox cannot enforce egress policies (security groups): not enforced")
            self._warned_egress = True
        sandbox = ProcessSandbox(self, spec)
        try:
            sandbox._start()
        except OSError as exc:
            raise SandboxError(f"cannot start {spec.argv[0]!r}: {exc}") from exc
        self._live.add(sandbox)
        return sandbox

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(s.destroy() for s in list(self._live)), return_exceptions=True)
