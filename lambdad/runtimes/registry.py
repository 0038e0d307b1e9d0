"""Which AWS runtime identifiers lambdad knows, and which interpreter on this host runs each one."""

from __future__ import annotations

import enum
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class Family(enum.StrEnum):
    PYTHON = "python"
    NODEJS = "nodejs"
    PROVIDED = "provided"


@dataclass(frozen=True, slots=True)
class RuntimeSpec:
    """One AWS runtime identifier, e.g. ``python3.12`` (language version ``(3, 12)``) or ``nodejs20.x``."""

    identifier: str
    family: Family
    version: tuple[int, ...]  # (3, 12) for python3.12, (20,) for nodejs20.x, () for provided
    deprecated: bool = False

    @property
    def execution_env(self) -> str:
        """The value of ``AWS_EXECUTION_ENV`` (AWS sets none for the OS-only ``provided`` runtimes)."""
        return f"AWS_Lambda_{self.identifier}"


def _specs() -> dict[str, RuntimeSpec]:
    specs = [
        RuntimeSpec("python3.9", Family.PYTHON, (3, 9), deprecated=True),
        RuntimeSpec("python3.10", Family.PYTHON, (3, 10)),
        RuntimeSpec("python3.11", Family.PYTHON, (3, 11)),
        RuntimeSpec("python3.12", Family.PYTHON, (3, 12)),
        RuntimeSpec("python3.13", Family.PYTHON, (3, 13)),
        RuntimeSpec("python3.14", Family.PYTHON, (3, 14)),
        RuntimeSpec("nodejs18.x", Family.NODEJS, (18,), deprecated=True),
        RuntimeSpec("nodejs20.x", Family.NODEJS, (20,)),
        RuntimeSpec("nodejs22.x", Family.NODEJS, (22,)),
        RuntimeSpec("nodejs24.x", Family.NODEJS, (24,)),
        RuntimeSpec("provided.al2023", Family.PROVIDED, ()),
        RuntimeSpec("provided.al2", Family.PROVIDED, ()),
    ]
    return {spec.identifier: spec for spec in specs}


RUNTIMES: Mapping[str, RuntimeSpec] = _specs()


class UnknownRuntime(LookupError):
    """Not an AWS runtime identifier lambdad supports."""


class RuntimeNotAvailable(LookupError):
    """No interpreter on this host can run the runtime, not even a mismatched one."""


def spec(runtime: str) -> RuntimeSpec:
    try:
        return RUNTIMES[runtime]
    except KeyError:
        raise UnknownRuntime(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}") from None


@dataclass(frozen=True, slots=True)
class Interpreter:
    """The host program that runs a runtime. ``note`` is set, in words for the function's init log, when
    it is not the version the runtime names (it never differs silently)."""

    runtime: str
    path: Path | None  # None for the ``provided`` family: the function's own bootstrap is the program
    version: str  # "3.12.1", "20.20.2"; "" for provided
    note: str | None = None

    @property
    def minor(self) -> str:
        """``3.12`` for a Python interpreter, ``20`` for Node.js: the key of its runtime install dir."""
        parts = self.version.split(".")
        return ".".join(parts[:2]) if self.runtime.startswith("python") else parts[0]


def default_pyenv_root() -> Path:
    """``$PYENV_ROOT``, else ``~/.pyenv`` (what ``pyenv root`` prints, without paying for the shim)."""
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def find_interpreter(
    runtime: str,
    *,
    overrides: Mapping[str, str | Path] | None = None,
    pyenv_root: Path | None = None,
    search_path: str | None = None,
) -> Interpreter:
    """The interpreter that runs ``runtime`` here.

    ``overrides`` maps a runtime identifier to an interpreter path chosen by the caller (taken as is).
    Python: the pyenv CPython of the same minor under ``pyenv_root``/versions, else ``python3.X`` on the
    search path, else the closest minor available (with a MISMATCH note). Node.js: ``node`` on the search
    path (with a MISMATCH note when its major differs). ``provided``: no interpreter.
    """
    rt = spec(runtime)
    if overrides and runtime in overrides:
        path = Path(overrides[runtime])
        return Interpreter(runtime, path, _version_of(rt.family, path))
    if rt.family is Family.PROVIDED:
        return Interpreter(runtime, None, "")
    if rt.family is Family.PYTHON:
        return _find_python(rt, pyenv_root or default_pyenv_root(), search_path)
    return _find_node(rt, search_path)


def _find_python(rt: RuntimeSpec, pyenv_root: Path, search_path: str | None) -> Interpreter:
    wanted = rt.version
    candidates = _pyenv_pythons(pyenv_root)
    for version, path in candidates:
        if version[:2] == wanted:
            return Interpreter(rt.identifier, path, ".".join(map(str, version)))
    name = f"python{wanted[0]}.{wanted[1]}"
    found = shutil.which(name, path=search_path)
    if found:
        path = Path(found)
        return Interpreter(rt.identifier, path, _version_of(Family.PYTHON, path))
    if not candidates:
        raise RuntimeNotAvailable(
            f"no Python interpreter for {rt.identifier}: none under {pyenv_root}/versions"
        )

    def distance(candidate: tuple[tuple[int, ...], Path]) -> tuple[int, int]:
        version = candidate[0]
        return (abs(version[1] - wanted[1]) if version[0] == wanted[0] else 100, -version[1])

    version, path = min(candidates, key=distance)
    actual = ".".join(map(str, version))
    note = (
        f"MISMATCH: runtime {rt.identifier} asks for Python {wanted[0]}.{wanted[1]}, which this host does "
        f"not have; running CPython {actual} ({path}) instead."
    )
    return Interpreter(rt.identifier, path, actual, note)


def _pyenv_pythons(pyenv_root: Path) -> list[tuple[tuple[int, ...], Path]]:
    """CPython builds under pyenv (``versions/3.12.1/bin/python3.12``), newest patch first per minor."""
    found: list[tuple[tuple[int, ...], Path]] = []
    versions = pyenv_root / "versions"
    if not versions.is_dir():
        return found
    for entry in versions.iterdir():
        if not re.fullmatch(r"\d+\.\d+\.\d+", entry.name):
            continue
        version = tuple(int(part) for part in entry.name.split("."))
        binary = entry / "bin" / f"python{version[0]}.{version[1]}"
        if version >= (3, 0, 0) and binary.is_file() and os.access(binary, os.X_OK):
            found.append((version, binary))
    found.sort(reverse=True)
    return found


def _find_node(rt: RuntimeSpec, search_path: str | None) -> Interpreter:
    found = shutil.which("node", path=search_path)
    if not found:
        raise RuntimeNotAvailable(f"no Node.js interpreter for {rt.identifier}: no 'node' on the PATH")
    path = Path(found)
    version = _version_of(Family.NODEJS, path)
    note = None
    if version.split(".")[0] != str(rt.version[0]):
        note = (
            f"MISMATCH: runtime {rt.identifier} asks for Node.js {rt.version[0]}, which this host does not "
            f"have; running Node.js {version} ({path}) instead."
        )
    return Interpreter(rt.identifier, path, version, note)


@functools.cache
def _version_of(family: Family, path: Path) -> str:
    """The interpreter's own version (one exec, cached per path)."""
    if family is Family.PYTHON:
        argv = [str(path), "-S", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]
    elif family is Family.NODEJS:
        argv = [str(path), "--version"]
    else:
        return ""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeNotAvailable(f"cannot run {path}: {exc}") from exc
    return out.strip().lstrip("v")
