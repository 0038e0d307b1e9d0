"""The environment variables AWS defines for a function's runtime, and the ones users may not set.

Source: AWS Lambda developer guide, "Defined runtime environment variables" (configuration-envvars).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from lambdad.runtimes.registry import Family, spec

TASK_ROOT = "/var/task"
OPT_ROOT = "/opt"
RUNTIME_DIR = "/var/runtime"

# Reserved: Lambda sets these and CreateFunction/UpdateFunctionConfiguration reject them in Environment.
RESERVED_ENV_VARS: frozenset[str] = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)

# Placeholder credentials: there is no IAM here. A caller with real (or test) credentials passes its own.
PLACEHOLDER_CREDENTIALS: tuple[str, str, str] = (
    "ASIALAMBDADPLACEHOLD",
    "lambdad/placeholder/secret/access/key/0000",
    "lambdad-placeholder-session-token",
)


def reserved_keys_used(variables: Iterable[str]) -> list[str]:
    """The reserved keys among ``variables``, in the order given."""
    return [key for key in variables if key in RESERVED_ENV_VARS]


def reserved_keys_message(keys: Iterable[str]) -> str:
    """AWS's InvalidParameterValueException message for reserved keys in a function's Environment."""
    return (
        "Lambda was unable to configure your environment variables because the environment variables "
        "you have provided contains reserved keys that are currently not supported for modification. "
        f"Reserved keys used in this request: {', '.join(keys)}"
    )


def log_group_name(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def log_stream_name(
    function_version: str, *, now: datetime | None = None, instance_id: str | None = None
) -> str:
    """AWS's stream name for one execution environment: ``2024/01/31/[$LATEST]<32 hex>``."""
    when = now or datetime.now(UTC)
    return f"{when:%Y/%m/%d}/[{function_version}]{instance_id or uuid.uuid4().hex}"


def language_paths(
    runtime: str, *, task_root: str = TASK_ROOT, opt_root: str = OPT_ROOT, runtime_dir: str = RUNTIME_DIR
) -> dict[str, str]:
    """PYTHONPATH / NODE_PATH as the runtime needs them (user code, then layers, then the runtime's own)."""
    rt = spec(runtime)
    if rt.family is Family.PYTHON:
        minor = f"{rt.version[0]}.{rt.version[1]}"
        parts = [
            task_root,
            f"{opt_root}/python",
            f"{opt_root}/python/lib/python{minor}/site-packages",
            runtime_dir,
        ]
        return {"PYTHONPATH": ":".join(parts)}
    if rt.family is Family.NODEJS:
        parts = [
            f"{opt_root}/nodejs/node{rt.version[0]}/node_modules",
            f"{opt_root}/nodejs/node_modules",
            f"{runtime_dir}/node_modules",
            runtime_dir,
            task_root,
        ]
        return {"NODE_PATH": ":".join(parts)}
    return {}


def standard_environment(
    *,
    runtime: str,
    handler: str | None,
    function_name: str,
    runtime_api: str,
    function_version: str = "$LATEST",
    memory_size: int = 128,
    region: str = "us-east-1",
    log_stream: str | None = None,
    initialization_type: str = "on-demand",
    credentials: tuple[str, str, str] | None = None,
    user_environment: Mapping[str, str] | None = None,
    task_root: str = TASK_ROOT,
    opt_root: str = OPT_ROOT,
    runtime_dir: str = RUNTIME_DIR,
    interpreter_dir: str | None = None,
) -> dict[str, str]:
    """The complete environment of a function's runtime process.

    Unreserved defaults (LANG, PATH, LD_LIBRARY_PATH, TZ, PYTHONPATH/NODE_PATH) come first and the user's
    ``Environment`` may replace them; reserved keys always hold Lambda's values. ``interpreter_dir`` (the
    host directory of the interpreter) stands in for AWS's /var/lang/bin at the head of PATH.
    """
    rt = spec(runtime)
    access_key, secret_key, session_token = credentials or PLACEHOLDER_CREDENTIALS
    lang_bin = f"{interpreter_dir}:" if interpreter_dir else ""
    env: dict[str, str] = {
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": f"{lang_bin}/usr/local/bin:/usr/bin/:/bin:{opt_root}/bin",
        "LD_LIBRARY_PATH": ":".join(
            [
                "/lib64",
                "/usr/lib64",
                runtime_dir,
                f"{runtime_dir}/lib",
                task_root,
                f"{task_root}/lib",
                f"{opt_root}/lib",
            ]
        ),
        **language_paths(runtime, task_root=task_root, opt_root=opt_root, runtime_dir=runtime_dir),
    }
    env.update(user_environment or {})
    reserved = {
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": function_version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group_name(function_name),
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream or log_stream_name(function_version),
        "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_SESSION_TOKEN": session_token,
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": runtime_dir,
    }
    if handler is not None:
        reserved["_HANDLER"] = handler
    if rt.family is not Family.PROVIDED:
        reserved["AWS_EXECUTION_ENV"] = rt.execution_env
    env.update(reserved)
    return env
