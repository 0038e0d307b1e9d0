"""Response streaming: InvokeWithResponseStream (AWS's event stream, decoded by botocore) and
RESPONSE_STREAM function URLs (chunked transfer), from Node.js ``awslambda.streamifyResponse`` and from a
custom runtime using the Runtime API's streaming response mode. Chunks arrive as the function sends them:
the first before the function ends."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from tests.e2e.invoke_support import deploy, deploy_python, executable_zip, server_fixture, unique
from tests.support import ROLE, Server

server = server_fixture()

SLOW_STREAM = """
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  console.log("streaming starts");
  for (let i = 0; i < 3; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 1000));
    responseStream.write(`chunk-${i};`);
  }
  responseStream.end();
});
"""

FAILING_STREAM = """
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.write("partial;");
  await new Promise((resolve) => setTimeout(resolve, 300));
  throw new TypeError("broken mid-stream");
});
"""

HTTP_STREAM = """
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { "content-type": "text/plain", "x-streamed": "yes" },
  });
  stream.write("hello ");
  await new Promise((resolve) => setTimeout(resolve, 1000));
  stream.write("world");
  stream.end();
});
"""

# A custom runtime streaming its response with curl: chunked transfer, response mode "streaming".
STREAMING_BOOTSTRAP = """#!/bin/sh
set -eu
while true; do
  HEADERS="$(mktemp)"
  curl -sS -LD "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next" >/dev/null
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  (printf 'first;'; sleep 1; printf 'second;') | curl -sS -X POST \\
    -H "Lambda-Runtime-Function-Response-Mode: streaming" -H "Transfer-Encoding: chunked" -T - \\
    "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response" >/dev/null
done
"""


def stream_events(client: Any, name: str, **params: Any) -> tuple[dict[str, Any], list[tuple[float, Any]]]:
    """InvokeWithResponseStream; the response and its events, each with the time it arrived."""
    started = time.monotonic()
    response = client.invoke_with_response_stream(FunctionName=name, **params)
    events = [(time.monotonic() - started, event) for event in response["EventStream"]]
    return response, events


def chunks_of(events: list[tuple[float, Any]]) -> list[tuple[float, bytes]]:
    return [(at, event["PayloadChunk"]["Payload"]) for at, event in events if "PayloadChunk" in event]


def completion(events: list[tuple[float, Any]]) -> dict[str, Any]:
    assert "InvokeComplete" in events[-1][1], events
    assert sum("InvokeComplete" in event for _, event in events) == 1
    return dict(events[-1][1]["InvokeComplete"])


@pytest.fixture
def client(server: Server) -> Any:
    return server.client(read_timeout=120)


def test_node_chunks_arrive_in_order_as_the_function_sends_them(client: Any) -> None:
    name = unique("stream-node")
    deploy(client, name, {"index.js": SLOW_STREAM}, Runtime="nodejs20.x", Handler="index.handler")

    response, events = stream_events(client, name, Payload=b"{}", LogType="Tail")

    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    chunks = chunks_of(events)
    assert b"".join(chunk for _, chunk in chunks) == b"chunk-0;chunk-1;chunk-2;"
    done_at = events[-1][0]
    # The function runs for 2 s; its first chunk arrives long before it ends.
    assert done_at >= 2.0
    assert chunks[0][0] < done_at - 1.5, [at for at, _ in events]
    complete = completion(events)
    assert "ErrorCode" not in complete
    log = base64.b64decode(complete["LogResult"]).decode()
    assert "streaming starts" in log and "REPORT RequestId:" in log


def test_a_buffered_python_function_streams_its_payload_as_one_chunk(client: Any) -> None:
    name = unique("stream-py")
    deploy_python(client, name, "def handler(event, context):\n    return {'got': event}\n")

    response, events = stream_events(client, name, Payload=json.dumps({"a": 1}).encode())

    assert response["StatusCode"] == 200
    chunks = chunks_of(events)
    assert len(chunks) == 1
    assert json.loads(chunks[0][1]) == {"got": {"a": 1}}
    complete = completion(events)
    assert "ErrorCode" not in complete and "LogResult" not in complete


def test_an_error_mid_stream_ends_with_its_error_code(client: Any) -> None:
    name = unique("stream-err")
    deploy(client, name, {"index.js": FAILING_STREAM}, Runtime="nodejs20.x", Handler="index.handler")

    response, events = stream_events(client, name, Payload=b"{}")

    assert response["StatusCode"] == 200
    assert b"".join(chunk for _, chunk in chunks_of(events)) == b"partial;"
    complete = completion(events)
    assert complete["ErrorCode"] == "TypeError"
    assert "broken mid-stream" in complete["ErrorDetails"]
    # The environment is reusable afterwards: a second invocation streams again.
    _, again = stream_events(client, name, Payload=b"{}")
    assert completion(again)["ErrorCode"] == "TypeError"


def test_a_python_handler_error_and_a_timeout_end_with_their_error_codes(client: Any) -> None:
    name = unique("stream-pyerr")
    source = (
        "import time\n"
        "def handler(event, context):\n"
        "    if event.get('sleep'):\n"
        "        time.sleep(5)\n"
        "    raise ValueError('nope')\n"
    )
    deploy_python(client, name, source, Timeout=1)

    _, events = stream_events(client, name, Payload=b"{}")
    assert chunks_of(events) == []
    complete = completion(events)
    # The error type the runtime reported (awslambdaric says "Unhandled"), and the error's message.
    assert complete["ErrorCode"] == "Unhandled"
    assert complete["ErrorDetails"] == "nope"

    _, events = stream_events(client, name, Payload=b'{"sleep": true}')
    complete = completion(events)
    assert complete["ErrorCode"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in complete["ErrorDetails"]


def test_a_custom_runtime_streams_with_the_runtime_api(client: Any) -> None:
    name = unique("stream-provided")
    client.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="function.handler",
        Code={"ZipFile": executable_zip({"bootstrap": STREAMING_BOOTSTRAP}, {"bootstrap"})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 1500}
    )

    _, events = stream_events(client, name, Payload=b"{}")

    chunks = chunks_of(events)
    assert b"".join(chunk for _, chunk in chunks) == b"first;second;"
    assert chunks[0][0] < events[-1][0] - 0.5, [at for at, _ in events]
    assert "ErrorCode" not in completion(events)


def test_a_missing_function_is_refused_before_any_stream(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke_with_response_stream(FunctionName=unique("missing"), Payload=b"{}")


def _public_url(client: Any, name: str) -> str:
    config = client.create_function_url_config(
        FunctionName=name, AuthType="NONE", InvokeMode="RESPONSE_STREAM"
    )
    client.add_permission(
        FunctionName=name,
        StatementId="urlPermission",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    url_id = str(config["FunctionUrl"]).split("//", 1)[1].split(".", 1)[0]
    return url_id


def test_a_response_stream_url_streams_with_the_prelude_status_and_headers(
    client: Any, server: Server
) -> None:
    name = unique("stream-url")
    deploy(client, name, {"index.js": HTTP_STREAM}, Runtime="nodejs20.x", Handler="index.handler")
    url_id = _public_url(client, name)

    started = time.monotonic()
    arrivals: list[tuple[float, bytes]] = []
    with (
        httpx.Client(base_url=f"{server.endpoint}/_lambdad/urls/{url_id}", timeout=60) as http,
        http.stream("GET", "/anything") as response,
    ):
        assert response.status_code == 201
        assert response.headers["content-type"] == "text/plain"
        assert response.headers["x-streamed"] == "yes"
        assert response.headers.get("transfer-encoding") == "chunked"
        for chunk in response.iter_raw():
            arrivals.append((time.monotonic() - started, chunk))
    ended = time.monotonic() - started
    assert b"".join(chunk for _, chunk in arrivals) == b"hello world"
    assert arrivals[0][1].startswith(b"hello") and arrivals[0][0] < ended - 0.5, arrivals


def test_a_response_stream_url_of_a_buffered_function_answers_by_buffered_rules(
    client: Any, server: Server
) -> None:
    name = unique("stream-url-py")
    source = (
        "def handler(event, context):\n"
        "    return {'statusCode': 202, 'headers': {'x-kind': 'buffered'}, 'body': 'done'}\n"
    )
    deploy_python(client, name, source)
    url_id = _public_url(client, name)

    with httpx.Client(base_url=f"{server.endpoint}/_lambdad/urls/{url_id}", timeout=60) as http:
        response = http.get("/")

    assert response.status_code == 202
    assert response.headers["x-kind"] == "buffered"
    assert response.text == "done"


def test_an_abandoned_stream_holds_its_lease_until_the_function_ends(client: Any) -> None:
    name = unique("stream-abandon")
    deploy(client, name, {"index.js": SLOW_STREAM}, Runtime="nodejs20.x", Handler="index.handler")
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)

    response = client.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    first = next(iter(response["EventStream"]))
    assert first["PayloadChunk"]["Payload"] == b"chunk-0;"
    response["EventStream"].close()  # the caller goes away; the function runs on

    # Its one environment and lease stay taken until the function has finished (about 2 s)...
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    time.sleep(3)
    # ...and are given back exactly once: the next invocation runs (and streams in full).
    _, events = stream_events(client, name, Payload=b"{}")
    assert b"".join(chunk for _, chunk in chunks_of(events)) == b"chunk-0;chunk-1;chunk-2;"
    _, events = stream_events(client, name, Payload=b"{}")
    assert "ErrorCode" not in completion(events)
