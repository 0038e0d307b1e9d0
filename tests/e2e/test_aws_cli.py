"""The AWS CLI, unmodified, against lambdad with --endpoint-url."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROLE, make_zip

pytestmark = pytest.mark.e2e


def test_cli_manages_a_function_from_create_to_delete(server: Any, tmp_path: Path) -> None:
    package = tmp_path / "function.zip"
    package.write_bytes(make_zip())
    created = json.loads(
        server.aws_cli(
            "create-function",
            "--function-name",
            "cli-fn",
            "--runtime",
            "python3.12",
            "--role",
            ROLE,
            "--handler",
            "handler.handler",
            "--zip-file",
            f"fileb://{package}",
            "--tags",
            "team=cli",
        ).stdout
    )
    assert created["State"] == "Pending"
    server.aws_cli("wait", "function-active-v2", "--function-name", "cli-fn")
    listed = json.loads(server.aws_cli("list-functions", "--max-items", "10").stdout)
    assert "cli-fn" in [f["FunctionName"] for f in listed["Functions"]]
    got = json.loads(server.aws_cli("get-function", "--function-name", "cli-fn").stdout)
    assert got["Configuration"]["State"] == "Active" and got["Tags"] == {"team": "cli"}
    server.aws_cli(
        "update-function-configuration",
        "--function-name",
        "cli-fn",
        "--memory-size",
        "256",
        "--environment",
        "Variables={STAGE=test}",
    )
    server.aws_cli("wait", "function-updated-v2", "--function-name", "cli-fn")
    config = json.loads(server.aws_cli("get-function-configuration", "--function-name", "cli-fn").stdout)
    assert config["MemorySize"] == 256 and config["Environment"] == {"Variables": {"STAGE": "test"}}
    server.aws_cli("update-function-code", "--function-name", "cli-fn", "--zip-file", f"fileb://{package}")
    server.aws_cli("wait", "function-updated-v2", "--function-name", "cli-fn")
    arn = created["FunctionArn"]
    server.aws_cli("tag-resource", "--resource", arn, "--tags", "extra=1")
    assert json.loads(server.aws_cli("list-tags", "--resource", arn).stdout)["Tags"] == {
        "team": "cli",
        "extra": "1",
    }
    server.aws_cli("untag-resource", "--resource", arn, "--tag-keys", "team")
    assert json.loads(server.aws_cli("list-tags", "--resource", arn).stdout)["Tags"] == {"extra": "1"}
    settings = json.loads(server.aws_cli("get-account-settings").stdout)
    assert settings["AccountUsage"]["FunctionCount"] >= 1
    server.aws_cli("delete-function", "--function-name", "cli-fn")
    missing = server.aws_cli("get-function", "--function-name", "cli-fn", check=False)
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_paginates_list_functions(server: Any, tmp_path: Path) -> None:
    package = tmp_path / "function.zip"
    package.write_bytes(make_zip())
    for i in range(5):
        server.aws_cli(
            "create-function",
            "--function-name",
            f"cli-page-{i}",
            "--runtime",
            "python3.12",
            "--role",
            ROLE,
            "--handler",
            "handler.handler",
            "--zip-file",
            f"fileb://{package}",
        )
    # --page-size makes the CLI follow NextMarker across several requests.
    listed = json.loads(server.aws_cli("list-functions", "--page-size", "2").stdout)
    names = [f["FunctionName"] for f in listed["Functions"] if f["FunctionName"].startswith("cli-page-")]
    assert names == [f"cli-page-{i}" for i in range(5)]
    first = json.loads(server.aws_cli("list-functions", "--max-items", "2").stdout)
    assert len(first["Functions"]) == 2 and first["NextToken"]
