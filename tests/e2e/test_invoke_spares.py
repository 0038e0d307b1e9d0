"""Cold starts served by spare (pre-initialised) environments behave exactly like full cold starts: the
function's code read-only at /var/task, its environment variables and context (never the spare's), its
init errors, its own log stream without the spare's output; and spares leave nothing behind (scale to
zero after the idle timeout, nothing at all after shutdown)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from tests.e2e.invoke_support import (
    deploy_python,
    eventually,
    health,
    invoke,
    log_messages,
    report_fields,
    server_fixture,
    start_server,
    tail,
    unique,
)
from tests.support import Server

server = server_fixture("--spares", "1")

INSPECT = """
import errno, json, os, sys

print("module init of", os.environ["AWS_LAMBDA_FUNCTION_NAME"])

def handler(event, context):
    print("handler of", context.function_name)
    try:
        open("/var/task/written", "w")
        write = "ok"
    except OSError as e:
        write = errno.errorcode[e.errno]
    with open("/proc/self/cmdline", "rb") as f:
        argv = f.read().split(b"\\0")
    return {
        "argv": [a.decode() for a in argv if a][:3],
        "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "_HANDLER", "LAMBDA_", "MY_"))},
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
        },
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "task": sorted(os.listdir("/var/task")),
        "write": write,
        "main": sys.modules["__main__"].__spec__.name if sys.modules["__main__"].__spec__ else None,
        "event": event,
    }
"""


def spare_ready(server: Server) -> None:
    eventually(lambda: health(server)["spares"] >= 1 or None, timeout=30)


def served_by_spare(result: dict[str, Any]) -> bool:
    """A spare runs ``python3.X -S -c <zygote>``; a full cold start ``python3.X -S -m awslambdaric``."""
    return bool(result["argv"][1:3] == ["-S", "-c"])


def test_a_cold_start_from_a_spare_is_the_functions_own(server: Server) -> None:
    client = server.client()
    primer, name = unique("primer"), unique("spared")
    deploy_python(client, primer, INSPECT)
    deploy_python(client, name, INSPECT, MemorySize=256, Environment={"Variables": {"MY_SETTING": "value-1"}})
    first, result = invoke(client, primer, {"n": 0})
    assert "FunctionError" not in first, result
    spare_ready(server)

    response, result = invoke(client, name, {"n": 1}, LogType="Tail")
    assert "FunctionError" not in response, result
    assert served_by_spare(result), result["argv"]
    assert result["event"] == {"n": 1}
    env, context = result["env"], result["context"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name and context["function_name"] == name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256" and context["memory_limit_in_mb"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}" == context["log_group_name"]
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == context["log_stream_name"]
    assert env["MY_SETTING"] == "value-1"
    assert env["_HANDLER"] == "handler.handler"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert context["invoked_function_arn"].endswith(f":function:{name}")
    assert "lambdad-spare" not in json.dumps(result)
    assert result["cwd"] == "/var/task" and result["path0"] == "/var/task"
    assert result["main"] == "awslambdaric.__main__"
    assert result["task"] == ["handler.py"] and result["write"] == "EROFS"

    log = tail(response)
    assert f"module init of {name}" in log and f"handler of {name}" in log
    assert "Init Duration" in report_fields(log)
    assert report_fields(log)["Memory Size"] == "256 MB"

    # Warm: the same environment again; the function's own log stream holds only its own lines.
    _, warm = invoke(client, name, {"n": 2})
    assert warm["context"]["log_stream_name"] == context["log_stream_name"]
    messages = log_messages(server, name)
    assert any(f"module init of {name}" in m for m in messages)
    assert not any("lambdad-spare" in m for m in messages), messages


def test_an_init_error_in_a_spare_is_reported_as_on_a_full_cold_start(server: Server) -> None:
    client = server.client()
    primer, name = unique("primer"), unique("broken")
    deploy_python(client, primer, INSPECT)
    deploy_python(client, name, "import not_a_module_anywhere\n\ndef handler(e, c):\n    return 1\n")
    invoke(client, primer, {})
    spare_ready(server)
    response, result = invoke(client, name, {}, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'not_a_module_anywhere'" in result["errorMessage"]
    log = tail(response)
    assert "Runtime.ImportModuleError" in log


def test_a_function_setting_interpreter_start_variables_gets_a_full_cold_start(server: Server) -> None:
    client = server.client()
    primer, name = unique("primer"), unique("pyenv")
    deploy_python(client, primer, INSPECT)
    deploy_python(client, name, INSPECT, Environment={"Variables": {"PYTHONOPTIMIZE": "1"}})
    invoke(client, primer, {})
    spare_ready(server)
    response, result = invoke(client, name, {})
    assert "FunctionError" not in response, result
    assert not served_by_spare(result) and result["argv"][1:3] == ["-S", "-m"]


def slot_mounts(server: Server) -> list[str]:
    assert server.process is not None
    marker = f"/lambdad/slots/{server.process.pid}."  # <pid>.<start time>-<hex>
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if marker in line]


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def test_spares_scale_to_zero_and_leave_no_mount_after_shutdown(tmp_path: Path) -> None:
    running = start_server(tmp_path, "--spares", "1", "--idle-timeout", "1")
    try:
        assert running.process is not None
        client = running.client()
        names = [unique("scale"), unique("scale")]
        for name in names:
            deploy_python(client, name, INSPECT)
        invoke(client, names[0], {})
        spare_ready(running)
        _, result = invoke(client, names[1], {})
        assert served_by_spare(result)
        assert len(slot_mounts(running)) >= 2  # the shared slots mount + the code of the taken spare

        eventually(lambda: (health(running)["environments"] == 0 and health(running)["spares"] == 0) or None)
        pid = running.process.pid
        eventually(lambda: children(pid) == [] or None, timeout=10)
        time.sleep(0.3)  # cgroups and mounts go right after the processes
        assert children(pid) == []
        # Only the factory's (empty) shared slots mount stays while the server runs.
        assert len(slot_mounts(running)) <= 1, slot_mounts(running)
        server_pid = pid
    finally:
        exit_code = running.stop(timeout=60)
    assert exit_code in (0, -signal.SIGTERM)
    marker = f"/lambdad/slots/{server_pid}-"
    assert not [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if marker in line]
