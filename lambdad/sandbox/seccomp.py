"""The seccomp filter every sandbox runs under: kernel interfaces a function never needs, refused.

What is refused is the union of what Docker's default profile (moby ``profiles/seccomp/default.json``
for a container without extra capabilities) and Firecracker's jailer keep from a guest workload,
where it matters for a function: new namespaces (a user namespace would hand the function
capabilities over fresh mount and network namespaces, the kernel's widest attack surface),
mounting, kernel modules, kexec, BPF, perf events, userfaultfd, io_uring, tracing other
processes, opening files by handle, swap, accounting, quotas, the clock, the kernel log, and
personality flags that weaken the address-space layout. Each returns EPERM, as in Docker: the
process gets an error it can handle, never a kill, and nothing outside the sandbox is affected.

Kept allowed on purpose: ``add_key`` and ``keyctl``. Each sandbox has a host uid, user namespace
and session keyring of its own (see :mod:`lambdad.sandbox.namespaces`), so keys no longer cross
sandboxes, and AWS Lambda allows them. ``request_key`` stays refused: it can make the kernel run
``/sbin/request-key`` on the host, as root.

The filter is a deny list over a default of "allow" rather than Docker's allow list: the runtimes
(any ``provided`` binary included) keep working whatever ordinary syscalls they use, and the list
reads as the threat model. libseccomp (through ``pyseccomp``, a ctypes binding with the API of
libseccomp's own Python module) compiles it, handling syscall numbers per architecture and the
x32 and i386 entry points of an x86-64 kernel, which a hand-written BPF program would have to get
right by itself. It is compiled once per process (~1 ms) and handed to bubblewrap's ``--seccomp``,
which loads it just before it execs the runtime, after its own namespace set-up.
"""

from __future__ import annotations

import errno
import functools
import os
import platform

from lambdad.sandbox.api import SandboxUnavailable

__all__ = ["DENIED", "NAMESPACE_FLAGS", "filter_program"]

#: clone/unshare flags that create namespaces (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
#: and CLONE_NEWTIME), refused as in Docker's profile.
NAMESPACE_FLAGS = (
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
)
#: Refused outright (EPERM). Most already need a capability the sandbox lacks; refusing them in the
#: filter also shuts them for a process that got capabilities some other way (a user namespace).
DENIED = (
    # namespaces and mounts
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    # the kernel itself
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "lookup_dcookie",
    "syslog",  # the host's kernel log (other sandboxes' OOM kills, cgroup names)
    "iopl",
    "ioperm",
    "fanotify_init",
    # other processes
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # files by handle, swap, accounting, quotas
    "open_by_handle_at",
    "name_to_handle_at",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "nfsservctl",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    # the host's identity and clock
    "sethostname",
    "setdomainname",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "stime",
    # keys the kernel would ask a host helper (as root) to find; add_key/keyctl are allowed
    "request_key",
)
#: personality(2) bits a process may set: PER_LINUX32 (0x8) and UNAME26 (0x20000), as in Docker.
#: Every other bit (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, ...) is refused. Unlike
#: Docker the query ``personality(0xffffffff)`` is refused too: libseccomp cannot compare one
#: argument twice in a rule, and nothing our runtimes run asks.
PERSONALITY_ALLOWED = 0x0000_0008 | 0x0002_0000


@functools.cache
def filter_program() -> bytes:
    """The compiled BPF program (``struct sock_filter[]``), as bubblewrap's ``--seccomp`` reads it."""
    try:
        import pyseccomp as sc  # loads libseccomp.so.2 when imported
    except (ImportError, RuntimeError, OSError) as exc:
        raise SandboxUnavailable(
            f"cannot load libseccomp ({exc}): run 'apt-get install libseccomp2' and 'pip install pyseccomp'"
        ) from exc
    deny = sc.ERRNO(errno.EPERM)
    program = sc.SyscallFilter(sc.ALLOW)
    # A syscall of an architecture the filter does not know is refused, never allowed or killed.
    program.set_attr(sc.Attr.ACT_BADARCH, deny)
    if platform.machine() == "x86_64":
        # The i386 and x32 entry points are reachable from a 64-bit process: filter them alike.
        for arch in (sc.Arch.X86, sc.Arch.X32):
            if not program.exist_arch(arch):
                program.add_arch(arch)
    for name in DENIED:
        try:
            program.add_rule(deny, name)
        except (OSError, ValueError, RuntimeError):
            continue  # a syscall this architecture does not have
    for bit in range(32):
        mask = 1 << bit
        if NAMESPACE_FLAGS & mask:
            # clone(2)'s flags are its first argument on x86-64 and arm64 (not on s390).
            program.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, mask, mask))
            program.add_rule(deny, "unshare", sc.Arg(0, sc.MASKED_EQ, mask, mask))
        if not PERSONALITY_ALLOWED & mask:
            program.add_rule(deny, "personality", sc.Arg(0, sc.MASKED_EQ, mask, mask))
    # clone3 passes its flags in memory, which seccomp cannot read: ENOSYS makes glibc and others
    # fall back to clone(2), which is filtered (Docker does the same).
    program.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    with os.fdopen(os.memfd_create("seccomp", os.MFD_CLOEXEC), "w+b") as out:
        program.export_bpf(out)
        out.seek(0)
        return out.read()
