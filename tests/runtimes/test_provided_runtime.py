"""OS-only runtimes: the function's own bootstrap talks to the Runtime API (here: a shell script + curl)."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from lambdad.runtime_api import ResultKind
from lambdad.runtimes import InvalidEntrypoint, find_interpreter, launch_command

from .harness import event, run_function

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")

BOOTSTRAP = r"""#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
echo "bootstrap: handler=${_HANDLER}"
while true; do
  HEADERS="$(mktemp)"
  EVENT="$(curl -sS -LD "$HEADERS" "$API/invocation/next")"
  REQUEST_ID="$(grep -i Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)"
  if [ "$EVENT" = '"fail"' ]; then
    curl -sS -X POST "$API/invocation/$REQUEST_ID/error" \
      -H "Lambda-Runtime-Function-Error-Type: Custom.Failure" \
      -d '{"errorMessage":"asked to fail","errorType":"Custom.Failure"}' >/dev/null
  else
    curl -sS -X POST "$API/invocation/$REQUEST_ID/response" \
      -d "{\"from\":\"bootstrap\",\"event\":$EVENT,\"request\":\"$REQUEST_ID\"}" >/dev/null
  fi
done
"""


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.mark.parametrize("runtime", ["provided.al2023", "provided.al2"])
def test_a_shell_bootstrap_using_curl_serves_invocations(tmp_path: Path, runtime: str) -> None:
    task = tmp_path / "task"
    _executable(task / "bootstrap", BOOTSTRAP)
    run = run_function(runtime, "function.handler", task, [event(b'{"n":1}', "p-1"), event(b'"fail"', "p-2")])
    assert run.init_error is None
    ok, failed = run.results
    assert json.loads(ok.payload) == {"from": "bootstrap", "event": {"n": 1}, "request": "p-1"}
    assert (failed.kind, failed.error_type) == (ResultKind.FUNCTION_ERROR, "Custom.Failure")
    assert "bootstrap: handler=function.handler" in run.logs


def test_a_bootstrap_in_a_layer_is_used_when_the_code_has_none(tmp_path: Path) -> None:
    task, opt = tmp_path / "task", tmp_path / "opt"
    task.mkdir()
    _executable(opt / "bootstrap", BOOTSTRAP)
    command = launch_command(
        "provided.al2023",
        find_interpreter("provided.al2023"),
        "h",
        task_root="/var/task",
        opt_root="/opt",
        code_dir=task,
        layers_dir=opt,
    )
    assert command.argv == ("/opt/bootstrap",)
    run = run_function("provided.al2023", "h", task, [event(b"2")], opt_dir=opt)
    assert json.loads(run.results[0].payload)["event"] == 2


def test_no_bootstrap_is_runtime_invalid_entrypoint(tmp_path: Path) -> None:
    with pytest.raises(InvalidEntrypoint) as missing:
        launch_command(
            "provided.al2", find_interpreter("provided.al2"), "h", code_dir=tmp_path, layers_dir=tmp_path
        )
    assert missing.value.error_type == "Runtime.InvalidEntrypoint"
    assert str(missing.value) == "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
