"""The unisolated plain-process implementation's own behaviour (the contract is in test_contract)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdad.sandbox import Mount
from lambdad.sandbox.process import ProcessSandboxFactory, host_path
from tests.sandbox.support import PYTHON, py_spec, run

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every uid can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="lambdad-sandbox-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_mount_targets_are_translated_to_host_paths(code_dir: Path, tmp_path: Path) -> None:
    (code_dir / "main.py").write_text(
        "import os, json\nprint(json.dumps([os.getcwd(), os.environ['PYTHONPATH']]))\n"
    )
    layers = tmp_path / "layers"
    spec = py_spec(
        "",
        code_dir,
        argv=[PYTHON, "-I", "-S", "/var/task/main.py"],
        env={"PYTHONPATH": "/opt/python:/var/task:/elsewhere"},
        mounts=[Mount(code_dir, "/var/task"), Mount(layers, "/opt")],
    )
    assert host_path(spec, "/var/task/main.py") == str(code_dir / "main.py")
    assert host_path(spec, "/var/taskforce") == "/var/taskforce"
    result = asyncio.run(run(ProcessSandboxFactory(drop_privileges=False), spec))
    assert result.status == 0, result.output
    cwd, pythonpath = json.loads(result.output)
    assert cwd == str(code_dir)
    assert pythonpath == f"{layers}/python:{code_dir}:/elsewhere"


def test_runs_as_the_spec_uid_when_started_by_root(public_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can switch to the sandbox uid")
    system_python = shutil.which("python3", path="/usr/bin")
    if system_python is None:
        pytest.skip("no system python3 readable by the sandbox uid")
    code = "import os; print(os.getuid(), os.getgid(), os.getgroups())"
    spec = py_spec(
        "", public_dir, argv=[system_python, "-I", "-S", "-c", code], mounts=[Mount(public_dir, "/var/task")]
    )
    result = asyncio.run(run(ProcessSandboxFactory(), spec))
    assert result.status == 0, result.output
    assert result.output.split(maxsplit=2) == ["993", "990", "[]\n"]


def test_memory_peak_comes_from_the_process_rusage(code_dir: Path) -> None:
    spec = py_spec("data = b'x' * (64 << 20)", code_dir)
    result = asyncio.run(run(ProcessSandboxFactory(drop_privileges=False), spec))
    assert result.status == 0, result.output
    assert result.sandbox.memory_peak_bytes() >= 64 << 20


def test_creating_the_factory_warns_that_it_is_unisolated(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lambdad.sandbox.process"):
        factory = ProcessSandboxFactory()
    assert factory.isolated is False
    assert "UNISOLATED" in caplog.text
