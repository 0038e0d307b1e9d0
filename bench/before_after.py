"""The single server before and after the cluster (issue 11): the warm invoke of the embedded server
(SQLite, no NATS) built from the commit before the cluster work, against this checkout's.

The earlier code is taken from git (``git archive BEFORE``) and run with this checkout's virtualenv (its
dependencies are a subset of today's), so nothing is installed. The two servers take turns, round after
round, at 1 and 4 clients, as in ``warm_invoke``. Without git history (a shallow or exported copy) the
rows say so instead.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import (
    FULL_VCPU_MB,
    INVOKE_PATH,
    RUNTIMES_DIR,
    Endpoint,
    Progress,
    Row,
    compare_warm_invokes,
    lambdad_server,
)
from tests.support import Server, create_function

# The last commit before issue 11's cluster work: the single server as it was.
BEFORE = "5ef9d91"


class _Earlier(Server):
    """A ``lambdad serve`` of the code in ``source``."""

    source: Path = Path()

    def _spawn(self, log: Any) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "lambdad.cli", "serve", "--port", str(self.port)]
        return subprocess.Popen(
            [*command, "--data-dir", str(self.data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(self.source)},
            cwd=self.source,
        )


@contextlib.contextmanager
def _earlier_server(directory: Path) -> Iterator[Server | None]:
    root = Path(__file__).resolve().parent.parent
    source = directory / "before"
    source.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", BEFORE, "lambdad"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        yield None
        return
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    server = _Earlier(directory / "data")
    server.source = source
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


def run(progress: Progress) -> list[Row]:
    os.environ.setdefault("LAMBDAD_RUNTIMES_DIR", RUNTIMES_DIR)
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lambdad-bench-before-")))
        progress(f"single server before the cluster ({BEFORE}) vs now: starting both...")
        earlier = stack.enter_context(_earlier_server(directory))
        if earlier is None:
            note = f"commit {BEFORE} is not in this checkout's history"
            return [
                Row("single server warm invoke, before vs after the cluster", "", "", None, None, note=note)
            ]
        now = stack.enter_context(lambdad_server())
        servers = {"before": earlier, "now": now}
        endpoints = {}
        for name, server in servers.items():
            create_function(server.client(), "hello", MemorySize=FULL_VCPU_MB)
            assert server.process is not None
            endpoints[name] = Endpoint(server.port, INVOKE_PATH.format(name="hello"), server.process.pid)
        rows = compare_warm_invokes(
            endpoints["now"],
            endpoints["before"],
            "single server warm invoke",
            f"the same before the cluster ({BEFORE})",
            progress,
        )
    return rows
