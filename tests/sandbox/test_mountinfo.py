"""What a sandbox's /proc/self/mountinfo tells about the host: not where its code, runtime or code
slot live (overlayfs views and a tmpfs slots mount, see lambdad/sandbox/views.py), and the views go
with the factory."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lambdad.sandbox import Mount, SandboxUnavailable
from lambdad.sandbox.namespaces import NamespaceSandboxFactory
from tests.sandbox.support import RUNTIME_DIR, make_code_dir, py_spec, read_line, run

#: Prints its mountinfo as one line once its code is there (a spare waits for specialize()).
SHOW = """
import json, os, time
while not os.path.exists('/var/task/handler.py'):
    time.sleep(0.005)
print(json.dumps(open('/proc/self/mountinfo').read()), flush=True)
"""


@pytest.fixture
def factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    try:
        made = NamespaceSandboxFactory(state_dir=tmp_path / "state-marker")
    except SandboxUnavailable as exc:
        pytest.skip(f"isolated sandboxes are unavailable here: {exc}")
    yield made
    asyncio.run(made.close())


def _host_paths(tmp_path: Path) -> list[str]:
    return [str(tmp_path), tmp_path.name, "state-marker", "code-marker", "runtime-marker"]


def test_mountinfo_shows_no_host_path_of_code_or_runtime(factory: NamespaceSandboxFactory, tmp_path: Path):
    import json

    code = make_code_dir(tmp_path / "code-marker")
    runtime = make_code_dir(tmp_path / "runtime-marker")
    spec = py_spec(
        SHOW,
        code,
        mounts=[
            Mount(RUNTIME_DIR, str(RUNTIME_DIR)),
            Mount(code, "/var/task"),
            Mount(runtime, "/var/runtime"),
        ],
    )
    result = asyncio.run(run(factory, spec))
    assert result.status == 0, result.output
    mountinfo = json.loads(result.output)
    task = next(line for line in mountinfo.splitlines() if " /var/task " in line)
    assert task.split()[3] == "/"  # the root of its own filesystem, not a host directory
    leaked = [marker for marker in _host_paths(tmp_path) if marker in mountinfo]
    assert leaked == [], mountinfo


def test_a_spares_code_slot_shows_no_host_path(factory: NamespaceSandboxFactory, tmp_path: Path):
    import json

    code = make_code_dir(tmp_path / "code-marker")

    async def scenario() -> str:
        spec = py_spec(
            SHOW,
            code,
            mounts=[Mount(RUNTIME_DIR, str(RUNTIME_DIR))],
            code_slot="/var/task",
            label="spare-test",
        )
        sandbox = await factory.create(spec)
        try:
            await sandbox.specialize(code, 256, label="fn-shown")  # type: ignore[attr-defined]
            return await asyncio.to_thread(read_line, sandbox.output)
        finally:
            await sandbox.destroy()
            os.close(sandbox.output)

    mountinfo = json.loads(asyncio.run(scenario()))
    leaked = [marker for marker in [*_host_paths(tmp_path), "/slots"] if marker in mountinfo]
    assert leaked == [], mountinfo


def test_views_are_unmounted_when_the_factory_closes(factory: NamespaceSandboxFactory, tmp_path: Path):
    code = make_code_dir(tmp_path / "code-marker")
    spec = py_spec("pass", code, mounts=[Mount(RUNTIME_DIR, str(RUNTIME_DIR)), Mount(code, "/var/task")])
    assert asyncio.run(run(factory, spec)).status == 0
    views = tmp_path / "state-marker" / "views"
    assert str(views) in Path("/proc/self/mountinfo").read_text(), "kept for the next sandbox"
    asyncio.run(factory.close())
    assert str(views) not in Path("/proc/self/mountinfo").read_text()
    assert list(views.iterdir()) == []


def test_views_are_shared_renewed_with_the_directory_and_idle_ones_bounded(tmp_path: Path):
    from lambdad.sandbox.views import Views

    views = Views(tmp_path / "state", idle_kept=1)
    dirs = [make_code_dir(tmp_path / f"dir{n}") for n in range(3)]
    try:
        first = views.acquire(dirs[0])
        assert views.acquire(dirs[0]) == first, "one view per directory"
        assert (first / "handler.py").read_text() == (dirs[0] / "handler.py").read_text()
        others = [views.acquire(d) for d in dirs[1:]]
        for view in (first, first, *others):
            views.release(view)
        mounted = Path("/proc/self/mountinfo").read_text()
        assert sum(str(view) in mounted for view in (first, *others)) == 1, "one idle view kept"
        # A directory removed and made again (code unpacked anew) gets a new view, not the old one.
        kept = next(view for view in (first, *others) if view.exists() and str(view) in mounted)
        source = dirs[(first, *others).index(kept)]
        (source / "handler.py").unlink()
        source.rmdir()
        make_code_dir(source)
        (source / "new.py").write_text("")
        assert (views.acquire(source) / "new.py").exists()
    finally:
        views.close()
    assert str(tmp_path / "state") not in Path("/proc/self/mountinfo").read_text()
