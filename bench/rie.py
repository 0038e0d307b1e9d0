"""AWS's Runtime Interface Emulator (``aws-lambda-rie``) as a baseline: AWS's own Runtime API server.

The binary ships inside the aws-sam-cli wheel on PyPI (``samcli/local/rapid/aws-lambda-rie-<arch>``).
It is downloaded once with pip and cached under ``~/.cache/lambdad-bench`` (never committed);
``LAMBDAD_BENCH_RIE`` names a binary to use instead. It runs as a plain process (no sandbox) with the
same interpreter, flags and awslambdaric install as lambdad's Python runtime, and serves one invocation
at a time: one emulator is one execution environment.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from bench.common import Endpoint, Progress, runtimes_dir, stop, wait_http
from tests.support import free_port

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lambdad-bench"
PATH = "/2015-03-31/functions/function/invocations"
ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


class Unavailable(Exception):
    """The emulator cannot be had here; the message says why."""


def binary(progress: Progress) -> Path:
    """The emulator binary: ``$LAMBDAD_BENCH_RIE``, the cached one, or one fetched from PyPI now."""
    if configured := os.environ.get("LAMBDAD_BENCH_RIE"):
        return Path(configured)
    arch = ARCHES.get(platform.machine())
    if arch is None:
        raise Unavailable(f"no aws-lambda-rie build for {platform.machine()}")
    cached = CACHE / f"aws-lambda-rie-{arch}"
    if cached.is_file():
        return cached
    progress("downloading aws-sam-cli from PyPI for its aws-lambda-rie binary...")
    with tempfile.TemporaryDirectory() as directory:
        command = [sys.executable, "-m", "pip", "download", "-q", "aws-sam-cli", "--no-deps", "-d", directory]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=180)
        except (subprocess.SubprocessError, OSError) as error:
            detail = getattr(error, "stderr", b"") or b""
            raise Unavailable(
                f"pip download aws-sam-cli failed: {detail.decode()[-300:] or error}"
            ) from error
        wheels = list(Path(directory).glob("aws_sam_cli-*.whl"))
        if not wheels:
            raise Unavailable("pip download aws-sam-cli gave no wheel")
        member = f"samcli/local/rapid/aws-lambda-rie-{arch}"
        with zipfile.ZipFile(wheels[0]) as wheel:
            if member not in wheel.namelist():
                raise Unavailable(f"{wheels[0].name} has no {member}")
            CACHE.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".partial")
            partial.write_bytes(wheel.read(member))
    partial.chmod(0o755)
    partial.rename(cached)
    return cached


@contextlib.contextmanager
def emulator(rie: Path, handler_dir: Path, python: Path) -> Iterator[Endpoint]:
    """One emulator running ``python -S -m awslambdaric handler.handler`` (as lambdad starts Python)."""
    port = free_port()
    python_dir = runtimes_dir() / f"python{'.'.join(python.name.removeprefix('python').split('.')[:2])}"
    env = {
        "PATH": f"{python.parent}:/usr/bin:/bin",
        "PYTHONPATH": f"{handler_dir}:{python_dir}",
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TASK_ROOT": str(handler_dir),
    }
    # Its own Runtime API port too (the default, 9001, would collide with a second emulator).
    command = [str(rie), "--runtime-interface-emulator-address", f"127.0.0.1:{port}"]
    command += ["--runtime-api-address", f"127.0.0.1:{free_port()}"]
    command += [str(python), "-S", "-m", "awslambdaric", "handler.handler"]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=handler_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its runtime child goes with it
    )
    try:
        wait_http(port, process, "aws-lambda-rie")
        yield Endpoint(port, PATH, process.pid)
    finally:
        stop(process, group=True)
