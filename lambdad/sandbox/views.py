"""Read-only views of host directories that do not tell a sandbox where they are on the host.

A bind mount shows, in ``/proc/self/mountinfo`` (4th field), its root as a path *within its
filesystem*: binding ``/work/x/.lambdad/tasks/<sha>`` at ``/var/task`` shows that whole path to the
function. Only a mount whose superblock root is the directory hides it. A *view* is such a mount:
an overlayfs whose only real layer is the directory, made once per directory on the host and then
bind-mounted into sandboxes (a bind of a mount's root shows ``/``). Its options name the layers as
given at mount time, so they are given as ``/proc/self/fd/N`` of descriptors closed right after;
the second, empty layer is there because overlayfs needs two lower layers without an upper one.

Cost: one overlay mount (~1.5 ms) the first time a directory is used; sandboxes then bind the view
as they bound the directory. Reads go to the real files (overlayfs passes opened files through).
Why not a copy on tmpfs (code is up to 250 MB, held in memory per digest) or an erofs/squashfs image
(a tool lambdad's hosts do not have, and an image build per code package): this needs neither.

Views live under a private tmpfs of the factory's own (``<state_dir>/views/<owner>-<hex>``), so
they propagate nowhere; a view is keyed by the directory's device and inode (a directory removed and
unpacked again gets a new view); idle views beyond a bound are unmounted; a dead server's views are
removed when a factory starts.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from lambdad.sandbox import owners
from lambdad.sandbox.mounts import detach

__all__ = ["Views", "remove_stale_views"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_PRIVATE = 1, 2, 4, 1 << 18


def _mount(source: bytes, target: Path, fstype: bytes | None, flags: int, data: bytes | None) -> None:
    if _libc.mount(source, os.fsencode(target), fstype, flags, data) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mounting {fstype!r} at {target}: {os.strerror(code)}")


@dataclass
class _View:
    path: Path
    users: int = 0


class Views:
    """One factory's views. Thread-safe: sandboxes are made on a worker thread and released on others."""

    def __init__(self, state_dir: Path, idle_kept: int = 64) -> None:
        self._root = state_dir / "views" / f"{owners.me()}-{secrets.token_hex(4)}"
        self._idle_kept = idle_kept
        #: (source device, inode) -> view; idle views in least recently used order, first.
        self._views: OrderedDict[tuple[int, int], _View] = OrderedDict()
        self._names = itertools.count()
        self._lock = threading.Lock()
        self._ready = False

    def acquire(self, source: Path) -> Path:
        """A view of directory ``source`` (made if needed), held until :meth:`release`."""
        status = os.stat(source)
        key = (status.st_dev, status.st_ino)
        with self._lock:
            view = self._views.get(key)
            if view is None:
                view = _View(self._make(source))
                self._views[key] = view
            self._views.move_to_end(key)
            view.users += 1
            return view.path

    def release(self, path: Path) -> None:
        """A sandbox stopped using view ``path``; idle views beyond the bound are unmounted."""
        with self._lock:
            for view in self._views.values():
                if view.path == path:
                    view.users -= 1
            idle = [key for key, view in self._views.items() if view.users <= 0]
            for key in idle[: max(0, len(idle) - self._idle_kept)]:
                self._unmount(self._views.pop(key).path)

    def close(self) -> None:
        """Unmount every view (lazily: a sandbox still running keeps its bind until it ends)."""
        with self._lock:
            self._views.clear()
            if self._ready:
                detach(self._root)  # the tmpfs, and every view under it
                self._root.rmdir()
                self._ready = False

    def _make(self, source: Path) -> Path:
        if not self._ready:
            self._root.mkdir(parents=True, exist_ok=True)
            _mount(b"tmpfs", self._root, b"tmpfs", _MS_NOSUID | _MS_NODEV, b"size=64k,mode=0700")
            _mount(b"none", self._root, None, _MS_PRIVATE, None)
            (self._root / "empty").mkdir()
            self._ready = True
        target = self._root / str(next(self._names))
        target.mkdir()
        layers = [
            os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for p in (source, self._root / "empty")
        ]
        try:
            lowerdir = ":".join(f"/proc/self/fd/{fd}" for fd in layers)
            _mount(
                b"overlay",
                target,
                b"overlay",
                _MS_RDONLY | _MS_NOSUID | _MS_NODEV,
                f"lowerdir={lowerdir}".encode(),
            )
        except OSError:
            target.rmdir()
            raise
        finally:
            for fd in layers:
                os.close(fd)
        return target

    @staticmethod
    def _unmount(path: Path) -> None:
        detach(path)
        path.rmdir()


def remove_stale_views(views_root: Path) -> int:
    """Unmount the views of factories whose process is gone; returns how many factories' views."""
    removed = 0
    for directory in views_root.iterdir() if views_root.is_dir() else ():
        if owners.alive(directory.name.split("-", 1)[0]):
            continue
        detach(directory)
        directory.rmdir()
        removed += 1
    return removed
