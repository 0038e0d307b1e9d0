"""The exact command that starts a runtime inside an execution environment.

Paths are as the runtime sees them (code at ``task_root``, layers at ``opt_root``, the runtime directory at
``runtime_dir``). The process also needs the standard environment (``environment.standard_environment``):
at least ``AWS_LAMBDA_RUNTIME_API`` and ``_HANDLER``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lambdad.runtimes.environment import OPT_ROOT, RUNTIME_DIR, TASK_ROOT, language_paths
from lambdad.runtimes.install import NODE_CLIENT
from lambdad.runtimes.registry import Family, Interpreter, spec


@dataclass(frozen=True, slots=True)
class LaunchCommand:
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)  # additions to the standard environment
    note: str | None = None  # for the function's init log (an interpreter MISMATCH), never silent


class InvalidEntrypoint(Exception):
    """A ``provided`` function with no bootstrap; AWS reports it as ``Runtime.InvalidEntrypoint``."""

    error_type = "Runtime.InvalidEntrypoint"


def launch_command(
    runtime: str,
    interpreter: Interpreter,
    handler: str,
    *,
    task_root: str = TASK_ROOT,
    opt_root: str = OPT_ROOT,
    runtime_dir: str = RUNTIME_DIR,
    code_dir: Path | None = None,
    layers_dir: Path | None = None,
) -> LaunchCommand:
    """How to start ``runtime``.

    Python: ``python3.X -S -m awslambdaric <handler>`` (``-S``: none of the host interpreter's
    site-packages leak in; the runtime dir on PYTHONPATH provides awslambdaric and boto3). Node.js: ``node``
    running aws-lambda-ric (3.x takes the handler as its argument, 4.x reads ``_HANDLER``).
    ``provided``: ``task_root/bootstrap``, else ``opt_root/bootstrap``; ``code_dir``/``layers_dir`` are
    the host directories behind them, used only to look for the file (default: the paths themselves).
    """
    rt = spec(runtime)
    env = language_paths(runtime, task_root=task_root, opt_root=opt_root, runtime_dir=runtime_dir)
    if rt.family is Family.PROVIDED:
        return LaunchCommand((_bootstrap(task_root, opt_root, code_dir, layers_dir),), env)
    if interpreter.path is None:
        raise ValueError(f"{runtime} needs an interpreter")
    if rt.family is Family.PYTHON:
        argv = (str(interpreter.path), "-S", "-m", "awslambdaric", handler)
        return LaunchCommand(argv, env, interpreter.note)
    node_argv = (str(interpreter.path), f"{runtime_dir}/{NODE_CLIENT}", handler)
    return LaunchCommand(node_argv, env, interpreter.note)


def zygote_command(
    runtime: str,
    interpreter: Interpreter,
    *,
    task_root: str = TASK_ROOT,
    opt_root: str = OPT_ROOT,
    runtime_dir: str = RUNTIME_DIR,
) -> LaunchCommand:
    """How to start a spare (pre-initialised) runtime for ``runtime``: Python only.

    ``python3.X -S -c <python_zygote.py>``: the zygote imports awslambdaric, then waits for lambdad to hand
    it a function, and runs awslambdaric as ``launch_command`` would (see :mod:`.python_zygote`).
    """
    rt = spec(runtime)
    if rt.family is not Family.PYTHON or interpreter.path is None:
        raise ValueError(f"{runtime} has no spare runtime")
    env = language_paths(runtime, task_root=task_root, opt_root=opt_root, runtime_dir=runtime_dir)
    return LaunchCommand((str(interpreter.path), "-S", "-c", _zygote_source()), env, interpreter.note)


@functools.cache
def _zygote_source() -> str:
    return (Path(__file__).parent / "python_zygote.py").read_text()


def _bootstrap(task_root: str, opt_root: str, code_dir: Path | None, layers_dir: Path | None) -> str:
    candidates = [
        (f"{task_root}/bootstrap", (code_dir or Path(task_root)) / "bootstrap"),
        (f"{opt_root}/bootstrap", (layers_dir or Path(opt_root)) / "bootstrap"),
    ]
    for inside, on_host in candidates:
        if on_host.is_file() and os.access(on_host, os.X_OK):
            return inside
    names = " ".join(inside for inside, _ in candidates)
    raise InvalidEntrypoint(f"Couldn't find valid bootstrap(s): [{names}]")
