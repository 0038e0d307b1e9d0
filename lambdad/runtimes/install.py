"""Installing a runtime's own client into a runtime directory (AWS's /var/runtime), once per interpreter.

Python: AWS's ``awslambdaric`` plus ``boto3`` (importable in every AWS Python function), installed with the
interpreter's own pip (``--target``), never into user code or lambdad's venv. Node.js: AWS's
``aws-lambda-ric`` from npm (it compiles a small native addon with curl and aws-lambda-cpp: needs make,
cmake and a C++ compiler; about a minute). ``provided`` needs nothing.

Directories are keyed by the interpreter actually used (``python3.13`` for a python3.14 function running on
3.13), written to a temporary sibling and renamed into place under a file lock, so concurrent callers and
interrupted installs never see half a directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType

from lambdad.runtimes.registry import Family, Interpreter, find_interpreter, spec

PYTHON_PACKAGES: tuple[str, ...] = ("awslambdaric>=4.0.4,<5", "boto3")  # 4.0.4 is the last for 3.9
# AWS's Node.js client: the 3.x line serves nodejs18.x-22.x (callback handlers allowed); 4.x is the
# nodejs24.x client (it refuses callback handlers, as AWS does from Node.js 24 on).
NODE_PACKAGES: Mapping[int, tuple[str, ...]] = MappingProxyType(
    {18: ("aws-lambda-ric@3.3.0",), 20: ("aws-lambda-ric@3.3.0",), 22: ("aws-lambda-ric@3.3.0",)}
)
NODE24_PACKAGES: tuple[str, ...] = ("aws-lambda-ric@4.0.2",)
MARKER = ".lambdad-runtime.json"
NODE_CLIENT = "lambdad-node-client.mjs"  # written at install: imports the client package's own entry point


class InstallError(RuntimeError):
    """Installing a runtime's client failed; the message carries the installer's output."""


def default_packages(runtime: str) -> tuple[str, ...]:
    rt = spec(runtime)
    if rt.family is Family.PYTHON:
        return PYTHON_PACKAGES
    if rt.family is Family.NODEJS:
        return NODE_PACKAGES.get(rt.version[0], NODE24_PACKAGES)
    return ()


def runtime_dir_name(interpreter: Interpreter, packages: Sequence[str] | None = None) -> str:
    """``python3.12``, or ``node20-aws-lambda-ric-3.3.0``: one directory per interpreter minor (Python),
    per Node.js major and client version (Node.js)."""
    if spec(interpreter.runtime).family is Family.PYTHON:
        return f"python{interpreter.minor}"
    client = (packages or default_packages(interpreter.runtime))[0]
    return f"node{interpreter.minor}-" + re.sub(r"[^A-Za-z0-9.]+", "-", client).strip("-")


def ensure_installed(
    runtime: str,
    root_dir: Path,
    *,
    interpreter: Interpreter | None = None,
    packages: Sequence[str] | None = None,
    progress: Callable[[str], None] = print,
    timeout: float = 900,
) -> Path | None:
    """The runtime directory for ``runtime`` under ``root_dir``, installing it first if needed.

    Idempotent and safe to call from several processes at once. Returns None for ``provided`` runtimes.
    """
    rt = spec(runtime)
    if rt.family is Family.PROVIDED:
        return None
    interp = interpreter or find_interpreter(runtime)
    assert interp.path is not None
    wanted = list(packages or default_packages(runtime))
    target = root_dir / runtime_dir_name(interp, wanted)
    stamp: dict[str, object] = {
        "interpreter": str(interp.path),
        "version": interp.version,
        "packages": wanted,
    }
    if _installed(target, stamp):
        target.chmod(0o755)  # directories made before the fix above were 0700
        return target
    root_dir.mkdir(parents=True, exist_ok=True)
    with _locked(root_dir / f".{target.name}.lock"):
        if _installed(target, stamp):
            return target
        progress(f"lambdad: installing {' '.join(wanted)} for {runtime} ({interp.path}) into {target} ...")
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root_dir))
        staging.chmod(0o755)  # mkdtemp makes it 0700; functions run as an unprivileged uid
        try:
            if rt.family is Family.PYTHON:
                _pip_install(interp.path, staging, wanted, timeout)
            else:
                _npm_install(interp.path, staging, wanted, timeout)
            (staging / MARKER).write_text(json.dumps(stamp))
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        progress(f"lambdad: installed {target.name} in {time.monotonic() - started:.1f}s")
    return target


def _installed(target: Path, stamp: dict[str, object]) -> bool:
    try:
        return bool(json.loads((target / MARKER).read_text()) == stamp)
    except (OSError, ValueError):
        return False


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        raise InstallError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _pip_install(python: Path, target: Path, packages: list[str], timeout: float) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_USER": "0"}
    env.pop("PYTHONPATH", None)
    argv = [str(python), "-m", "pip", "install", "--quiet", "--no-warn-conflicts", "--target", str(target)]
    _run([*argv, *packages], env, timeout)


def _npm_install(node: Path, target: Path, packages: list[str], timeout: float) -> None:
    npm = node.parent / "npm"
    npm_cmd = str(npm) if npm.exists() else shutil.which("npm")
    if npm_cmd is None:
        raise InstallError("npm not found next to node nor on the PATH")
    (target / "package.json").write_text(json.dumps({"name": "lambdad-node-runtime", "private": True}))
    env = {**os.environ, "PATH": f"{node.parent}:{os.environ.get('PATH', '')}"}
    argv = [npm_cmd, "install", "--no-audit", "--no-fund", "--no-package-lock", "--omit=dev", *packages]
    _run(argv, env, timeout, cwd=target)
    package = target / "node_modules" / "aws-lambda-ric"
    try:
        manifest = json.loads((package / "package.json").read_text())
    except (OSError, ValueError) as exc:
        raise InstallError(f"npm install finished but aws-lambda-ric is missing in {target}: {exc}") from exc
    entry = manifest.get("bin", {}).get("aws-lambda-ric") or manifest.get("main") or "index.mjs"
    if not (package / entry).is_file():
        raise InstallError(f"aws-lambda-ric's entry point {entry} is missing in {package}")
    (target / NODE_CLIENT).write_text(f'import "./node_modules/aws-lambda-ric/{entry.removeprefix("./")}";\n')
