"""Code packages on disk, content-addressed by SHA-256.

A package is written to a temporary file, flushed to disk and renamed into place, so a crash leaves
either no file or the whole file. Records in the database point at packages; a package no record points
at (a crash between writing it and committing the record) is removed by the reclaimer, at start-up and
while the server runs, with packages nothing refers to or holds (``holds``: a writer holds its package's
digest from ``put`` until its record commits); ``remove_incomplete`` removes interrupted writes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Protocol

from lambdad.errors import CodeStorageExceededException
from lambdad.store.holds import CodeHolds

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class PackageMirror(Protocol):
    """Where packages live besides this disk, so that other servers can read them (a cluster's shared
    store, ``lambdad.cluster.code``); this disk is then a cache of it."""

    def publish(self, sha256_hex: str, data: bytes) -> None:
        """Keep ``data`` (idempotent); called after the local write, before the record commits."""

    def fetch(self, sha256_hex: str, out: BinaryIO) -> bool:
        """Write the package to ``out``; False if the mirror does not have it."""

    def collect(self, in_use: set[str]) -> int:
        """Remove what no record names (``in_use`` are the digests named); returns the count."""


class NoMirror:
    """A single server: its disk is the only place packages live."""

    def publish(self, sha256_hex: str, data: bytes) -> None:
        pass

    def fetch(self, sha256_hex: str, out: BinaryIO) -> bool:
        return False

    def collect(self, in_use: set[str]) -> int:
        return 0


class CodeStore:
    """Zip files under ``root/<first two hex digits>/<sha256 hex>.zip``."""

    def __init__(self, root: Path, mirror: PackageMirror | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        #: What keeps packages (and their unpacked trees) besides the records that name them.
        self.holds = CodeHolds()
        self.mirror: PackageMirror = mirror or NoMirror()
        self._fetching: dict[str, threading.Lock] = {}
        self._fetching_lock = threading.Lock()

    def path(self, sha256_hex: str) -> Path:
        """Where the package with this digest lives (whether or not it exists)."""
        return self.root / sha256_hex[:2] / f"{sha256_hex}.zip"

    def local(self, sha256_hex: str) -> Path:
        """The package on this disk, fetched from the mirror first if this server never had it (once,
        however many threads ask); FileNotFoundError if nobody has it."""
        target = self.path(sha256_hex)
        if target.exists():
            return target
        with self._fetching_lock:
            lock = self._fetching.setdefault(sha256_hex, threading.Lock())
        with lock:
            if not target.exists():
                self._fetch(sha256_hex, target)
        with self._fetching_lock:
            self._fetching.pop(sha256_hex, None)
        return target

    def _fetch(self, sha256_hex: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "w+b") as out:
                if not self.mirror.fetch(sha256_hex, out):
                    raise FileNotFoundError(f"code package {sha256_hex} is not stored")
                out.flush()
                out.seek(0)
                if hashlib.file_digest(out, "sha256").hexdigest() != sha256_hex:
                    raise OSError(f"code package {sha256_hex} arrived damaged")
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException as error:
            Path(temporary).unlink(missing_ok=True)
            if isinstance(error, OSError):
                _refuse_if_full(error)
            raise

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) here and in the mirror, and return its SHA-256 hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        self._write(digest, data)
        self.mirror.publish(digest, data)
        return digest

    def _write(self, digest: str, data: bytes) -> None:
        target = self.path(digest)
        if target.exists():
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        except OSError as error:
            _refuse_if_full(error)
            raise
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException as error:
            Path(temporary).unlink(missing_ok=True)
            if isinstance(error, OSError):
                _refuse_if_full(error)
            raise
        _fsync_dir(target.parent)

    def read(self, sha256_hex: str) -> bytes:
        """The package's bytes."""
        return self.local(sha256_hex).read_bytes()

    def digests(self) -> set[str]:
        """Every stored package's digest."""
        return {p.stem for p in self.root.glob("??/*.zip")}

    def remove(self, sha256_hex: str) -> None:
        """Remove a package (if stored)."""
        self.path(sha256_hex).unlink(missing_ok=True)

    def remove_incomplete(self) -> int:
        """Remove what interrupted writes left (only at start-up: a write may be under way later);
        returns the count."""
        removed = 0
        for leftover in self.root.glob("??/.incoming-*"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed


def _refuse_if_full(error: OSError) -> None:
    """A full disk as AWS's answer when code has no room, with the reason it has none here."""
    if error.errno in DISK_FULL:
        raise CodeStorageExceededException(
            "Code storage is full: no space left on the server's disk for the code package."
        ) from error


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
