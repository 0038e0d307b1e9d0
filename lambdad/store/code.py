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
from pathlib import Path

from lambdad.errors import CodeStorageExceededException
from lambdad.store.holds import CodeHolds

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class CodeStore:
    """Zip files under ``root/<first two hex digits>/<sha256 hex>.zip``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        #: What keeps packages (and their unpacked trees) besides the records that name them.
        self.holds = CodeHolds()

    def path(self, sha256_hex: str) -> Path:
        """Where the package with this digest lives (whether or not it exists)."""
        return self.root / sha256_hex[:2] / f"{sha256_hex}.zip"

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its SHA-256 hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
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
        return digest

    def read(self, sha256_hex: str) -> bytes:
        """The package's bytes."""
        return self.path(sha256_hex).read_bytes()

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
