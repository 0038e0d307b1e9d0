"""Node.js functions run by AWS's official aws-lambda-ric (built by ensure_installed) against our server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lambdad.runtime_api import ResultKind
from lambdad.runtimes import find_interpreter

from .harness import ARN, event, run_function

FILES = {
    "index.js": """
        exports.handler = async (event, context) => {
          console.log("hello", "from cjs");
          return { echo: event, id: context.awsRequestId };
        };
        exports.callback = (event, context, callback) => {
          setTimeout(() => callback(null, { style: "callback", echo: event }), 5);
        };
        exports.fails = async () => { throw new TypeError("nope"); };
        exports.context = async (event, context) => ({
          functionName: context.functionName,
          functionVersion: context.functionVersion,
          invokedFunctionArn: context.invokedFunctionArn,
          memoryLimitInMB: context.memoryLimitInMB,
          awsRequestId: context.awsRequestId,
          logGroupName: context.logGroupName,
          logStreamName: context.logStreamName,
          callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
          remaining: context.getRemainingTimeInMillis(),
          executionEnv: process.env.AWS_EXECUTION_ENV,
          handlerEnv: process.env._HANDLER,
          nodePath: process.env.NODE_PATH,
          mine: process.env.MY_SETTING,
        });
    """,
    "esm.mjs": """
        export const handler = async (event) => ({ module: "esm", echo: event });
    """,
    "legacy.cjs": """
        module.exports.handler = async () => ({ module: "cjs-extension" });
    """,
    "typed/package.json": '{"type": "module"}',
    "typed/index.js": """
        export async function handler() { return { module: "package-type-module" }; }
    """,
    "broken.js": "exports.handler = async () => { return 1;;; }}",
}


@pytest.fixture
def code(tmp_path: Path) -> Path:
    task = tmp_path / "task"
    for name, text in FILES.items():
        (task / name).parent.mkdir(parents=True, exist_ok=True)
        (task / name).write_text(text)
    return task


def payload(run_results: list, index: int = 0) -> object:  # type: ignore[type-arg]
    return json.loads(run_results[index].payload)


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("index.callback", {"style": "callback", "echo": {"n": 1}}),
        ("esm.handler", {"module": "esm", "echo": {"n": 1}}),
        ("legacy.handler", {"module": "cjs-extension"}),
        ("typed/index.handler", {"module": "package-type-module"}),
    ],
)
def test_commonjs_esm_async_and_callback_handlers_return_their_results(
    code: Path, handler: str, expected: object
) -> None:
    run = run_function("nodejs20.x", handler, code, [event(b'{"n": 1}')])
    assert run.init_error is None, run.logs
    assert payload(run.results) == expected


def test_an_async_commonjs_handler_answers_and_console_log_uses_aws_line_format(code: Path) -> None:
    run = run_function(
        "nodejs20.x", "index.handler", code, [event(b"[1]", "node-1"), event(b"[2]", "node-2")]
    )
    assert [payload(run.results, i) for i in (0, 1)] == [
        {"echo": [1], "id": "node-1"},
        {"echo": [2], "id": "node-2"},
    ]
    assert re.search(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\tnode-1\tINFO\thello from cjs$", run.logs, re.M
    )


def test_a_thrown_error_comes_back_in_aws_error_shape(code: Path) -> None:
    (result,) = run_function("nodejs20.x", "index.fails", code, [event()]).results
    assert result.kind is ResultKind.FUNCTION_ERROR
    doc = json.loads(result.payload)
    assert doc["errorType"] == "TypeError"
    assert doc["errorMessage"] == "nope"
    assert isinstance(doc["trace"], list) and doc["trace"][0].startswith("TypeError: nope")


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [
        ("missing.handler", "Runtime.ImportModuleError"),
        ("index.absent", "Runtime.HandlerNotFound"),
        ("broken.handler", "Runtime.UserCodeSyntaxError"),
    ],
)
def test_init_failures_carry_aws_runtime_error_types(code: Path, handler: str, error_type: str) -> None:
    run = run_function("nodejs20.x", handler, code, [event()])
    failure = run.init_error or (run.results[0] if run.results else None)
    assert failure is not None, run.logs
    assert failure.is_error
    assert json.loads(failure.payload)["errorType"] == error_type


def test_the_context_object_and_environment_carry_aws_fields(code: Path) -> None:
    inv = event(b"{}", "ctx-node")
    run = run_function("nodejs20.x", "index.context", code, [inv], user_env={"MY_SETTING": "7"})
    doc = payload(run.results)
    assert isinstance(doc, dict)
    assert doc["functionName"] == "fn"
    assert doc["functionVersion"] == "$LATEST"
    assert doc["invokedFunctionArn"] == ARN
    assert str(doc["memoryLimitInMB"]) == "128"
    assert doc["awsRequestId"] == "ctx-node"
    assert doc["logGroupName"] == "/aws/lambda/fn"
    assert "[$LATEST]" in doc["logStreamName"]
    assert doc["callbackWaitsForEmptyEventLoop"] is True
    assert 0 < doc["remaining"] <= 30_000
    assert doc["executionEnv"] == "AWS_Lambda_nodejs20.x"
    assert doc["handlerEnv"] == "index.context"
    assert doc["nodePath"].split(":")[:2] == [
        f"{code.parent}/opt/nodejs/node20/node_modules",
        f"{code.parent}/opt/nodejs/node_modules",
    ]
    assert doc["mine"] == "7"


def test_another_node_major_runs_on_the_host_node_with_a_mismatch_note(code: Path) -> None:
    host = find_interpreter("nodejs20.x").version.split(".")[0]
    other = "nodejs22.x" if host != "22" else "nodejs24.x"
    run = run_function(other, "esm.handler", code, [event()])
    assert run.note is not None and run.note.startswith(f"MISMATCH: runtime {other} asks for Node.js")
    assert payload(run.results) == {"module": "esm", "echo": {}}
