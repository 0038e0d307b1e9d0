"""Runtime identifiers, interpreter choice (with MISMATCH notes), launch commands and AWS's environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lambdad.runtimes import (
    RESERVED_ENV_VARS,
    RUNTIMES,
    Family,
    UnknownRuntime,
    find_interpreter,
    launch_command,
    reserved_keys_message,
    reserved_keys_used,
    standard_environment,
)


def test_every_current_aws_runtime_identifier_is_known() -> None:
    assert set(RUNTIMES) == {
        *(f"python3.{minor}" for minor in range(9, 15)),
        "nodejs18.x",
        "nodejs20.x",
        "nodejs22.x",
        "nodejs24.x",
        "provided.al2023",
        "provided.al2",
    }
    with pytest.raises(UnknownRuntime):
        find_interpreter("ruby3.3")


def _fake_pyenv(root: Path, *versions: str) -> None:
    """A pyenv layout whose 'interpreters' are links to this test's real Python."""
    import sys

    for version in versions:
        minor = ".".join(version.split(".")[:2])
        bin_dir = root / "versions" / version / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / f"python{minor}").symlink_to(sys.executable)


def test_the_pyenv_cpython_of_the_same_minor_is_chosen_without_a_note(tmp_path: Path) -> None:
    _fake_pyenv(tmp_path, "3.11.2", "3.12.1", "3.12.7")
    interpreter = find_interpreter("python3.12", pyenv_root=tmp_path, search_path="")
    assert interpreter.path == tmp_path / "versions/3.12.7/bin/python3.12"
    assert (interpreter.version, interpreter.note) == ("3.12.7", None)


def test_a_missing_minor_falls_back_to_the_closest_with_a_mismatch_note(tmp_path: Path) -> None:
    _fake_pyenv(tmp_path, "3.11.2", "3.13.0")
    interpreter = find_interpreter("python3.14", pyenv_root=tmp_path, search_path="")
    assert interpreter.version == "3.13.0"
    assert interpreter.note is not None
    assert interpreter.note.startswith("MISMATCH: runtime python3.14 asks for Python 3.14")
    assert "CPython 3.13.0" in interpreter.note


def test_a_caller_mapping_overrides_the_interpreter_choice(tmp_path: Path) -> None:
    import sys

    interpreter = find_interpreter(
        "python3.10", overrides={"python3.10": sys.executable}, pyenv_root=tmp_path
    )
    assert interpreter.path == Path(sys.executable)
    assert interpreter.version.startswith(f"{sys.version_info[0]}.{sys.version_info[1]}.")


def test_node_comes_from_the_path_and_other_majors_get_a_mismatch_note() -> None:
    host = find_interpreter("nodejs20.x")
    assert host.path is not None and host.path.name == "node"
    for runtime in ("nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x"):
        interpreter = find_interpreter(runtime)
        same = runtime == f"nodejs{host.minor}.x"
        assert (interpreter.note is None) is same, runtime


def test_provided_runtimes_need_no_interpreter() -> None:
    assert find_interpreter("provided.al2023").path is None
    assert RUNTIMES["provided.al2"].family is Family.PROVIDED


def test_the_python_launch_command_runs_awslambdaric_isolated_from_host_site_packages() -> None:
    interpreter = find_interpreter("python3.12")
    command = launch_command("python3.12", interpreter, "app.handler", runtime_dir="/var/runtime")
    assert command.argv == (str(interpreter.path), "-S", "-m", "awslambdaric", "app.handler")
    assert command.env == {
        "PYTHONPATH": "/var/task:/opt/python:/opt/python/lib/python3.12/site-packages:/var/runtime"
    }


def test_the_node_launch_command_sets_aws_node_path() -> None:
    command = launch_command("nodejs22.x", find_interpreter("nodejs22.x"), "index.handler")
    assert command.argv[1:] == ("/var/runtime/lambdad-node-client.mjs", "index.handler")
    assert command.env["NODE_PATH"] == (
        "/opt/nodejs/node22/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task"
    )


def _env(**kw: object) -> dict[str, str]:
    args: dict[str, object] = {
        "runtime": "python3.12",
        "handler": "app.handler",
        "function_name": "orders",
        "runtime_api": "127.0.0.1:9001",
    }
    args.update(kw)
    return standard_environment(**args)  # type: ignore[arg-type]


def test_the_standard_environment_has_aws_defined_variables() -> None:
    env = _env(memory_size=256, region="eu-west-1", function_version="7", log_stream="2024/01/01/[7]abc")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "orders"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "7"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/orders"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == "2024/01/01/[7]abc"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["_HANDLER"] == "app.handler"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["TZ"] == ":UTC"
    assert env["LANG"] == "en_US.UTF-8"
    assert env["PATH"].startswith("/usr/local/bin:/usr/bin/:/bin:/opt/bin")
    assert env["LD_LIBRARY_PATH"].startswith("/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task")
    assert env["PYTHONPATH"].startswith("/var/task:/opt/python")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert env[key]


def test_the_generated_log_stream_name_has_aws_shape() -> None:
    import re

    name = _env()["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", name)


def test_users_may_replace_unreserved_variables_but_never_reserved_ones() -> None:
    env = _env(user_environment={"LANG": "C.UTF-8", "TZ": "Europe/Paris", "AWS_REGION": "mars-1", "X": "1"})
    assert (env["LANG"], env["TZ"], env["X"]) == ("C.UTF-8", "Europe/Paris", "1")
    assert env["AWS_REGION"] == "us-east-1"


def test_provided_runtimes_get_no_execution_env_and_node_gets_node_path() -> None:
    assert "AWS_EXECUTION_ENV" not in _env(runtime="provided.al2023")
    node = _env(runtime="nodejs20.x")
    assert node["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert node["NODE_PATH"].startswith("/opt/nodejs/node20/node_modules:")


def test_reserved_keys_are_found_and_worded_as_aws_rejects_them() -> None:
    assert {"AWS_REGION", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_SESSION_TOKEN"} <= RESERVED_ENV_VARS
    assert not {"TZ", "LANG", "PATH", "PYTHONPATH", "NODE_PATH", "LD_LIBRARY_PATH"} & RESERVED_ENV_VARS
    used = reserved_keys_used(["DB_HOST", "AWS_REGION", "AWS_ACCESS_KEY_ID"])
    assert used == ["AWS_REGION", "AWS_ACCESS_KEY_ID"]
    assert reserved_keys_message(used) == (
        "Lambda was unable to configure your environment variables because the environment variables "
        "you have provided contains reserved keys that are currently not supported for modification. "
        "Reserved keys used in this request: AWS_REGION, AWS_ACCESS_KEY_ID"
    )


def test_pyenv_root_defaults_to_the_environment_or_home() -> None:
    from lambdad.runtimes.registry import default_pyenv_root

    expected = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    assert str(default_pyenv_root()) == expected
