"""A failing function yields AWS's exact error, the server keeps serving, and the next invoke gets a fresh
environment: timeouts, out of memory, runtime crashes, import and handler errors, init errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.invoke_support import (
    deploy,
    deploy_python,
    invoke,
    report_fields,
    request_id,
    server_fixture,
    tail,
    unique,
)

server = server_fixture()

# Behaves as the event says; each environment counts its invocations.
MISBEHAVING = """
import os, time

COUNT = 0

def handler(event, context):
    global COUNT
    COUNT += 1
    action = event.get("action")
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "allocate":
        blocks = []
        for _ in range(event["mb"]):
            blocks.append(bytearray(1024 * 1024))
        return {"allocated_mb": len(blocks)}
    elif action == "exit":
        os._exit(event["status"])
    return {"count": COUNT}
"""


@pytest.fixture
def misbehaving(client: Any) -> str:
    name = unique("misbehaving")
    deploy_python(client, name, MISBEHAVING, Timeout=1, MemorySize=128)
    return name


def assert_server_still_serves(client: Any) -> None:
    name = unique("still-serving")
    deploy_python(client, name, "def handler(event, context):\n    return 'ok'\n")
    assert invoke(client, name, {})[1] == "ok"


def test_timeout_is_sandbox_timedout_with_aws_message(client: Any, misbehaving: str) -> None:
    invoke(client, misbehaving, {})  # warm up: the timeout must kill a warm environment too

    response, payload = invoke(client, misbehaving, {"action": "sleep", "seconds": 10}, LogType="Tail")

    rid = request_id(response)
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {rid} Error: Task timed out after 1.00 seconds",
    }
    log = tail(response)
    assert "Task timed out after 1.00 seconds" in log
    assert report_fields(log)["Status"] == "timeout"
    assert float(report_fields(log)["Duration"].removesuffix(" ms")) >= 1000


def test_after_a_timeout_the_next_invoke_runs_in_a_fresh_environment(client: Any, misbehaving: str) -> None:
    invoke(client, misbehaving, {})
    assert invoke(client, misbehaving, {})[1] == {"count": 2}
    invoke(client, misbehaving, {"action": "sleep", "seconds": 10})

    response, payload = invoke(client, misbehaving, {}, LogType="Tail")

    assert "FunctionError" not in response
    assert payload == {"count": 1}
    assert "Init Duration" in report_fields(tail(response))


def test_exceeding_memory_size_is_runtime_exit_error_signal_killed(client: Any) -> None:
    # 128 MB buys 7% of a vCPU: filling it takes a while, so this function gets more time than the others.
    name = unique("oom")
    deploy_python(client, name, MISBEHAVING, Timeout=30, MemorySize=128)

    response, payload = invoke(client, name, {"action": "allocate", "mb": 400}, LogType="Tail")

    rid = request_id(response)
    assert response["FunctionError"] == "Unhandled"
    assert payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: signal: killed",
    }
    assert report_fields(tail(response))["Max Memory Used"] == "128 MB"
    assert report_fields(tail(response))["Status"] == "error"
    assert invoke(client, name, {})[1] == {"count": 1}
    assert_server_still_serves(client)


def test_allocating_within_memory_size_works(client: Any) -> None:
    name = unique("within-memory")
    deploy_python(client, name, MISBEHAVING, Timeout=30, MemorySize=128)

    response, payload = invoke(client, name, {"action": "allocate", "mb": 48})

    assert "FunctionError" not in response, payload
    assert payload == {"allocated_mb": 48}


def test_a_runtime_crash_is_runtime_exit_error_with_exit_status(client: Any, misbehaving: str) -> None:
    response, payload = invoke(client, misbehaving, {"action": "exit", "status": 3}, LogType="Tail")

    rid = request_id(response)
    assert response["FunctionError"] == "Unhandled"
    assert payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: exit status 3",
    }
    assert report_fields(tail(response))["Status"] == "error"
    assert invoke(client, misbehaving, {})[1] == {"count": 1}
    assert_server_still_serves(client)


def test_exit_status_0_mid_invocation_is_runtime_exited_without_providing_a_reason(
    client: Any, misbehaving: str
) -> None:
    response, payload = invoke(client, misbehaving, {"action": "exit", "status": 0})

    rid = request_id(response)
    assert response["FunctionError"] == "Unhandled"
    assert payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited without providing a reason",
    }


def test_a_missing_handler_module_is_runtime_import_module_error(client: Any) -> None:
    name = unique("no-module")
    deploy_python(client, name, "def handler(event, context):\n    return 1\n", Handler="nosuch.handler")

    response, payload = invoke(client, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"] == "Unable to import module 'nosuch': No module named 'nosuch'"
    assert payload["stackTrace"] == []
    assert_server_still_serves(client)


def test_a_missing_dependency_is_runtime_import_module_error(client: Any) -> None:
    name = unique("no-dependency")
    deploy_python(
        client, name, "import requests_not_installed\n\ndef handler(event, context):\n    return 1\n"
    )

    response, payload = invoke(client, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"] == (
        "Unable to import module 'handler': No module named 'requests_not_installed'"
    )


def test_a_missing_handler_function_is_runtime_handler_not_found(client: Any) -> None:
    name = unique("no-handler")
    deploy_python(client, name, "def handler(event, context):\n    return 1\n", Handler="handler.nope")

    response, payload = invoke(client, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.HandlerNotFound"
    assert payload["errorMessage"] == "Handler 'nope' missing on module 'handler'"


def test_a_syntax_error_is_runtime_user_code_syntax_error(client: Any) -> None:
    name = unique("syntax")
    deploy_python(client, name, "def handler(event, context)\n    return 1\n")

    response, payload = invoke(client, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.UserCodeSyntaxError"
    assert payload["errorMessage"].startswith("Syntax error in module 'handler': ")


def test_an_exception_during_init_is_reported_with_an_empty_request_id(client: Any) -> None:
    name = unique("init-error")
    deploy_python(
        client, name, 'raise Exception("Runtime startup fails")\n\ndef handler(e, c):\n    return 1\n'
    )

    response, payload = invoke(client, name, {}, LogType="Tail")

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Exception"
    assert payload["errorMessage"] == "Runtime startup fails"
    assert payload["requestId"] == ""
    assert payload["stackTrace"][-1] == (
        '  File "/var/task/handler.py", line 1, in <module>\n    raise Exception("Runtime startup fails")\n'
    )
    # The init error repeats on the next invoke (a fresh init), and the server keeps serving.
    again, again_payload = invoke(client, name, {})
    assert again["FunctionError"] == "Unhandled"
    assert again_payload["errorMessage"] == "Runtime startup fails"
    assert_server_still_serves(client)


def test_a_bootstrap_that_is_missing_is_runtime_invalid_entrypoint(client: Any) -> None:
    name = unique("no-bootstrap")
    deploy(client, name, {"README": "no bootstrap here"}, Runtime="provided.al2023", Handler="x")

    response, payload = invoke(client, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.InvalidEntrypoint"
    assert_server_still_serves(client)


def test_an_init_longer_than_ten_seconds_fails_the_invocation_with_sandbox_timedout(client: Any) -> None:
    # AWS would retry such an init inside the invocation, within its Timeout; lambdad fails it (README).
    name = unique("slow-init")
    deploy_python(
        client, name, "import time\ntime.sleep(12)\n\ndef handler(e, c):\n    return 1\n", Timeout=30
    )

    response, payload = invoke(client, name, {}, LogType="Tail")

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Init timed out after 10.00 seconds" in payload["errorMessage"]
    assert "Status: timeout" in tail(response)
    assert_server_still_serves(client)
