"""Secrets at rest, end to end: a function's environment variables never sit in plain text under the data
directory (database, code, unpacked tasks, logs) while the function sees them, cold, from a spare and
warm; KMSKeyArn is checked and answered back as AWS does; code links work without a stored signing key;
and a server started with another key ring refuses to start, in one line, and starts again with its own."""

from __future__ import annotations

import secrets
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from tests.e2e.invoke_support import deploy_python, invoke, unique, wait_updated
from tests.support import LAMBDAD, Server

SHOW = """
import os

def handler(event, context):
    return {k: os.environ.get(k) for k in event["names"]}
"""
KMS_KEY = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KMS_REFUSED = (
    "Lambda was unable to configure access to your environment variables because the KMS key is invalid "
    "for CreateGrant. Please check your KMS key settings. KMS Exception: InvalidArnException KMS Message: "
)


def files_holding(root: Path, needle: bytes) -> list[Path]:
    """Every file under ``root`` whose bytes hold ``needle`` (as ``grep -r`` would find it)."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "keyring"  # outside the data directory, made at first start


@pytest.fixture
def server(tmp_path: Path, key_file: Path) -> Any:
    running = Server(tmp_path / "data", extra_args=["--spares", "1"], env={"LAMBDAD_KEY_FILE": str(key_file)})
    running.start(timeout=60)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.stop(timeout=60)


def test_environment_variables_never_sit_in_plain_text_under_the_data_directory(
    server: Server, key_file: Path
) -> None:
    client = server.client()
    value, updated = f"s3cr3t-{secrets.token_hex(12)}", f"upd4ted-{secrets.token_hex(12)}"
    names = [unique("sealed"), unique("sealed")]
    for name in names:  # the second one's cold start takes the spare the first one's left
        deploy_python(client, name, SHOW, Environment={"Variables": {"MY_SECRET": value}})
        assert invoke(client, name, {"names": ["MY_SECRET"]})[1] == {"MY_SECRET": value}
        assert invoke(client, name, {"names": ["MY_SECRET"]})[1] == {"MY_SECRET": value}  # warm
    client.publish_version(FunctionName=names[0])
    client.update_function_configuration(
        FunctionName=names[0], Environment={"Variables": {"MY_SECRET": updated}}
    )
    wait_updated(client, names[0])
    assert invoke(client, names[0], {"names": ["MY_SECRET"]})[1] == {"MY_SECRET": updated}
    assert invoke(client, names[0], {"names": ["MY_SECRET"]}, Qualifier="1")[1] == {"MY_SECRET": value}
    found = client.get_function_configuration(FunctionName=names[0])
    assert found["Environment"] == {"Variables": {"MY_SECRET": updated}}
    assert key_file.exists() and not key_file.is_relative_to(server.data_dir)
    assert not (server.data_dir / "secret").exists()  # the code links' key is derived, not stored
    location = client.get_function(FunctionName=names[0])["Code"]["Location"]
    with urllib.request.urlopen(location, timeout=10) as download:
        assert download.status == 200 and download.read().startswith(b"PK")
    for needle in (value, updated):
        assert files_holding(server.data_dir, needle.encode()) == []
    server.stop(timeout=60)  # everything flushed, the SQLite log checkpointed
    for needle in (value, updated):
        assert files_holding(server.data_dir, needle.encode()) == []
        assert needle.encode() not in server.log_path.read_bytes()


def test_kms_key_arn_is_checked_and_answered_back(server: Server) -> None:
    client = server.client()
    name = unique("kms")
    created = deploy_python(client, name, SHOW, KMSKeyArn=KMS_KEY, Environment={"Variables": {"ONE": "1"}})
    assert created["KMSKeyArn"] == KMS_KEY
    assert client.get_function_configuration(FunctionName=name)["KMSKeyArn"] == KMS_KEY
    for arn, words in (
        (
            "arn:aws:kms:us-east-1:000000000000:alias/my-key",
            "Key Aliases are not supported for this operation.",
        ),
        ("arn:aws:s3:::bucket", "ARN does not refer to a KMS key."),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            client.update_function_configuration(FunctionName=name, KMSKeyArn=arn)
        error = refused.value.response["Error"]
        assert error["Code"] == "InvalidParameterValueException"
        assert error["Message"] == KMS_REFUSED + words
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # An empty KMSKeyArn means Lambda's own key: nothing is named any more.
    client.update_function_configuration(FunctionName=name, KMSKeyArn="")
    wait_updated(client, name)
    assert "KMSKeyArn" not in client.get_function_configuration(FunctionName=name)
    assert invoke(client, name, {"names": ["ONE"]})[1] == {"ONE": "1"}


def test_a_server_refuses_another_key_ring_in_one_line(
    server: Server, key_file: Path, tmp_path: Path
) -> None:
    client = server.client()
    name = unique("ring")
    deploy_python(client, name, SHOW, Environment={"Variables": {"KEPT": "yes"}})
    server.stop(timeout=60)
    other = tmp_path / "other-keyring"
    command = [str(LAMBDAD), "serve", "--port", str(server.port), "--data-dir", str(server.data_dir)]
    refused = subprocess.run(
        [*command, "--key-file", str(other)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith(f"lambdad: lambdad's key ring ({other}, key ")
    assert "is not the one this data was sealed with (key " in lines[0] and "--key-file" in lines[0]
    server.start(timeout=60)  # its own ring again: the variables open
    assert invoke(server.client(), name, {"names": ["KEPT"]})[1] == {"KEPT": "yes"}
    assert client.get_function_configuration(FunctionName=name)["Environment"]["Variables"] == {"KEPT": "yes"}
