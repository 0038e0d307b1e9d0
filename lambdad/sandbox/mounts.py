"""Attaching host directories into running sandboxes (mount propagation), with the new mount API.

A factory makes one host directory a *shared* mount (its own peer group). A sandbox started with a
``code_slot`` bind-mounts an empty subdirectory of it at that path; bubblewrap makes its copy of the
host's mounts slaves, so a mount made later on that subdirectory on the host propagates into the
sandbox. ``attach_read_only`` builds the mount detached (``open_tree``), makes it read-only, nosuid and
nodev (``mount_setattr``) and only then attaches it (``move_mount``): the copy that propagates is born
read-only (a bind + remount would propagate a writable mount first; remounts do not propagate).
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from lambdad.sandbox import owners

__all__ = ["attach_read_only", "detach", "make_shared_dir"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

# x86_64 / aarch64 share these numbers (the new mount API was added after the tables were unified).
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = os.O_CLOEXEC
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOUNT_ATTR_RDONLY = 0x1
_MOUNT_ATTR_NOSUID = 0x2
_MOUNT_ATTR_NODEV = 0x4
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_PRIVATE = 1 << 18
_MS_SHARED = 1 << 20
_MNT_DETACH = 2


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result: int, what: str, path: Path | str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what} {path}: {os.strerror(code)}")
    return result


def make_shared_dir(path: Path) -> None:
    """Create ``path`` and make it a mount of its own in a new shared peer group.

    The mount is a small tmpfs, not a bind of the directory: a sandbox's slot (a subdirectory bound
    into it) then shows ``/<name>`` as its root in the sandbox's mountinfo, not its host path.
    """
    path.mkdir(parents=True, exist_ok=True)
    raw = os.fsencode(path)
    flags = _MS_NOSUID | _MS_NODEV
    _check(_libc.mount(b"tmpfs", raw, b"tmpfs", flags, b"size=64k,mode=0755"), "mounting a tmpfs at", path)
    try:
        # Private first: a fresh peer group, not the one of whatever mount holds ``path``.
        _check(_libc.mount(None, raw, None, _MS_PRIVATE, None), "making private", path)
        _check(_libc.mount(None, raw, None, _MS_SHARED, None), "making shared", path)
    except OSError:
        detach(path)
        raise


def attach_read_only(source: Path, target: Path) -> None:
    """Mount ``source`` on ``target`` read-only (nosuid, nodev); the propagated copies are read-only too."""
    fd = _check(
        _libc.syscall(_SYS_OPEN_TREE, _AT_FDCWD, os.fsencode(source), _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC),
        "cloning",
        source,
    )
    try:
        attr = _MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV, 0, 0, 0)
        _check(
            _libc.syscall(
                _SYS_MOUNT_SETATTR, fd, b"", _AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)
            ),
            "making read-only",
            source,
        )
        _check(
            _libc.syscall(_SYS_MOVE_MOUNT, fd, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH),
            "attaching at",
            target,
        )
    finally:
        os.close(fd)


def detach(path: Path) -> bool:
    """Lazily unmount whatever is mounted on ``path`` (and propagate that); False if nothing was."""
    if _libc.umount2(os.fsencode(path), _MNT_DETACH) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOENT):
        return False
    raise OSError(code, f"unmounting {path}: {os.strerror(code)}")


def remove_stale_slots(slots_root: Path) -> int:
    """Unmount and remove the slot mounts of factories whose process is gone (a server that crashed
    or was killed leaves its ``<owner>-<hex>`` mount behind, ``<owner>`` as :func:`owners.me` writes
    it, or a bare pid from older versions); returns how many were removed."""
    removed = 0
    for directory in slots_root.iterdir() if slots_root.exists() else ():
        if owners.alive(directory.name.split("-", 1)[0]):
            continue
        for slot in directory.iterdir():
            detach(slot)
        detach(directory)
        for slot in directory.iterdir():
            slot.rmdir()
        directory.rmdir()
        removed += 1
    return removed
