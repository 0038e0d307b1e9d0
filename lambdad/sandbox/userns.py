"""Each sandbox's own host uid: leased from a range, entered through a user namespace made for it.

AWS shows every function uid 993 / gid 990. On one host, a shared uid would mean one kernel keyring
and one set of per-uid limits (inotify instances, keys, key bytes) for every tenant, so each
sandbox gets a host uid (and gid, the same number) of its own from a range lambdad owns
(:class:`HostIds`, leases shared by every lambdad process on the machine), and a user namespace in
which that host uid *is* 993/990 (:func:`user_namespace`). Nothing else is mapped: host root is not
root in there, and the function holds no capability in it.

The namespace is made by root (which may write any mapping), with ``setgroups`` denied, and handed
to bubblewrap as ``--userns2``: bubblewrap builds the sandbox's mount, PID, network, IPC, UTS and
cgroup namespaces as root in the host's user namespace (they belong to it, not to the function's),
enters the function's user namespace only after its set-up, then ``setpriv`` switches to 993/990.

Why clone(2) through ctypes: Python 3.11 has no ``os.unshare``, and a user namespace only exists
with a process in it. ``clone(CLONE_VM | CLONE_NEWUSER)`` makes a process that shares our memory
(no copy of the server's address space: ~0.1 ms) and runs nothing but the C ``syscall(SYS_pause)``
on a stack of its own until we have written its maps, opened its namespace and killed it; it never
runs Python. Spawning ``unshare(1)`` instead costs two execs and a poll.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
from pathlib import Path

from lambdad.sandbox.leases import Lease, LeasePool

__all__ = ["DEFAULT_UID_COUNT", "DEFAULT_UID_FIRST", "HostIds", "join_new_session_keyring", "user_namespace"]

#: Far above any real user (systemd leaves 1879048192..2147352575 unused, below the 2^31 values
#: some tools mishandle), 65,536 concurrent sandboxes per machine.
DEFAULT_UID_FIRST = 1_900_000_000
DEFAULT_UID_COUNT = 65_536

_CLONE_VM = 0x00000100
_CLONE_NEWUSER = 0x10000000
#: pause(2), which the child sleeps in (arm64 has no pause: not supported there yet).
_SYS_PAUSE = {"x86_64": 34}.get(os.uname().machine)
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
_SYS_SETRESUID = {"x86_64": 117, "aarch64": 147}.get(os.uname().machine)
_KEYCTL_JOIN_SESSION_KEYRING = 1
_STACK_BYTES = 16 * 1024

_libc = ctypes.CDLL(None, use_errno=True)
_libc.clone.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
_libc.clone.restype = ctypes.c_int
_SYSCALL = ctypes.cast(_libc.syscall, ctypes.c_void_p)


def user_namespace(inside_uid: int, inside_gid: int, host_uid: int, host_gid: int) -> int:
    """An fd of a new user namespace mapping only ``inside -> host`` (uid and gid); setgroups denied.

    Blocking and cheap; run it on the sandbox worker thread. The caller closes the fd.
    """
    if _SYS_PAUSE is None:
        raise OSError(errno.ENOSYS, f"user namespaces are not implemented for {os.uname().machine}")
    stack = ctypes.create_string_buffer(_STACK_BYTES)
    top = (ctypes.addressof(stack) + _STACK_BYTES - 64) & ~0xF  # the stack grows down; 16-byte aligned
    # The namespace's owner is the creator's euid, and the kernel charges per-user counts made in it
    # (inotify instances, user namespaces, ...) to the owner at every level above: made as root,
    # every sandbox would share root's counts. So this thread becomes the host uid for the clone.
    # The raw syscall changes this thread only (glibc's setresuid would change every thread).
    _set_thread_euid(host_uid)
    try:
        # The child runs syscall(SYS_pause): it sleeps until killed.
        pid = _libc.clone(_SYSCALL, top, _CLONE_VM | _CLONE_NEWUSER | signal.SIGCHLD, _SYS_PAUSE)
        err = ctypes.get_errno()
    finally:
        _set_thread_euid(0)
    if pid < 0:
        raise OSError(err, f"cannot create a user namespace: {os.strerror(err)}")
    try:
        proc = Path(f"/proc/{pid}")
        _write(proc / "uid_map", f"{inside_uid} {host_uid} 1\n")
        _write(proc / "setgroups", "deny")
        _write(proc / "gid_map", f"{inside_gid} {host_gid} 1\n")
        return os.open(proc / "ns" / "user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        del stack  # only now: the child ran on it until killed


def _set_thread_euid(uid: int) -> None:
    if _SYS_SETRESUID is None or _libc.syscall(_SYS_SETRESUID, -1, uid, -1) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot switch the worker thread's effective uid to {uid}: {os.strerror(err)}")


def join_new_session_keyring() -> None:
    """Give the calling *thread* a new, empty session keyring; processes it forks inherit it.

    Called on the worker thread before each sandbox is spawned, so each sandbox possesses a
    session keyring of its own (otherwise all would inherit the server's).
    """
    if _SYS_KEYCTL is None:
        return
    if _libc.syscall(_SYS_KEYCTL, _KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            return  # a kernel without keyrings: nothing to share either
        raise OSError(err, f"cannot create a session keyring: {os.strerror(err)}")


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _processes_running_as(uids: set[int]) -> list[int]:
    """Pids of the processes whose real, effective or saved uid is one of ``uids``.

    Read from ``/proc/<pid>/status``, not from the owner of ``/proc/<pid>``: a process that made
    itself non-dumpable shows a root-owned directory.
    """
    markers = {str(uid) for uid in uids}
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"Uid:"):
                        if markers.intersection(line.decode().split()[1:4]):
                            found.append(int(entry.name))
                        break
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _no_process_runs_as(uid: int) -> bool:
    """Whether no process on the machine runs as ``uid``. Only asked when a dead holder's uid is
    reclaimed, so a full scan of /proc is affordable."""
    return not _processes_running_as({uid})


class HostIds:
    """Host uids (the gid is the same number) leased for sandboxes, machine-wide.

    A uid whose previous holder died (a SIGKILLed server) is handed out again only once no
    process of it is left (its sandboxes die with the server, a moment later).
    """

    def __init__(
        self, state_dir: Path, first: int = DEFAULT_UID_FIRST, count: int = DEFAULT_UID_COUNT
    ) -> None:
        if first < 1000 or first + count > 2**31:
            raise ValueError(f"sandbox uid range {first}..{first + count - 1} must lie within 1000..2^31-1")
        self.pool = LeasePool(state_dir / "uids", first, count, reclaimable=_no_process_runs_as)

    def acquire(self, owner: str) -> Lease:
        return self.pool.acquire(owner)

    def kill_orphans(self) -> int:
        """SIGKILL what still runs as the uid of a server that died (a sandbox created in the last
        milliseconds before its server was SIGKILLed outlives it: bubblewrap arms its parent-death
        signal late); returns how many processes. Done with those uids' leases locked, so no new
        sandbox can have taken one meanwhile; their uids come back once the processes are gone."""
        leases = self.pool.dead_holders()
        try:
            orphans = _processes_running_as({lease.number for lease in leases}) if leases else []
            for pid in orphans:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        finally:
            for lease in leases:
                lease.release()
        return len(orphans)
