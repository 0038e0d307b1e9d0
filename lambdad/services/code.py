"""Checking an uploaded code package before it is stored.

A package is refused at upload (as AWS refuses a zip it cannot unzip) when unpacking it under
``/var/task`` or ``/opt`` could not give back exactly what it holds: a corrupt member, a name the file
system cannot hold, a name that escapes the package, a name that is both a file and a directory, a name
given twice, or a symbolic link leading outside the package. Otherwise such a zip would be accepted and
then fail at activation.
"""

from __future__ import annotations

import hashlib
import io
import logging
import posixpath
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from lambdad.errors import (
    CodeStorageExceededException,
    InvalidParameterValueException,
    RequestTooLargeException,
)
from lambdad.models import CodePackage
from lambdad.services import limits
from lambdad.store import CodeStore
from lambdad.store import functions as function_records

log = logging.getLogger(__name__)

_NOT_A_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."
# Linux's limits: NAME_MAX for one path component, PATH_MAX (with its NUL) for the whole path as the
# function opens it, i.e. below /var/task/.
NAME_MAX = 255
PATH_MAX = 4096
_UNPACKED_UNDER = "/var/task/"
# The file system block the storage count rounds every unpacked member up to.
BLOCK = 4096


class _Refused(Exception):
    """A member the package may not hold (the reason goes to the server log, not the client)."""


def check_package(data: bytes) -> CodePackage:
    """A zip as a package (digest, sizes), after checking it is a readable zip within AWS's size limits
    whose members unpack to what they say (see the module's docstring)."""
    digest = hashlib.sha256(data).hexdigest()
    unzipped, members = _unzipped_size(data)
    return CodePackage(digest, len(data), unzipped, disk_size(len(data), members))


def disk_size(zipped: int, members: list[zipfile.ZipInfo]) -> int:
    """What a package takes on disk, as the code-storage limit counts it: the zip, and every member
    unpacked in whole blocks, at least one each (an empty file or a folder still costs an inode and a
    directory entry), so that a zip of many tiny files counts for what it fills, not for its bytes."""
    return zipped + sum(max(-(-info.file_size // BLOCK) * BLOCK, BLOCK) for info in members)


def _unzipped_size(data: bytes) -> tuple[int, list[zipfile.ZipInfo]]:
    if len(data) > limits.ZIPPED_CODE_MAX:
        raise RequestTooLargeException(f"Zipped size must be smaller than {limits.ZIPPED_CODE_MAX} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            total = sum(info.file_size for info in members)
            if total > limits.UNZIPPED_CODE_MAX:
                raise InvalidParameterValueException(
                    f"Unzipped size must be smaller than {limits.UNZIPPED_CODE_MAX} bytes"
                )
            # Reads every member and checks its CRC: a truncated or corrupt zip fails here, not at a
            # cold start.
            if archive.testzip() is not None:
                raise InvalidParameterValueException(_NOT_A_ZIP)
            _check_names(archive, members)
    except _Refused as refused:
        log.info("refused a code package: %s", refused)
        raise InvalidParameterValueException(_NOT_A_ZIP) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise InvalidParameterValueException(_NOT_A_ZIP) from error
    return total, members


@contextmanager
def storing(code_store: CodeStore, zip_bytes: bytes, package: CodePackage) -> Iterator[None]:
    """Store a package for the record the block commits: held from before it is written until the
    block ends, so that the reclaimer cannot take it in between; if the block fails, the reclaimer is
    told to look (the package may be referenced by nothing)."""
    with code_store.holds.holding([package.sha256_hex]):
        code_store.put(zip_bytes)
        try:
            yield
        except BaseException:
            code_store.holds.dereferenced()
            raise


def check_storage(connection: Connection, package: CodePackage, limit: int) -> None:
    """lambdad's code-storage limit, which protects the server's disk: every package stored (function
    code and layers, of every region; one package used many times once) counts with what it takes on
    disk (``disk_size``: its zip and its unpacked tree, both kept). AWS's quota counts zipped bytes."""
    packages = function_records.code_in_use(connection).packages
    if package.sha256_hex in packages:
        return  # already stored and unpacked: nothing more on disk
    if sum(packages.values()) + package.stored_size > limit:
        raise CodeStorageExceededException("Code storage limit exceeded.")


def _check_names(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> None:
    """Every member unpacks to a path of its own inside the package, within the file system's limits."""
    files: set[tuple[str, ...]] = set()  # regular files and symbolic links
    directories: set[tuple[str, ...]] = set()  # named, or implied by a deeper member
    for info in members:
        parts = _parts(info.filename)
        if not parts:
            continue  # "./" or "/": the package's root itself
        parents = {parts[:depth] for depth in range(1, len(parts))}
        if parents & files:
            raise _Refused(f"{info.filename!r} lies under a member that is a file")
        directories |= parents
        if info.is_dir():
            if parts in files:
                raise _Refused(f"{info.filename!r} is both a file and a directory")
            directories.add(parts)
            continue
        if parts in directories:
            raise _Refused(f"{info.filename!r} is both a file and a directory")
        if parts in files:
            raise _Refused(f"{info.filename!r} is in the package twice")
        files.add(parts)
        if stat.S_ISLNK(info.external_attr >> 16):
            _check_link(parts, archive.read(info))


def _parts(name: str) -> tuple[str, ...]:
    """A member name's path components, refusing names that leave the package or pass the limits."""
    if name.startswith("/") or "\0" in name:
        raise _Refused(f"{name!r} is an absolute path")
    if len((_UNPACKED_UNDER + name).encode()) >= PATH_MAX:
        raise _Refused(f"a name of {len(name.encode())} bytes is longer than a path may be")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    for part in parts:
        if part == "..":
            raise _Refused(f"{name!r} leads outside the package")
        if len(part.encode()) > NAME_MAX:
            raise _Refused(f"a path component of {len(part.encode())} bytes is longer than a name may be")
    return parts


def _check_link(parts: tuple[str, ...], target: bytes) -> None:
    """A symbolic link may point anywhere inside the package, nowhere outside it."""
    text = target.decode(errors="replace")
    if text.startswith("/"):
        raise _Refused(f"the link {'/'.join(parts)!r} points at the absolute path {text!r}")
    resolved = posixpath.normpath(posixpath.join("/".join(parts[:-1]), text))
    if resolved == ".." or resolved.startswith("../"):
        raise _Refused(f"the link {'/'.join(parts)!r} points outside the package")
