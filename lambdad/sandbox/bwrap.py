"""The bubblewrap command line of a sandbox: what of the host it sees, and how it is set up.

Kept apart from the life-cycle code in :mod:`lambdad.sandbox.namespaces` so that what a
sandbox can see is reviewable in one place.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from lambdad.sandbox.api import SandboxSpec

__all__ = ["ETC_ENTRIES", "HOST_PATH", "SYSTEM_DIRS", "identity_files", "memfd", "mount_args", "system_view"]

#: Host /etc entries a runtime may need (TLS roots, DNS, dynamic linker cache, time zones).
ETC_ENTRIES = (
    "resolv.conf",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "services",
    "protocols",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "alternatives",
    "mime.types",
    "os-release",
)
#: Top-level system directories. On merged-/usr systems most are symlinks into /usr.
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def system_view(etc_entries: Sequence[str], system_dirs: Sequence[str]) -> list[str]:
    """bwrap options exposing the host's system directories read-only (computed once)."""
    # bwrap creates missing parent directories as 0700, which the sandbox user could not
    # traverse: create them explicitly as 0755.
    args: list[str] = ["--perms", "0755", "--dir", "/etc"]
    for name in system_dirs:
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in etc_entries:
        path = Path("/etc", name)
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return args


def mount_args(spec: SandboxSpec) -> list[str]:
    """bwrap options for the spec's mounts: outer mounts first, parents created 0755."""
    mounts = sorted(spec.mounts, key=lambda m: PurePosixPath(m.target).parts)
    targets = [PurePosixPath(m.target) for m in mounts]
    reserved = [PurePosixPath(p) for p in ("/etc", "/tmp", "/proc", "/dev")]
    parents: set[PurePosixPath] = set()
    for target in targets:
        for parent in target.parents:
            if parent.parent == parent or parent in reserved:
                continue
            # Inside another mount the directory must come from that mount's source.
            if not any(parent == t or t in parent.parents for t in targets if t != target):
                parents.add(parent)
    args: list[str] = []
    for parent in sorted(parents, key=lambda p: len(p.parts)):
        args += ["--perms", "0755", "--dir", str(parent)]
    for mount in mounts:
        args += ["--ro-bind" if mount.read_only else "--bind", str(mount.source), mount.target]
    return args


def identity_files(spec: SandboxSpec) -> dict[str, str]:
    """Generated /etc files: the sandbox user (AWS's sbx_user1051) and its host name."""
    return {
        "/etc/passwd": (
            "root:x:0:0:root:/root:/sbin/nologin\n"
            f"sbx_user1051:x:{spec.uid}:{spec.gid}::/tmp:/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        ),
        "/etc/group": f"root:x:0:\nsbx_user1051:x:{spec.gid}:\nnogroup:x:65534:\n",
        "/etc/hosts": f"127.0.0.1\tlocalhost {spec.hostname}\n::1\tlocalhost ip6-localhost\n",
        "/etc/hostname": f"{spec.hostname}\n",
    }
