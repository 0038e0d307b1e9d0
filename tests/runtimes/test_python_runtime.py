"""Python functions run by AWS's real awslambdaric (installed by ensure_installed) against our server."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from lambdad.runtime_api import ResultKind
from lambdad.runtimes import find_interpreter

from .harness import ARN, event, run_function

APP = """
import json, os, sys

def ok(event, context):
    print("hello from the handler")
    return {"echo": event, "request_id": context.aws_request_id}

def boom(event, context):
    raise ValueError("bad thing")

def context_and_env(event, context):
    import boto3
    names = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
             "AWS_REGION", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT", "_HANDLER", "TZ", "MY_SETTING",
             "_X_AMZN_TRACE_ID", "AWS_LAMBDA_LOG_GROUP_NAME"]
    try:
        import pip  # in the host interpreter's site-packages: must not leak in
        leaked = True
    except ImportError:
        leaked = False
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "client_context": context.client_context.custom if context.client_context else None,
        "identity_id": context.identity.cognito_identity_id,
        "env": {name: os.environ.get(name) for name in names},
        "version": "%d.%d" % sys.version_info[:2],
        "boto3": boto3.__file__,
        "host_site_packages_leaked": leaked,
        "sys_path_head": sys.path[:5],
    }
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text(APP)
    (task / "syntax.py").write_text("def handler(event, context)\n    return 1\n")
    return task


def test_a_handler_result_comes_back_as_the_response(code: Path) -> None:
    run = run_function("python3.12", "app.ok", code, [event(b'{"a": 1}', "r-1"), event(b"[2]", "r-2")])
    assert run.init_error is None
    assert [json.loads(r.payload) for r in run.results] == [
        {"echo": {"a": 1}, "request_id": "r-1"},
        {"echo": [2], "request_id": "r-2"},
    ]
    assert run.logs.count("hello from the handler") == 2


def test_an_exception_comes_back_as_error_type_message_and_stack_trace(code: Path) -> None:
    (result,) = run_function("python3.12", "app.boom", code, [event()]).results
    assert result.kind is ResultKind.FUNCTION_ERROR
    doc = json.loads(result.payload)
    assert doc["errorType"] == "ValueError"
    assert doc["errorMessage"] == "bad thing"
    assert any('raise ValueError("bad thing")' in line for line in doc["stackTrace"])


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("missing_module.handler", "Runtime.ImportModuleError", "Unable to import module 'missing_module'"),
        ("app.not_there", "Runtime.HandlerNotFound", "Handler 'not_there' missing on module 'app'"),
        ("syntax.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'syntax'"),
    ],
)
def test_init_failures_arrive_through_init_error_with_aws_error_types(
    code: Path, handler: str, error_type: str, message: str
) -> None:
    run = run_function("python3.12", handler, code, [event()])
    assert run.init_error is not None
    assert run.init_error.kind is ResultKind.INIT_ERROR
    assert run.init_error.error_type == error_type
    doc = json.loads(run.init_error.payload)
    assert doc["errorType"] == error_type
    assert doc["errorMessage"].startswith(message)
    assert run.results[0].kind is ResultKind.INIT_ERROR, (
        "an invocation put meanwhile fails with the init error"
    )


def test_context_fields_and_the_standard_environment_reach_the_handler(code: Path) -> None:
    inv = event(
        b"{}",
        "ctx-1",
        trace_id="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        client_context=json.dumps({"custom": {"k": "v"}, "client": {}, "env": {}}),
        cognito_identity=json.dumps({"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}),
    )
    run = run_function("python3.12", "app.context_and_env", code, [inv], user_env={"MY_SETTING": "42"})
    doc = json.loads(run.results[0].payload)
    assert doc["function_name"] == "fn"
    assert doc["function_version"] == "$LATEST"
    assert doc["invoked_function_arn"] == ARN
    assert doc["memory_limit_in_mb"] == "128"
    assert doc["aws_request_id"] == "ctx-1"
    assert doc["log_group_name"] == "/aws/lambda/fn"
    assert "/[$LATEST]" in doc["log_stream_name"]
    assert 0 < doc["remaining_ms"] <= 30_000
    assert doc["client_context"] == {"k": "v"}
    assert doc["identity_id"] == "id-1"
    env = doc["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["_HANDLER"] == "app.context_and_env"
    assert env["LAMBDA_TASK_ROOT"] == str(code)
    assert env["TZ"] == ":UTC"
    assert env["MY_SETTING"] == "42"
    assert env["_X_AMZN_TRACE_ID"] == inv.trace_id
    assert doc["version"] == "3.12"
    assert "lambdad-test-runtimes/python3.12/boto3" in doc["boto3"], "boto3 comes from the runtime dir"
    assert doc["host_site_packages_leaked"] is False
    opt = code.parent / "opt" / "python"
    assert list(dict.fromkeys(doc["sys_path_head"]))[:3] == [
        str(code),
        str(opt),
        str(opt / "lib" / "python3.12" / "site-packages"),
    ], "user code first, then layers, as on AWS"


@pytest.mark.parametrize("minor", ["3.9", "3.10", "3.11", "3.12", "3.13"])
def test_every_python_minor_on_this_host_runs_awslambdaric(code: Path, minor: str) -> None:
    run = run_function(f"python{minor}", "app.context_and_env", code, [event()])
    assert run.init_error is None
    assert json.loads(run.results[0].payload)["version"] == minor


def test_python3_14_runs_on_the_closest_interpreter_with_a_mismatch_note(code: Path) -> None:
    interpreter = find_interpreter("python3.14")
    if interpreter.version.startswith("3.14"):
        pytest.skip("this host has CPython 3.14")
    run = run_function("python3.14", "app.context_and_env", code, [event()])
    assert run.note is not None and run.note.startswith("MISMATCH: runtime python3.14")
    doc = json.loads(run.results[0].payload)
    assert doc["version"] == interpreter.minor
    assert doc["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.14"


def test_a_layer_in_opt_python_is_importable(code: Path) -> None:
    opt = code.parent / "opt"
    (opt / "python").mkdir(parents=True)
    (opt / "python" / "layer_mod.py").write_text("VALUE = 'from a layer'\n")
    (code / "uses_layer.py").write_text(
        textwrap.dedent(
            """
            import layer_mod
            def handler(event, context):
                return layer_mod.VALUE
            """
        )
    )
    run = run_function("python3.12", "uses_layer.handler", code, [event()], opt_dir=opt)
    assert json.loads(run.results[0].payload) == "from a layer"
