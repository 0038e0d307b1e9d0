"""Every runtime family returns its function's result: Python (two versions), Node.js (CommonJS async,
callback, ES module) and provided.al2023 (a shell bootstrap speaking the Runtime API with curl)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.invoke_support import deploy, executable_zip, invoke, server_fixture, unique
from tests.support import ROLE, Server

server = server_fixture()

PYTHON_ECHO = """
import sys

def handler(event, context):
    return {"echo": event, "python": "%d.%d" % sys.version_info[:2]}
"""


@pytest.mark.parametrize(("runtime", "version"), [("python3.12", "3.12"), ("python3.11", "3.11")])
def test_python_function_returns_its_result(client: Any, runtime: str, version: str) -> None:
    name = unique(f"py{version.replace('.', '')}")
    deploy(client, name, {"handler.py": PYTHON_ECHO}, Runtime=runtime)

    response, payload = invoke(client, name, {"hello": "world"})

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert payload == {"echo": {"hello": "world"}, "python": version}


NODE_HANDLERS = {
    "commonjs-async": (
        "index.js",
        "exports.handler = async (event, context) => "
        "({ echo: event, node: process.versions.node.split('.')[0], style: 'async' });\n",
    ),
    "commonjs-callback": (
        "index.js",
        "exports.handler = (event, context, callback) => {\n"
        "  setTimeout(() => callback(null, { echo: event, node: process.versions.node.split('.')[0],"
        " style: 'callback' }), 10);\n"
        "};\n",
    ),
    "es-module": (
        "index.mjs",
        "export const handler = async (event) => "
        "({ echo: event, node: process.versions.node.split('.')[0], style: 'esm' });\n",
    ),
}


@pytest.mark.parametrize("style", NODE_HANDLERS)
def test_nodejs20_function_returns_its_result(client: Any, style: str) -> None:
    filename, source = NODE_HANDLERS[style]
    name = unique(f"node-{style}")
    deploy(client, name, {filename: source}, Runtime="nodejs20.x", Handler="index.handler")

    response, payload = invoke(client, name, {"n": 1})

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response, payload
    expected_style = {"commonjs-async": "async", "commonjs-callback": "callback", "es-module": "esm"}[style]
    assert payload == {"echo": {"n": 1}, "node": "20", "style": expected_style}


def test_nodejs_handler_error_has_aws_error_shape(client: Any) -> None:
    name = unique("node-error")
    source = "exports.handler = async () => { const e = new TypeError('bad input'); throw e; };\n"
    deploy(client, name, {"index.js": source}, Runtime="nodejs20.x", Handler="index.handler")

    response, payload = invoke(client, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "TypeError"
    assert payload["errorMessage"] == "bad input"
    assert isinstance(payload["trace"], list) and payload["trace"][0].startswith("TypeError: bad input")


# The example of AWS's custom runtime tutorial, answering with the event and the handler's name.
BOOTSTRAP = """#!/bin/sh
set -eu
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -LD "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  echo "bootstrap handling $REQUEST_ID"
  curl -sS -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response" \\
    -d "{\\"echo\\": $EVENT, \\"handler\\": \\"$_HANDLER\\", \\"request_id\\": \\"$REQUEST_ID\\"}"
done
"""


def test_provided_al2023_shell_bootstrap_returns_its_result(client: Any) -> None:
    name = unique("provided")
    client.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="function.handler",
        Code={"ZipFile": executable_zip({"bootstrap": BOOTSTRAP}, {"bootstrap"})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 1500}
    )

    response, payload = invoke(client, name, {"x": [1, 2]}, LogType="Tail")

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    request_id = response["ResponseMetadata"]["RequestId"]
    assert payload == {"echo": {"x": [1, 2]}, "handler": "function.handler", "request_id": request_id}


def test_aws_cli_invoke_writes_the_result_to_the_outfile(server: Server, client: Any, tmp_path: Any) -> None:
    name = unique("cli")
    deploy(client, name, {"handler.py": PYTHON_ECHO})
    outfile = tmp_path / "out.json"

    result = server.aws_cli(
        "invoke",
        "--function-name",
        name,
        "--payload",
        '{"from": "cli"}',
        str(outfile),
    )

    answer = json.loads(result.stdout)
    assert answer["StatusCode"] == 200
    assert answer["ExecutedVersion"] == "$LATEST"
    assert json.loads(outfile.read_text())["echo"] == {"from": "cli"}
