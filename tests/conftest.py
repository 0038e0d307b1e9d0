"""Fixtures: a real lambdad server per test module, and boto3 clients for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdad.sandbox.cgroups import SandboxCgroups, remove_stale_cgroups
from tests.support import Server

CGROUP_ROOT = Path("/sys/fs/cgroup")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One lambdad server shared by a test module (tests use distinct function names)."""
    running = Server(tmp_path_factory.mktemp("lambdad") / "data").start()
    yield running
    running.stop()


@pytest.fixture
def client(server: Server) -> Any:
    return server.client()


@pytest.fixture
def unvalidated_client(server: Server) -> Any:
    """A client that sends what it is given, so the server's own validation answers."""
    return server.client(parameter_validation=False)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, on its own data directory."""
    running = Server(tmp_path / "data").start()
    yield running
    if running.process and running.process.poll() is None:
        running.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Figures tests record with ``record_property`` under a ``summary_`` name, e.g. the duplicate
    deliveries of the Event durability test, printed at the end of the run (also under xdist)."""
    figures = [
        (report.nodeid, name[len("summary_") :], value)
        for report in terminalreporter.stats.get("passed", [])
        for name, value in getattr(report, "user_properties", [])
        if name.startswith("summary_")
    ]
    if figures:
        terminalreporter.section("figures")
        for nodeid, name, value in figures:
            terminalreporter.write_line(f"{nodeid.rsplit('::', 1)[-1]}: {name} = {value}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the empty cgroups of sandboxes whose server a test SIGKILLed: a restarted server tidies
    those older than a minute, but the last kills of a run have no restart after them."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller tidies once every worker is done
    if remove_stale_cgroups(CGROUP_ROOT, "lambdad", older_than_s=0):
        SandboxCgroups(CGROUP_ROOT, "lambdad", "-", None).remove_parents()
