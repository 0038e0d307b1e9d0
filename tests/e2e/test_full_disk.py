"""A full disk (issue 10, finding 7): the server's data directory is a small tmpfs the test fills.

An invocation that ran still answers its result (the log events that cannot be written are dropped and
counted); writes that cannot happen answer AWS-shaped errors that say the disk is full; the room
lambdad keeps in reserve lets a delete through; once space is freed, creates work again without a
restart.
"""

from __future__ import annotations

import base64
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.invoke_support import ACTIVE_WAIT, deploy_python, health, invoke, start_server, unique
from tests.support import Server, create_function, make_zip

SIZE_MB = 24
# 16 KB of output per invocation: more than the free end of a log file's last page holds.
HANDLER = "def handler(event, context):\n    print('ran', event, 'x' * 16384)\n    return {'ran': event}\n"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A ``SIZE_MB`` tmpfs mounted where the server's data directory goes; unmounted afterwards."""
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(data)], check=True)
    try:
        yield data
    finally:
        subprocess.run(["umount", "--lazy", str(data)], check=False)


@pytest.fixture
def server(small_disk: Path) -> Iterator[Server]:
    # spares 0: a spare's sandbox would be the one holding the disk's last bytes, not the function.
    running = start_server(small_disk.parent, env={"LAMBDAD_SPARES": "0"})
    yield running
    running.stop(timeout=60)


def fill(directory: Path, name: str = "filler") -> Path:
    """A file that takes every free byte of ``directory``'s file system."""
    filler = directory / name
    with filler.open("wb", buffering=0) as out:
        for size in (1024 * 1024, 4096, 1):  # down to the last byte: a small write may still fit
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC
    return filler


def padded_zip() -> bytes:
    """The handler with 256 KB of random bytes: the zip takes room, and no two zips are the same."""
    return make_zip({"handler.py": HANDLER, "padding.bin": base64.b64encode(os.urandom(256 * 1024))})


def create(client: Any, name: str) -> dict[str, Any]:
    return create_function(client, name, wait=False, Code={"ZipFile": padded_zip()})


def test_a_full_disk_lets_invocations_answer_refuses_writes_clearly_and_recovers(
    server: Server, small_disk: Path
) -> None:
    client = server.client(read_timeout=60)
    name = unique("on-full-disk")
    deploy_python(client, name, HANDLER)
    assert invoke(client, name, {"n": 0})[1] == {"ran": {"n": 0}}  # warm: its environment exists
    doomed = unique("to-delete")
    deploy_python(client, doomed, HANDLER)

    filler = fill(small_disk)

    # The handler runs and its result reaches the caller; its log events are lost, not the answer.
    for n in range(1, 4):
        response, payload = invoke(client, name, {"n": n}, LogType="Tail")
        assert response["StatusCode"] == 200 and "FunctionError" not in response, payload
        assert payload == {"ran": {"n": n}}

    assert health(server)["lost_log_events"] > 0  # the invocations' events, counted

    # Code that cannot be stored: AWS's code-storage error, saying why.
    with pytest.raises(ClientError) as refused:
        create(client, unique("no-room"))
    error = refused.value.response
    assert error["Error"]["Code"] == "CodeStorageExceededException", error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "no space left" in error["Error"]["Message"].lower(), error["Error"]["Message"]

    # lambdad gave up the room it keeps in reserve: a delete (which the database must journal) works.
    assert not (small_disk / "reserve").exists()
    client.delete_function(FunctionName=doomed)
    more = fill(small_disk, "more")

    # The same for new code of a function, and for a layer.
    zip_file = padded_zip()
    refusals = [
        lambda: client.update_function_code(FunctionName=name, ZipFile=zip_file),
        lambda: client.publish_layer_version(LayerName=unique("layer"), Content={"ZipFile": zip_file}),
    ]
    for attempt in refusals:
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["Error"]["Code"] == "CodeStorageExceededException"
    assert invoke(client, name, {"n": 4})[1] == {"ran": {"n": 4}}  # the old code still runs

    # A write to the database that finds no room: lambdad's error, saying why (not a traceback).
    arn = client.get_function_configuration(FunctionName=name)["FunctionArn"]
    with pytest.raises(ClientError) as refused:
        client.tag_resource(Resource=arn, Tags={"tagged": "while full"})
    error = refused.value.response
    assert error["Error"]["Code"] == "ServiceException", error
    assert "disk is full" in error["Error"]["Message"], error["Error"]["Message"]

    # Space freed is usable at once: no restart; the reserve is taken back.
    filler.unlink()
    more.unlink()
    client.tag_resource(Resource=arn, Tags={"tagged": "after freeing"})
    assert client.list_tags(Resource=arn)["Tags"] == {"tagged": "after freeing"}
    later = unique("after-freeing")
    created = create(client, later)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    client.get_waiter("function_active_v2").wait(FunctionName=later, WaiterConfig=ACTIVE_WAIT)
    assert invoke(client, later, {"n": 9})[1] == {"ran": {"n": 9}}
    assert invoke(client, name, {"n": 10})[1] == {"ran": {"n": 10}}
    assert (small_disk / "reserve").stat().st_size > 0
