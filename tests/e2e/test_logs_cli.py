"""``lambdad logs NAME`` prints a function's log group /aws/lambda/NAME (START, the function's output, END,
REPORT), and ``--follow`` keeps printing new events; streams are named as AWS names them."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from urllib.parse import unquote

from tests.e2e.invoke_support import (
    STREAM_NAME,
    deploy_python,
    invoke,
    log_group_dir,
    request_id,
    server_fixture,
    unique,
)
from tests.support import LAMBDAD, Server

server = server_fixture()

PRINTER = """
def handler(event, context):
    print("output:", event["word"])
    return "ok"
"""


def lambdad_logs(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LAMBDAD), "logs", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "400"},
    )


def test_logs_prints_start_output_end_and_report_lines(server: Server) -> None:
    client = server.client()
    name = unique("logged")
    deploy_python(client, name, PRINTER)
    first, _ = invoke(client, name, {"word": "alpha"})
    second, _ = invoke(client, name, {"word": "beta"})

    result = lambdad_logs(server, name)

    assert result.returncode == 0, result.stderr
    text = result.stdout
    for response, word in ((first, "alpha"), (second, "beta")):
        rid = request_id(response)
        assert f"START RequestId: {rid} Version: $LATEST" in text
        assert f"output: {word}" in text
        assert f"END RequestId: {rid}" in text
        assert f"REPORT RequestId: {rid}" in text
    assert text.index("output: alpha") < text.index("output: beta")
    assert "Init Duration" in text


def test_logs_are_kept_in_group_aws_lambda_name_with_aws_stream_names(server: Server) -> None:
    client = server.client()
    name = unique("streams")
    deploy_python(client, name, PRINTER)
    invoke(client, name, {"word": "x"})

    group = log_group_dir(server, name)

    assert unquote(group.name) == f"/aws/lambda/{name}"
    streams = [unquote(path.name) for path in group.iterdir()]
    assert len(streams) == 1
    assert STREAM_NAME.match(streams[0]), streams
    assert streams[0].startswith(time.strftime("%Y/%m/%d/", time.gmtime()))  # the UTC day it was made


def test_logs_of_a_function_never_invoked_says_so_and_fails(server: Server) -> None:
    result = lambdad_logs(server, unique("silent"))

    assert result.returncode == 1
    assert "No logs for" in result.stderr


def test_logs_follow_prints_new_events_as_they_arrive(server: Server) -> None:
    client = server.client()
    name = unique("followed")
    deploy_python(client, name, PRINTER)
    invoke(client, name, {"word": "before"})
    follower = subprocess.Popen(
        [str(LAMBDAD), "logs", name, "--follow", "--data-dir", str(server.data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    seen: list[str] = []
    assert follower.stdout is not None
    stdout = follower.stdout
    reader = threading.Thread(target=lambda: seen.extend(iter(stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("output: before" in line for line in seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        response, _ = invoke(client, name, {"word": "after"})
        rid = request_id(response)
        while not any(f"REPORT RequestId: {rid}" in line for line in seen) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        follower.terminate()
        follower.wait(10)
        reader.join(5)

    text = "".join(seen)
    assert "output: before" in text
    assert "output: after" in text
    assert f"REPORT RequestId: {rid}" in text
