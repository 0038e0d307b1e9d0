"""``lambdad accounts create|list`` on a data directory's database: the new account's root key is printed
once, its secret sealed with the key ring (what a server with that ring resolves), never stored plain."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from lambdad.services.identity import IdentityService
from lambdad.store import Database
from lambdad.store.keyring import KeyRing
from tests.support import LAMBDAD


def accounts(tmp_path: Path, *args: str, ring: str = "ring") -> subprocess.CompletedProcess[str]:
    where = ["--data-dir", str(tmp_path / "data"), "--key-file", str(tmp_path / ring)]
    return subprocess.run(
        [str(LAMBDAD), "accounts", *args, *where],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "400"},
    )


def test_create_prints_the_root_key_once_and_list_shows_the_accounts(tmp_path: Path) -> None:
    made = accounts(tmp_path, "create", "--name", "team-a", "--json")
    assert made.returncode == 0, made.stderr
    answer = json.loads(made.stdout)
    assert set(answer) == {"AccountId", "AccessKeyId", "SecretAccessKey"}
    assert re.fullmatch(r"\d{12}", answer["AccountId"]) and answer["AccessKeyId"].startswith("AKIA")
    named = accounts(tmp_path, "create", "--account-id", "123456789012")
    assert (
        named.returncode == 0 and "123456789012" in named.stdout and "root secret access key" in named.stdout
    )
    again = accounts(tmp_path, "create", "--account-id", "123456789012")
    assert again.returncode == 1 and "exists already" in again.stderr
    bad = accounts(tmp_path, "create", "--account-id", "12")
    assert bad.returncode == 1 and "12 digits" in bad.stderr

    listed = accounts(tmp_path, "list", "--json")
    assert [(a["AccountId"], a["Name"]) for a in json.loads(listed.stdout)] == sorted(
        [(answer["AccountId"], "team-a"), ("123456789012", "123456789012")]
    )
    table = accounts(tmp_path, "list")
    assert "team-a" in table.stdout and "123456789012" in table.stdout

    # What the server (same database, same ring) makes of the key; the database holds no plain secret.
    database_file = tmp_path / "data" / "lambdad.db"
    stored = [path.read_bytes() for path in (tmp_path / "data").rglob("*") if path.is_file()]
    assert database_file.exists() and not any(answer["SecretAccessKey"].encode() in data for data in stored)
    database = Database(f"sqlite:///{database_file}")
    try:
        key = IdentityService(database, KeyRing.open(tmp_path / "ring")).signing_key(answer["AccessKeyId"])
    finally:
        database.dispose()
    assert key is not None and key.secret_access_key == answer["SecretAccessKey"]
    assert key.principal.arn == f"arn:aws:iam::{answer['AccountId']}:root"


def test_another_key_ring_is_refused(tmp_path: Path) -> None:
    assert accounts(tmp_path, "create").returncode == 0
    refused = accounts(tmp_path, "create", ring="other-ring")
    assert refused.returncode == 1 and "is not the one this data was sealed with" in refused.stderr.replace(
        "\n", " "
    )
    listed = accounts(tmp_path, "list", "--json")
    assert len(json.loads(listed.stdout)) == 1  # nothing was made with the wrong ring
