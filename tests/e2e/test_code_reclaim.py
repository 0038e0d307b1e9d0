"""Unused code is reclaimed without a restart (finding 6): zips under code/, unpacked trees under tasks/
and merged layers under opt/ go once no function version or layer version names them and no live
environment holds them; the code-storage limit counts unpacked bytes."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.attack_support import Victim, assert_unaffected
from tests.e2e.invoke_support import (
    ACTIVE_WAIT,
    deploy,
    eventually,
    invoke,
    server_fixture,
    start_server,
    unique,
    wait_updated,
)
from tests.support import Server, create_function

pytestmark = pytest.mark.e2e

server = server_fixture()

READER = """
import os, time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "data.txt")) as data:
        result = {"data": data.read(), "files": len(os.listdir(os.environ["LAMBDA_TASK_ROOT"]))}
    if event.get("sleep"):
        result["read_at"] = time.time()
    return result
"""


def package(data: str, padding: int = 0) -> bytes:
    """The reader's code with ``data.txt`` = ``data``, and ``padding`` zero bytes in ``pad.bin`` (which
    deflate to almost nothing: a small zip, a large unpacked tree)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("handler.py", READER)
        archive.writestr("data.txt", data)
        if padding:
            archive.writestr("pad.bin", bytes(padding))
    return buffer.getvalue()


def digest(zip_bytes: bytes) -> str:
    return hashlib.sha256(zip_bytes).hexdigest()


def on_disk(server: Server, sha: str) -> list[Path]:
    """What of the package with this digest is on the server's disk: its zip, its unpacked tree."""
    paths = [server.data_dir / "code" / sha[:2] / f"{sha}.zip", server.data_dir / "tasks" / sha]
    return [path for path in paths if path.exists()]


def merged_layers(server: Server, *layer_digests: str) -> Path:
    return server.data_dir / "opt" / hashlib.sha256("\n".join(layer_digests).encode()).hexdigest()


def reclaimed(server: Server, *paths: Path, sha: str | None = None) -> None:
    """Wait until the paths (and the package ``sha``) are gone from disk: the reclaimer runs in the
    background once nothing uses them."""

    def gone() -> bool:
        return not any(path.exists() for path in paths) and (sha is None or not on_disk(server, sha))

    eventually(gone, timeout=60)


def du(directory: Path) -> int:
    """Bytes of the files under ``directory``."""
    return (
        sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
        if directory.exists()
        else 0
    )


def create(client: Any, name: str, code: bytes, **params: Any) -> None:
    create_function(client, name, wait=False, Code={"ZipFile": code}, Timeout=30, **params)
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=ACTIVE_WAIT)


def test_update_and_delete_reclaim_zips_and_unpacked_code(server: Server, record_property: Any) -> None:
    client = server.client()
    name = unique("reclaim")
    first, second = package("first", padding=20_000_000), package("second", padding=20_000_000)
    tasks_before = du(server.data_dir / "tasks")
    create(client, name, first)
    assert invoke(client, name)[1]["data"] == "first"
    assert len(on_disk(server, digest(first))) == 2
    grown = du(server.data_dir / "tasks") - tasks_before
    assert grown >= 20_000_000

    client.update_function_code(FunctionName=name, ZipFile=second)
    wait_updated(client, name)
    assert invoke(client, name)[1]["data"] == "second"
    reclaimed(server, sha=digest(first))  # its environment was drained by the update

    client.delete_function(FunctionName=name)
    reclaimed(server, sha=digest(second))
    record_property(
        "summary_reclaim", f"tasks/ grew by {grown} bytes for a {len(first)}-byte zip, then shrank back"
    )
    assert du(server.data_dir / "tasks") <= tasks_before


def test_an_environment_of_the_old_code_keeps_its_files_until_it_is_drained(server: Server) -> None:
    client = server.client()
    name = unique("draining")
    old, new = package("old"), package("new")
    create(client, name, old)
    # One environment at a time: while the slow invocation below runs, any other answers 429, which tells
    # the test that the slow one holds the (warm) environment.
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert invoke(client, name)[1]["data"] == "old"
    slow: dict[str, Any] = {}

    def run_slow() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                slow["payload"] = invoke(server.client(read_timeout=60), name, {"sleep": 5})[1]
                return
            except client.exceptions.TooManyRequestsException:
                continue  # a probe below held the environment: try again

    runner = threading.Thread(target=run_slow)
    runner.start()

    def slow_one_holds_it() -> bool:
        try:
            invoke(client, name)
        except client.exceptions.TooManyRequestsException:
            return True
        return False

    eventually(slow_one_holds_it)
    client.update_function_code(FunctionName=name, ZipFile=new)
    wait_updated(client, name)
    client.delete_function_concurrency(FunctionName=name)
    assert invoke(client, name)[1]["data"] == "new"
    reclaim_asked_at = time.time()  # the update and the new code's cold start both asked for a pass
    runner.join(60)
    # The old environment read its own files after that: they were kept until it drained.
    read_at = slow["payload"].pop("read_at")
    assert slow["payload"] == {"data": "old", "files": 2}
    assert read_at > reclaim_asked_at, "the slow invocation ended before the update: the machine is too slow"
    reclaimed(server, sha=digest(old))
    client.delete_function(FunctionName=name)
    reclaimed(server, sha=digest(new))


def test_layers_are_reclaimed_once_no_function_keeps_them(server: Server) -> None:
    client = server.client()
    layer_name, name = unique("layer"), unique("with-layer")
    layer_zip = package("layer")  # any files: /opt/handler.py, /opt/data.txt
    layer = client.publish_layer_version(LayerName=layer_name, Content={"ZipFile": layer_zip})
    deploy(
        client,
        name,
        {"handler.py": "def handler(event, context):\n    return open('/opt/data.txt').read()\n"},
        Layers=[layer["LayerVersionArn"]],
    )
    assert invoke(client, name)[1] == "layer"
    merged = merged_layers(server, digest(layer_zip))
    assert merged.is_dir() and len(on_disk(server, digest(layer_zip))) == 2

    # The function keeps the layer version it uses (as on AWS) after the version is deleted.
    client.delete_layer_version(LayerName=layer_name, VersionNumber=layer["Version"])
    assert invoke(client, name)[1] == "layer"
    assert merged.is_dir() and len(on_disk(server, digest(layer_zip))) == 2

    client.delete_function(FunctionName=name)
    reclaimed(server, merged, sha=digest(layer_zip))


def test_a_layer_version_nothing_uses_is_reclaimed_when_deleted(server: Server) -> None:
    client = server.client()
    layer_name = unique("lone-layer")
    layer_zip = package(layer_name)
    layer = client.publish_layer_version(LayerName=layer_name, Content={"ZipFile": layer_zip})
    assert on_disk(server, digest(layer_zip))
    client.delete_layer_version(LayerName=layer_name, VersionNumber=layer["Version"])
    reclaimed(server, sha=digest(layer_zip))


def test_creating_and_deleting_functions_of_one_package_races_no_cold_start(server: Server) -> None:
    """Each delete makes the package unused and asks for a reclaim while the other loop stores and
    unpacks the same package for its next create and cold start: no invocation may lose its files."""
    code = package("shared")
    failures: list[BaseException] = []

    def churn(prefix: str) -> None:
        client = server.client(read_timeout=60)
        try:
            for round_ in range(5):
                name = unique(f"{prefix}{round_}")
                create(client, name, code)
                assert invoke(client, name)[1] == {"data": "shared", "files": 2}
                client.delete_function(FunctionName=name)
        except BaseException as error:
            failures.append(error)

    loops = [threading.Thread(target=churn, args=(prefix,)) for prefix in ("churn-a", "churn-b")]
    for loop in loops:
        loop.start()
    for loop in loops:
        loop.join(300)
    assert not failures, failures[0]
    reclaimed(server, sha=digest(code))


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Server]:
    running = start_server(tmp_path, "--code-storage-limit", "3000000")
    yield running
    running.stop(timeout=60)


def test_the_storage_limit_counts_unpacked_bytes(limited: Server) -> None:
    client = limited.client()
    bomb = package("bomb", padding=4_000_000)  # a few KB zipped, 4 MB unpacked
    assert len(bomb) < 100_000
    with pytest.raises(client.exceptions.CodeStorageExceededException) as excinfo:
        create(client, unique("bomb"), bomb)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert excinfo.value.response["Error"]["Message"] == "Code storage limit exceeded."
    with pytest.raises(client.exceptions.CodeStorageExceededException):
        client.publish_layer_version(LayerName=unique("bomb"), Content={"ZipFile": bomb})
    # 1,000 one-byte files: 1 KB of content, but each takes a block (and an inode) once unpacked.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("handler.py", READER)
        for index in range(1000):
            archive.writestr(f"tiny/{index}", b"x")
    with pytest.raises(client.exceptions.CodeStorageExceededException):
        create(client, unique("tiny"), buffer.getvalue())

    # What a delete frees counts at once.
    first, second = unique("first"), unique("second")
    create(client, first, package("first", padding=2_000_000))
    with pytest.raises(client.exceptions.CodeStorageExceededException):
        create(client, second, package("second", padding=2_000_000))
    client.delete_function(FunctionName=first)
    create(client, second, package("second", padding=2_000_000))
    assert invoke(client, second)[1]["data"] == "second"


def test_reclaiming_large_trees_leaves_other_functions_unaffected(
    server: Server, record_property: Any
) -> None:
    client = server.client(read_timeout=120)
    victim = Victim(server)
    victim.baseline()
    # 4,000 files of 25 KB: 100 MB unpacked from a zip of a few hundred KB, unpacked then removed.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("handler.py", READER)
        archive.writestr("data.txt", "many")
        for index in range(4000):
            archive.writestr(f"many/{index}.bin", bytes(25_000))
    many = buffer.getvalue()
    with victim.measuring() as samples:
        for round_ in range(2):
            name = unique(f"many{round_}")
            create(client, name, many)
            client.delete_function(FunctionName=name)
            reclaimed(server, sha=digest(many))
    assert_unaffected(victim, samples, record_property)
    client.delete_function(FunctionName=victim.name)


def test_a_restart_removes_what_nothing_uses_and_keeps_the_rest(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    client = first.client()
    name = unique("kept")
    code = package("kept")
    create(client, name, code)
    assert invoke(client, name)[1]["data"] == "kept"
    first.stop(timeout=60)
    # What a crash can leave: an unpacked tree and merged layers nothing names, an interrupted unpack.
    leftovers = [
        first.data_dir / "tasks" / ("0" * 64),
        first.data_dir / "tasks" / ".0123456789ab.interrupted",
        first.data_dir / "opt" / ("1" * 64),
    ]
    for leftover in leftovers:
        (leftover / "python").mkdir(parents=True)
        (leftover / "python" / "x.py").write_text("x = 1\n")
    second = start_server(tmp_path)
    try:
        assert not [leftover for leftover in leftovers if leftover.exists()]
        assert len(on_disk(second, digest(code))) == 2
        assert invoke(second.client(), name)[1]["data"] == "kept"
    finally:
        second.stop(timeout=60)
