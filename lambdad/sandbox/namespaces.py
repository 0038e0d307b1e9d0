"""The isolated sandbox: bubblewrap namespaces + cgroup v1 limits + a host uid of its own + seccomp.

How one sandbox starts (``NamespaceSandboxFactory.create``):

1. cgroups are created with their limits (memory, pids; the CPU quota once bwrap is spawned)
   before any process exists; a host uid is leased for the sandbox (:mod:`.userns`) and a user
   namespace made in which that uid is 993 (gid 990) and nothing else is mapped;
2. ``bwrap`` (run as root) is forked from a thread that stands in the sandbox's cgroups, with a
   fresh session keyring; it creates the mount, PID, IPC, UTS, cgroup and (unless
   ``NetworkMode.HOST``) network namespaces, all owned by the host's user namespace, builds a
   fresh root from read-only host system directories plus the spec's mounts (as root: sources
   under private directories work), enters the sandbox's user namespace (``--userns2``), then
   stops on ``--block-fd``;
3. meanwhile the host, from a thread that ``setns()``-es into the sandbox's network namespace,
   creates the Runtime API listening socket there and, for ``DEFAULT``, wires an ``eth0`` to
   the NATed host bridge;
4. the host unblocks bwrap, which loads the seccomp filter (:mod:`.seccomp`) and execs
   ``setpriv`` to become 993/990 with no capabilities, which execs the runtime.

Why a user namespace per sandbox: a uid shared by all sandboxes shares the kernel keyrings and
the per-uid limits (inotify instances, keys) between tenants. Host root is not mapped in it, so
root-owned files (the function's code, the runtimes) read as owned by ``nobody`` inside (AWS
shows root), and are as unwritable as before. Why bwrap rather than our own clone()/unshare():
it was measured faster (~4-6 ms vs ~7-9 ms from a warm Python zygote) and is a small, audited C
program.

Exit statuses: bubblewrap reports a signal death as ``128 + signal`` (like a shell); we map
129..192 back to ``-signal``, so a program that deliberately exits 137 reads as SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lambdad.sandbox import owners
from lambdad.sandbox.api import (
    EgressRule,
    Mount,
    NetworkMode,
    Sandbox,
    SandboxError,
    SandboxSpec,
    SandboxUnavailable,
)
from lambdad.sandbox.bwrap import (
    ETC_ENTRIES,
    HOST_PATH,
    SYSTEM_DIRS,
    identity_files,
    memfd,
    mount_args,
    system_view,
)
from lambdad.sandbox.cgroups import (
    CgroupStats,
    SandboxCgroups,
    check_cgroups_v1,
    kill_orphaned_sandboxes,
    remove_stale_cgroups,
)
from lambdad.sandbox.leases import Lease as IdLease
from lambdad.sandbox.mounts import attach_read_only, detach, make_shared_dir, remove_stale_slots
from lambdad.sandbox.network import Bridge, Lease, NetnsThread, listen_tcp
from lambdad.sandbox.seccomp import filter_program
from lambdad.sandbox.userns import (
    DEFAULT_UID_COUNT,
    DEFAULT_UID_FIRST,
    HostIds,
    join_new_session_keyring,
    user_namespace,
)
from lambdad.sandbox.views import Views, remove_stale_views

__all__ = ["NamespaceSandbox", "NamespaceSandboxFactory"]

log = logging.getLogger(__name__)


async def _read_to_eof(fd: int) -> bytes:
    """Read a non-blocking pipe to EOF without blocking the event loop."""
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            while chunk := os.read(fd, 4096):
                chunks.append(chunk)
        except BlockingIOError:
            return
        except OSError as exc:
            if not done.done():
                done.set_exception(exc)
            return
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
    return b"".join(chunks)


def _status(returncode: int) -> int:
    if 128 < returncode <= 128 + 64:
        return -(returncode - 128)
    return returncode


class NamespaceSandbox:
    """A running bubblewrap sandbox. Created only by :class:`NamespaceSandboxFactory`."""

    def __init__(
        self,
        factory: NamespaceSandboxFactory,
        sandbox_id: str,
        spec: SandboxSpec,
        cgroups: SandboxCgroups,
    ) -> None:
        self._factory = factory
        self._id = sandbox_id
        self._spec = spec
        self._cgroups = cgroups
        self._pid = 0
        self._output = -1
        self._socket: socket.socket | None = None
        self._address: str | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._info_r = -1
        self._block_w = -1
        self._init_pidfd = -1
        self._lease: Lease | None = None
        #: This sandbox's host uid (= gid), 993/990 inside its user namespace.
        self._host_id: IdLease | None = None
        self._exit: asyncio.Future[int] | None = None
        self._destroy_lock = asyncio.Lock()
        self._destroyed = False
        #: Host directory bind-mounted at ``spec.code_slot`` (under the factory's shared slots mount).
        self._slot: Path | None = None
        self._specialized = False
        #: Views (lambdad.sandbox.views) this sandbox's mounts use, released at teardown.
        self._views: list[Path] = []
        #: The network the sandbox actually got (DEFAULT degrades to NONE without NAT).
        self.network = spec.network

    # -- Sandbox protocol ------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def spec(self) -> SandboxSpec:
        return self._spec

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def output(self) -> int:
        return self._output

    @property
    def runtime_api_socket(self) -> socket.socket | None:
        return self._socket

    @property
    def runtime_api_address(self) -> str | None:
        return self._address

    @property
    def veth(self) -> str | None:
        """Host-side interface of this sandbox's ``eth0`` (``DEFAULT`` network only)."""
        return self._lease.veth if self._lease else None

    @property
    def ip_address(self) -> str | None:
        """This sandbox's address on the bridge (``DEFAULT`` network only)."""
        return self._lease.address if self._lease else None

    @property
    def host_uid(self) -> int | None:
        """The host uid (and gid) the function runs as; ``spec.uid``/``spec.gid`` inside."""
        return self._host_id.number if self._host_id is not None and self._host_id.held else None

    def cgroup_dirs(self) -> list[Path]:
        """The sandbox's cgroup directories (gone after ``destroy()``)."""
        return list(self._cgroups.dirs.values())

    async def wait(self) -> int:
        assert self._exit is not None
        return _status(await asyncio.shield(self._exit))

    def memory_peak_bytes(self) -> int:
        return self._cgroups.memory_peak_bytes()

    async def set_egress(self, rules: tuple[EgressRule, ...]) -> None:
        bridge = self._factory._bridge
        if self._lease is None or self._lease.egress is None or bridge is None:
            raise SandboxError(f"sandbox {self._id} has no egress policy to change")
        await asyncio.to_thread(bridge.replace_egress, self._lease, rules)

    def end_cpu_boost(self) -> None:
        if self.spec.cpu_boost:
            with contextlib.suppress(FileNotFoundError):  # already destroyed
                self._cgroups.limit_cpu(self.spec.memory_mb)

    def oom_killed(self) -> bool:
        return self._cgroups.stats().oom_kills > 0

    def memory_stats(self) -> CgroupStats:
        return self._cgroups.stats()

    async def specialize(self, code: Path, memory_mb: int, label: str | None = None) -> None:
        if self._slot is None:
            raise SandboxError(f"sandbox {self._id} has no code slot")
        if self._specialized or self._destroyed:
            raise SandboxError(f"sandbox {self._id} cannot be specialized again")
        self._specialized = True
        # A few syscalls (~0.1 ms; ~1.5 ms more the first time a view of the code is made): done
        # inline, not queued behind creations on the worker thread.
        attach_read_only(self._factory._view_of(self, code), self._slot)
        self._cgroups.set_memory(memory_mb)
        if label is not None:
            new_id = f"{label}-{self._id.rsplit('-', 1)[1]}"
            self._cgroups.rename(new_id)
            self._id = new_id
        self._spec = replace(self._spec, memory_mb=memory_mb, label=label or self._spec.label)
        if not self._spec.cpu_boost:
            self._cgroups.limit_cpu(memory_mb)

    @property
    def code_slot_source(self) -> Path | None:
        """The host directory behind ``spec.code_slot`` (tests check it is unmounted at teardown)."""
        return self._slot

    async def destroy(self) -> None:
        async with self._destroy_lock:
            if self._destroyed:
                return
            try:
                await self._teardown()
            finally:
                self._destroyed = True
                self._factory._live.discard(self)

    # -- life cycle ------------------------------------------------------------------------

    def _watch_exit(self, popen: subprocess.Popen[bytes]) -> None:
        """Reap bwrap as soon as it exits (a pidfd turns readable), without a thread."""
        loop = asyncio.get_running_loop()
        self._exit = loop.create_future()
        pidfd = os.pidfd_open(popen.pid)

        def exited() -> None:
            if popen.poll() is None:
                return
            loop.remove_reader(pidfd)
            os.close(pidfd)
            if self._exit is not None and not self._exit.done():
                self._exit.set_result(popen.returncode)

        loop.add_reader(pidfd, exited)

    def _close_setup_fds(self) -> None:
        for name in ("_info_r", "_block_w"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    async def _teardown(self) -> None:
        if self._init_pidfd >= 0:
            # Killing the PID namespace's init makes the kernel kill everything in it. The pidfd
            # makes this race-free: it can never hit a recycled pid.
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._init_pidfd, signal.SIGKILL)
        if self._popen is not None and self._exit is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._exit), 5)
            except TimeoutError:
                self._popen.kill()
                await asyncio.wait_for(asyncio.shield(self._exit), 5)
        if self._socket is not None:
            # The socket holds a reference on the namespace: close it so the netns can go.
            self._socket.close()
        # Not on the netns worker: this is slow (veth deletion) and must not delay creations.
        await asyncio.to_thread(self._release_blocking)
        if self._init_pidfd >= 0:
            os.close(self._init_pidfd)
            self._init_pidfd = -1

    def _release_blocking(self) -> None:
        errors: list[BaseException] = []
        try:
            self._cgroups.remove()
        except OSError as exc:
            errors.append(exc)
        else:
            # Its processes are gone (the cgroups could go): the uid may serve another sandbox. If
            # they could not be removed, the uid stays leased rather than be shared.
            if self._host_id is not None:
                self._host_id.release()
        if self._slot is not None:
            try:
                detach(self._slot)  # the code mount, if attached (the sandbox's copy went with it)
                self._slot.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                errors.append(exc)
        if self._lease is not None and self._factory._bridge is not None:
            try:
                self._factory._bridge.detach(self._lease)
            except OSError as exc:
                errors.append(exc)
        for view in self._views:
            try:
                self._factory._views.release(view)
            except OSError as exc:
                errors.append(exc)
        self._views.clear()
        if errors:
            raise SandboxError(f"sandbox {self._id}: incomplete cleanup: {errors}")


class NamespaceSandboxFactory:
    """Creates :class:`NamespaceSandbox` es. Needs root, bubblewrap, setpriv and cgroup v1.

    Options:
        bwrap: path of the bubblewrap binary (default: found on PATH).
        cgroup_root: where the v1 controllers are mounted.
        cgroup_parent: directory under each controller grouping lambdad's sandboxes.
        cpu_period_us: CFS period; ``None`` disables CPU limits (handy on tiny dev boxes).
        bridge, subnet: host bridge and IPv4 subnet for ``NetworkMode.DEFAULT``.
        state_dir: lock and lease files shared by every lambdad process on the machine.
        allow_private_network: private IPv4 ranges (CIDRs) that DEFAULT-network sandboxes may
            reach; none by default (see :data:`lambdad.sandbox.network.PRIVATE_RANGES`).
        etc_entries, system_dirs: what of the host's /etc and / is visible (read-only).
        uid_first, uid_count: the host uids sandboxes run as, one per sandbox (the gid is the same
            number); leased machine-wide, so every lambdad on a machine may share one range.
    """

    name = "namespaces"
    isolated = True
    specializable = True

    def __init__(
        self,
        *,
        bwrap: str | None = None,
        cgroup_root: Path = Path("/sys/fs/cgroup"),
        cgroup_parent: str = "lambdad",
        cpu_period_us: int | None = 20_000,
        bridge: str = "lambdad0",
        subnet: str = "10.213.0.0/16",
        state_dir: Path = Path("/run/lambdad"),
        allow_private_network: Sequence[str] = (),
        etc_entries: Sequence[str] = ETC_ENTRIES,
        system_dirs: Sequence[str] = SYSTEM_DIRS,
        uid_first: int = DEFAULT_UID_FIRST,
        uid_count: int = DEFAULT_UID_COUNT,
    ) -> None:
        found = bwrap or shutil.which("bwrap")
        if found is None:
            raise SandboxUnavailable(
                "bubblewrap is not installed: run 'apt-get install bubblewrap' "
                "(or choose the unisolated 'process' sandbox implementation)"
            )
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise SandboxUnavailable("setpriv is missing: run 'apt-get install util-linux'")
        if os.geteuid() != 0:
            raise SandboxUnavailable(
                "isolated sandboxes need root (cgroups, namespaces, switching to the sandbox uid): "
                "run lambdad as root, or choose the unisolated 'process' sandbox implementation"
            )
        if not Path("/proc/self/ns/pid").exists():
            raise SandboxUnavailable(
                "this kernel has no namespaces: choose the unisolated 'process' implementation"
            )
        check_cgroups_v1(cgroup_root)
        # Compiled once, here, so that a missing libseccomp stops the server at start, not an invoke.
        self._seccomp = filter_program()
        self._host_ids = HostIds(state_dir, uid_first, uid_count)
        if orphans := self._host_ids.kill_orphans():
            log.warning("killed %d process(es) of sandboxes that outlived their server", orphans)
        try:
            os.close(user_namespace(993, 990, uid_first, uid_first))  # can this machine make them?
        except OSError as exc:
            raise SandboxUnavailable(
                f"cannot create the sandboxes' user namespaces ({exc}): allow user namespaces "
                "(sysctl user.max_user_namespaces > 0; on Debian kernel.unprivileged_userns_clone=1; "
                "on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0), or use the unisolated "
                "'process' sandbox implementation"
            ) from exc
        if orphans := kill_orphaned_sandboxes(cgroup_root, cgroup_parent):
            log.warning("killed %d sandbox(es) left running by a server that died", orphans)
        if stale := remove_stale_cgroups(cgroup_root, cgroup_parent):
            log.info("removed %d cgroup(s) left by sandboxes of a server that died", stale)
        self._bwrap = found
        self._setpriv = setpriv
        self._cgroup_root = cgroup_root
        self._cgroup_parent = cgroup_parent
        self._cpu_period_us = cpu_period_us
        # Addresses (and veths) of sandboxes of a server that died are free again before this one starts any.
        reclaimer = Bridge(bridge, subnet, state_dir)
        try:
            reclaimer.reclaim_stale()
        finally:
            reclaimer.close()
        self._bridge_name = bridge
        self._subnet = subnet
        self._state_dir = state_dir
        self._allow_private = tuple(allow_private_network)
        self._bridge: Bridge | None = None
        self._bridge_unavailable: str | None = None
        self._worker = NetnsThread()
        self._live: set[NamespaceSandbox] = set()
        self._closed = False
        self._base_args = system_view(etc_entries, system_dirs)
        # Code slots of spare sandboxes: a shared mount of this factory's own, made on first use.
        self._slots_dir = state_dir / "slots" / f"{owners.me()}-{secrets.token_hex(4)}"
        if stale := remove_stale_slots(self._slots_dir.parent):
            log.info("removed %d code-slot mount(s) left by a server that died", stale)
        if stale := remove_stale_views(state_dir / "views"):
            log.info("removed the directory views of %d server(s) that died", stale)
        self._views = Views(state_dir)
        self._views_unavailable = False
        self._slots_ready = False

    # -- SandboxFactory protocol ------------------------------------------------------------

    async def create(self, spec: SandboxSpec) -> Sandbox:
        if self._closed:
            raise SandboxError("sandbox factory is closed")
        sandbox_id = f"{spec.label}-{secrets.token_hex(6)}"
        cgroups = SandboxCgroups(self._cgroup_root, self._cgroup_parent, sandbox_id, self._cpu_period_us)
        sandbox = NamespaceSandbox(self, sandbox_id, spec, cgroups)
        self._live.add(sandbox)
        try:
            await self._start(sandbox)
        except BaseException:
            # Includes cancellation: never leave a half-made sandbox behind.
            await asyncio.shield(self._abort(sandbox))
            raise
        return sandbox

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.destroy() for s in list(self._live)), return_exceptions=True)

        def shared_teardown() -> None:
            SandboxCgroups(self._cgroup_root, self._cgroup_parent, "-", None).remove_parents()
            self._views.close()
            if self._slots_ready:
                detach(self._slots_dir)
                with contextlib.suppress(OSError):
                    self._slots_dir.rmdir()
                self._slots_ready = False
            if self._bridge is not None:
                self._bridge.teardown()
                self._bridge.close()

        try:
            await asyncio.wrap_future(self._worker.submit(shared_teardown))
        finally:
            self._worker.close()

    # -- creation steps ---------------------------------------------------------------------

    async def _start(self, sandbox: NamespaceSandbox) -> None:
        await asyncio.wrap_future(self._worker.submit(lambda: self._spawn(sandbox)))
        assert sandbox._popen is not None
        sandbox._watch_exit(sandbox._popen)
        info = await _read_to_eof(sandbox._info_r)
        try:
            sandbox._pid = int(json.loads(info)["child-pid"])
            sandbox._init_pidfd = os.pidfd_open(sandbox._pid)
            await asyncio.wrap_future(self._worker.submit(lambda: self._enter(sandbox)))
        except Exception as exc:
            raise SandboxError(
                f"sandbox {sandbox.id} failed to start: {exc!r}; bubblewrap said: "
                f"{await self._failure_output(sandbox)}"
            ) from exc
        # Let bwrap exec the runtime: everything it needs is in place.
        os.write(sandbox._block_w, b"1")
        sandbox._close_setup_fds()

    def _spawn(self, sandbox: NamespaceSandbox) -> None:
        """Worker thread: host uid and user namespace, cgroups, then bwrap, which stops at its --block-fd."""
        spec = sandbox.spec
        for mount in spec.mounts:
            # bwrap would only fail at this while the host sets the sandbox up, too late to say so.
            if not mount.source.exists():
                raise SandboxError(f"mount source {mount.source} (for {mount.target}) does not exist")
        sandbox._host_id = self._host_ids.acquire(sandbox.id)
        host_id = sandbox._host_id.number
        if spec.runtime_api_port is not None:
            if spec.network == NetworkMode.HOST:
                sandbox._socket = listen_tcp("127.0.0.1", 0)
                sandbox._address = f"127.0.0.1:{sandbox._socket.getsockname()[1]}"
            else:
                sandbox._address = f"127.0.0.1:{spec.runtime_api_port}"
        # Read-only directories are bound from views, which do not show their host path inside;
        # one mounted at its own path (an interpreter's prefix) has no path to hide.
        mount_spec = replace(
            spec,
            mounts=[
                replace(m, source=self._view_of(sandbox, m.source))
                if m.read_only and m.target != str(m.source) and m.source.is_dir()
                else m
                for m in spec.mounts
            ],
        )
        if spec.code_slot is not None:
            sandbox._slot = self._new_slot(sandbox.id)
            mount_spec = replace(
                mount_spec, mounts=[*mount_spec.mounts, Mount(sandbox._slot, spec.code_slot)]
            )
        env = dict(spec.env)
        if sandbox._address is not None:
            env["AWS_LAMBDA_RUNTIME_API"] = sandbox._address
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        info_r, info_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        block_r, block_w = os.pipe2(os.O_CLOEXEC)
        fds = [out_w, info_w, block_r]
        try:
            userns = user_namespace(spec.uid, spec.gid, host_id, host_id)
            fds.append(userns)
            seccomp = memfd("seccomp", self._seccomp)
            fds.append(seccomp)
            args = [
                "--unshare-ipc",
                "--unshare-pid",
                "--unshare-uts",
                # Rooted at the sandbox's own cgroup (bwrap is spawned inside it, below): the
                # function's /proc/self/cgroup shows "/", not lambdad's paths or the function name.
                "--unshare-cgroup",
                "--hostname",
                spec.hostname,
                "--die-with-parent",
                "--new-session",
                "--info-fd",
                str(info_w),
                "--block-fd",
                str(block_r),
                # Entered after bwrap's set-up as root: the namespaces above belong to the host.
                "--userns2",
                str(userns),
                "--seccomp",
                str(seccomp),
                "--clearenv",
                *self._base_args,
            ]
            if spec.network != NetworkMode.HOST:
                args.append("--unshare-net")
            for path, content in identity_files(spec).items():
                fd = memfd(path, content.encode())
                fds.append(fd)
                args += ["--perms", "0644", "--ro-bind-data", str(fd), path]
            for name, value in env.items():
                args += ["--setenv", name, value]
            args += ["--proc", "/proc", "--dev", "/dev"]
            args += ["--perms", "1777", "--size", str(spec.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]
            args += mount_args(mount_spec)
            args += ["--chdir", spec.workdir, "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            # Options go through a memfd, not argv: environment values may be secrets and
            # /proc/<pid>/cmdline is world-readable.
            args_fd = memfd("bwrap-args", "\0".join(args).encode() + b"\0")
            fds.append(args_fd)
            # Inside the user namespace, where 993/990 is the sandbox's host uid and nothing else
            # is mapped. Supplementary groups were dropped when bwrap was spawned (setgroups is
            # denied in there).
            command = [
                self._setpriv,
                f"--reuid={spec.uid}",
                f"--regid={spec.gid}",
                "--keep-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
                *spec.argv,
            ]
            # The sandbox's own session keyring (inherited by bwrap), and bwrap forked inside the
            # sandbox's cgroups, so the cgroup namespace it makes is rooted there.
            join_new_session_keyring()
            # Created just before a process joins: an empty sandbox cgroup looks like a leftover to
            # the sweeps of stale cgroups (remove_stale_cgroups), so keep that moment short.
            sandbox._cgroups.create(spec)
            with sandbox._cgroups.entered():
                sandbox._popen = subprocess.Popen(
                    [self._bwrap, "--args", str(args_fd), "--", *command],
                    stdin=subprocess.DEVNULL,
                    stdout=out_w,
                    stderr=out_w,
                    pass_fds=fds,
                    env={"PATH": HOST_PATH},
                    start_new_session=True,
                    extra_groups=[],
                )
        finally:
            # The sandbox's ends of the pipes now live in bwrap only, so EOF means bwrap is gone.
            for fd in fds:
                os.close(fd)
            sandbox._output, sandbox._info_r, sandbox._block_w = out_r, info_r, block_w
        if not spec.cpu_boost:
            sandbox._cgroups.limit_cpu(spec.memory_mb)

    def _view_of(self, sandbox: NamespaceSandbox, source: Path) -> Path:
        """A view of directory ``source`` held for ``sandbox``; ``source`` itself if none can be made."""
        if self._views_unavailable:
            return source
        try:
            view = self._views.acquire(source)
        except OSError as exc:
            # No overlayfs here (ENODEV) or not allowed: stop trying. Anything else: this once.
            self._views_unavailable = exc.errno in (errno.ENODEV, errno.EPERM, errno.EINVAL)
            log.warning(
                "cannot make an overlayfs view of %s (%s): the sandbox's /proc/self/mountinfo shows "
                "that host path",
                source,
                exc,
            )
            return source
        sandbox._views.append(view)
        return view

    def _new_slot(self, sandbox_id: str) -> Path:
        """Worker thread: an empty directory under the shared slots mount, for one sandbox."""
        if not self._slots_ready:
            self._slots_dir.parent.mkdir(parents=True, exist_ok=True)
            make_shared_dir(self._slots_dir)
            self._slots_ready = True
        slot = self._slots_dir / sandbox_id
        slot.mkdir(mode=0o755)
        slot.chmod(0o755)  # whatever the umask
        return slot

    def _enter(self, sandbox: NamespaceSandbox) -> None:
        """Worker thread: network wiring, the Runtime API socket."""
        spec = sandbox.spec
        if spec.network == NetworkMode.HOST:
            if spec.egress is not None:  # nothing to enforce it with: never run as if it were
                raise SandboxError("an egress policy cannot be enforced on the host's network")
            return
        if spec.network == NetworkMode.DEFAULT:
            bridge = self._ensure_bridge()
            if bridge is not None:
                sandbox._lease = bridge.attach(sandbox.id, sandbox._pid, spec.egress)
            else:
                sandbox.network = NetworkMode.NONE
        lease = sandbox._lease

        def inside() -> socket.socket | None:
            if lease is not None and self._bridge is not None:
                self._bridge.configure_inside(lease)
            if spec.runtime_api_port is None:
                return None
            return listen_tcp("127.0.0.1", spec.runtime_api_port, freebind=True)

        sandbox._socket = self._worker.run_in(sandbox._init_pidfd, inside)

    def _ensure_bridge(self) -> Bridge | None:
        if self._bridge_unavailable is not None:
            return None
        if self._bridge is None:
            self._bridge = Bridge(self._bridge_name, self._subnet, self._state_dir, self._allow_private)
        try:
            self._bridge.ensure()
        except SandboxUnavailable as exc:
            detail = str(exc)
            self._bridge_unavailable = detail
            log.warning(
                "NetworkMode.DEFAULT cannot get outbound access on this machine (%s); sandboxes "
                "get a loopback-only network instead. Install nftables and run as root to fix.",
                detail,
            )
            return None
        return self._bridge

    async def _failure_output(self, sandbox: NamespaceSandbox) -> str:
        """What bwrap printed before dying (its errors go to the sandbox's output pipe)."""
        if sandbox._init_pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(sandbox._init_pidfd, signal.SIGKILL)
        elif sandbox._popen is not None:
            sandbox._popen.kill()
        if sandbox._exit is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(sandbox._exit), 5)
        os.set_blocking(sandbox._output, False)
        try:
            text = os.read(sandbox._output, 65536).decode(errors="replace").strip()
        except BlockingIOError:
            text = ""
        return text or "nothing"

    async def _abort(self, sandbox: NamespaceSandbox) -> None:
        """Undo a failed or cancelled create(), whatever stage it reached."""
        # The worker runs jobs in order: once this no-op ran, _spawn/_enter are finished.
        await asyncio.wrap_future(self._worker.submit(lambda: None))
        if sandbox._popen is not None:
            if sandbox._exit is None:
                sandbox._watch_exit(sandbox._popen)
            if sandbox._init_pidfd < 0 and sandbox._info_r >= 0:
                # Learn the sandbox's pid before closing --block-fd: EOF there would let it run.
                with contextlib.suppress(Exception):
                    info = await asyncio.wait_for(_read_to_eof(sandbox._info_r), 2)
                    sandbox._init_pidfd = os.pidfd_open(int(json.loads(info)["child-pid"]))
            if sandbox._init_pidfd >= 0:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(sandbox._init_pidfd, signal.SIGKILL)
            else:
                sandbox._popen.kill()
        sandbox._close_setup_fds()
        try:
            await sandbox.destroy()
        finally:
            if sandbox._output >= 0:
                os.close(sandbox._output)
                sandbox._output = -1
