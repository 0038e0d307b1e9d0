"""What a restart keeps, and what a crash cannot tear."""

from __future__ import annotations

import hashlib
import signal
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.support import Server, create_function, make_zip

pytestmark = pytest.mark.e2e


def test_restart_keeps_functions_code_and_tags(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        client = server.client()
        create_function(client, "survivor", Tags={"keep": "me"}, MemorySize=384)
        before = client.get_function(FunctionName="survivor")
    finally:
        # uvicorn re-raises the signal after its graceful shutdown, so the status is -SIGTERM.
        assert server.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log_path.read_text()
    server.start()
    try:
        client = server.client()
        after = client.get_function(FunctionName="survivor")
        assert after["Configuration"] == before["Configuration"]
        assert after["Tags"] == {"keep": "me"}
        with urllib.request.urlopen(after["Code"]["Location"]) as response:
            assert hashlib.sha256(response.read()).digest().hex() == hashlib.sha256(make_zip()).hexdigest()
    finally:
        server.stop()


def test_sigkill_during_creates_leaves_only_whole_functions(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    client = server.client()
    packages = {f"crash-{i}": make_zip({"handler.py": f"# {i}\n" + "x = 1\n" * 2000}) for i in range(40)}
    stop = threading.Event()

    def create_all(names: list[str]) -> None:
        for name in names:
            if stop.is_set():
                return
            try:
                create_function(client, name, wait=False, Code={"ZipFile": packages[name]})
            except Exception:
                return  # the server died under us, as intended

    names = list(packages)
    workers = [threading.Thread(target=create_all, args=(names[i::4],)) for i in range(4)]
    for worker in workers:
        worker.start()
    # Kill once some creates have landed, while others are in flight.
    while len(list((tmp_path / "data" / "code").glob("??/*.zip"))) < 8:
        pass
    server.stop(signal.SIGKILL)
    stop.set()
    for worker in workers:
        worker.join()

    server.start()
    try:
        client = server.client()
        listed = client.list_functions(MaxItems=100)["Functions"]
        assert listed, "some creates should have landed before the kill"
        for config in listed:
            name = config["FunctionName"]
            client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
            location = client.get_function(FunctionName=name)["Code"]["Location"]
            with urllib.request.urlopen(location) as response:
                assert response.read() == packages[name]
        stored = {p.stem for p in (tmp_path / "data" / "code").glob("??/*.zip")}
        expected = {hashlib.sha256(packages[c["FunctionName"]]).hexdigest() for c in listed}
        assert stored == expected, "packages no function refers to are removed at start-up"
        assert not list((tmp_path / "data" / "code").glob("??/.incoming-*"))
    finally:
        server.stop()


def test_serve_refuses_a_bad_account_id_with_a_clear_message(tmp_path: Path) -> None:
    import subprocess

    from tests.support import LAMBDAD

    result = subprocess.run(
        [str(LAMBDAD), "serve", "--account-id", "123", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "account id must be 12 digits" in result.stderr
