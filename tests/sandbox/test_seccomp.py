"""The seccomp filter: kernel interfaces a function must not reach answer EPERM, the sandbox lives on,
and what runtimes do every day (threads, processes, asyncio, sockets, keys) still works.

Several of the calls below succeed in a sandbox without the filter (a new user namespace, which
would give the function capabilities over fresh namespaces; userfaultfd in user mode; perf events;
io_uring; name_to_handle_at; personality flags; ptrace; the kernel log): these tests failed there.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from lambdad.sandbox.namespaces import NamespaceSandboxFactory
from tests.sandbox.support import py_spec, run

pytestmark = pytest.mark.timeout(60)

# x86-64 syscall numbers; each call made with arguments that would do no harm if it were allowed.
DENIED_CALLS = r"""
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NULL = None
buf = ctypes.create_string_buffer(4096)
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
SIGCHLD = 17

class PerfAttr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                ("rest", ctypes.c_uint8 * 112)]
perf = PerfAttr(1, 128, 0)  # PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK
handle = ctypes.create_string_buffer((120).to_bytes(4, "little"), 128)  # struct file_handle, 120 bytes
mount_id = ctypes.c_int()

CALLS = {
    "unshare(CLONE_NEWUSER)": (272, CLONE_NEWUSER),
    "unshare(CLONE_NEWNS)": (272, CLONE_NEWNS),
    "clone(CLONE_NEWUSER)": (56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0),
    "clone(CLONE_NEWNET)": (56, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0),
    "setns": (308, 0, 0),
    "mount": (165, b"none", b"/tmp", b"tmpfs", 0, 0),
    "umount2": (166, b"/tmp", 0),
    "pivot_root": (155, b"/tmp", b"/tmp"),
    "chroot": (161, b"/tmp"),
    "fsopen": (430, b"tmpfs", 0),
    "open_tree": (428, -100, b"/tmp", 0),
    "bpf": (321, 0, buf, 48),
    "perf_event_open": (298, ctypes.byref(perf), 0, -1, -1, 0),
    "userfaultfd(UFFD_USER_MODE_ONLY)": (323, 1),
    "io_uring_setup": (425, 1, buf),
    "init_module": (175, buf, 0, b""),
    "finit_module": (313, -1, b"", 0),
    "delete_module": (176, b"lambdad_nonexistent", 0),
    "kexec_load": (246, 0, 0, 0, 0),
    "kexec_file_load": (320, -1, -1, 0, b"", 0),
    "reboot": (169, 0, 0, 0, 0),  # bad magic: would be EINVAL, never a reboot
    "ptrace(PTRACE_TRACEME)": (101, 0, 0, 0, 0),
    "process_vm_readv(self)": (310, os.getpid(), 0, 0, 0, 0, 0),
    "request_key": (249, b"user", b"lambdad-nonexistent", NULL, 0),
    "name_to_handle_at": (303, -100, b"/tmp", handle, ctypes.byref(mount_id), 0),
    "open_by_handle_at": (304, -100, handle, 0),
    "swapon": (167, b"/tmp/none", 0),
    "swapoff": (168, b"/tmp/none"),
    "acct": (163, NULL),
    "quotactl": (179, 0, b"/tmp", 0, NULL),
    "lookup_dcookie": (212, 0, buf, 16),
    "syslog(SIZE_BUFFER)": (103, 10, NULL, 0),
    "personality(ADDR_NO_RANDOMIZE)": (135, 0x0040000),
    "personality(READ_IMPLIES_EXEC)": (135, 0x0400000),
    "settimeofday": (164, NULL, NULL),
}
results = {}
for name, (number, *args) in CALLS.items():
    value = libc.syscall(number, *args)
    if value == 0 and name.startswith("clone"):
        os._exit(0)  # the child of a clone that went through
    results[name] = "ok" if value >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
results["clone3"] = "ok" if libc.syscall(435, buf, 88) >= 0 else errno.errorcode.get(ctypes.get_errno())
print(json.dumps(results), flush=True)
"""

ORDINARY_WORK = r"""
import asyncio, ctypes, json, os, socket, subprocess, threading
done = {}
# threads (glibc's pthread_create tries clone3 first, then falls back to clone)
threads = [threading.Thread(target=lambda i=i: done.__setitem__(f"thread{i}", True)) for i in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
done["threads"] = len([k for k in done if k.startswith("thread")]) == 4
done["subprocess"] = subprocess.run(["/bin/sh", "-c", "echo hi"], capture_output=True).stdout == b"hi\n"
pid = os.fork()
if pid == 0:
    os._exit(7)
done["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7

async def echo():
    server = await asyncio.start_server(lambda r, w: (w.write(b"pong"), w.close()), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = await reader.read()
    writer.close(); server.close()
    return data
done["asyncio_tcp"] = asyncio.run(echo()) == b"pong"
a, b = socket.socketpair(); a.sendall(b"x"); done["socketpair"] = b.recv(1) == b"x"
libc = ctypes.CDLL(None, use_errno=True); libc.syscall.restype = ctypes.c_long
key = libc.syscall(248, b"user", b"allowed", b"v", 1, -3)  # add_key: allowed (keyrings are per sandbox)
done["add_key"] = key > 0
done["personality_query_linux"] = libc.syscall(135, 0) >= 0  # PER_LINUX: allowed
print(json.dumps(done), flush=True)
"""


def test_denied_syscalls_answer_eperm_and_the_sandbox_lives_on(
    ns_factory: NamespaceSandboxFactory, code_dir: Path
):
    result = asyncio.run(run(ns_factory, py_spec(DENIED_CALLS + "print('still running')", code_dir)))
    assert result.status == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == "still running"
    answers = json.loads(lines[-2])
    expected = {name: "EPERM" for name in answers}
    # clone3 passes its flags in memory, out of the filter's sight: ENOSYS sends callers to clone(2).
    expected["clone3"] = "ENOSYS"
    assert answers == expected


def test_ordinary_work_still_runs_under_the_filter(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    result = asyncio.run(run(ns_factory, py_spec(ORDINARY_WORK, code_dir)))
    assert result.status == 0, result.output
    done = json.loads(result.output.splitlines()[-1])
    assert all(done.values()) and len(done) >= 10, done
