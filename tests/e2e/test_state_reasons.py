"""A function that cannot be prepared becomes Failed with a StateReason that says what failed, never
where on the host (the server log keeps the detail, with the function's name)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.invoke_support import ACTIVE_WAIT, start_server, unique
from tests.support import ROLE, Server, make_zip

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose runtime clients cannot be installed: their directory is a file."""
    directory = tmp_path_factory.mktemp("lambdad")
    (directory / "data").mkdir()
    (directory / "data" / "no-runtimes").write_text("not a directory")
    running = start_server(directory, env={"LAMBDAD_RUNTIMES_DIR": str(directory / "data" / "no-runtimes")})
    yield running
    running.stop(timeout=60)


def failed(client: Any, name: str, code: bytes) -> dict[str, Any]:
    """CreateFunction, then the configuration once the function settled (Failed, here)."""
    client.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="handler.handler", Code={"ZipFile": code}
    )
    waiter = client.get_waiter("function_active_v2")
    with pytest.raises(Exception, match="Failed"):
        waiter.wait(FunctionName=name, WaiterConfig=ACTIVE_WAIT)
    return dict(client.get_function_configuration(FunctionName=name))


def assert_no_host_path(server: Server, *texts: str) -> None:
    data_dir = str(Path(server.data_dir).resolve())
    for text in texts:
        assert data_dir not in text and str(server.data_dir) not in text
        assert "/tmp/" not in text and "/root/" not in text and "Errno" not in text


def test_runtime_client_that_cannot_be_installed_fails_without_host_paths(server: Server) -> None:
    client = server.client()
    name = unique("no-runtime")
    config = failed(client, name, make_zip())
    assert config["State"] == "Failed"
    assert config["StateReasonCode"] == "InternalError"
    assert config["StateReason"] == "The runtime client for python3.12 could not be installed on this server."
    with pytest.raises(client.exceptions.ResourceConflictException) as refused:
        client.invoke(FunctionName=name)
    assert_no_host_path(
        server, config["StateReason"], config.get("LastUpdateStatusReason", ""), str(refused.value)
    )


def test_code_that_cannot_be_unpacked_fails_without_host_paths(server: Server) -> None:
    client = server.client()
    tasks = Path(server.data_dir) / "tasks"
    shutil.rmtree(tasks, ignore_errors=True)
    tasks.write_text("not a directory")  # every unpack now fails
    try:
        config = failed(client, unique("no-unpack"), make_zip({"handler.py": "# unpacked nowhere\n"}))
    finally:
        tasks.unlink()
    assert config["State"] == "Failed"
    assert config["StateReason"] == "The function's code could not be unpacked."
    assert_no_host_path(server, config["StateReason"], config.get("LastUpdateStatusReason", ""))
