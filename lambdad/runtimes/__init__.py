"""Which language runtime runs a function, and how it is started.

- ``registry``: the AWS runtime identifiers and the host interpreter for each (with MISMATCH notes);
- ``install``: ``ensure_installed`` puts AWS's runtime client (awslambdaric + boto3 / aws-lambda-ric) into
  a runtime directory per interpreter;
- ``launch``: the argv + environment additions that start the runtime inside an environment;
- ``environment``: AWS's standard environment variables and the reserved names.
"""

from lambdad.runtimes.environment import (
    RESERVED_ENV_VARS,
    language_paths,
    log_group_name,
    log_stream_name,
    reserved_keys_message,
    reserved_keys_used,
    standard_environment,
)
from lambdad.runtimes.install import InstallError, ensure_installed, runtime_dir_name
from lambdad.runtimes.launch import InvalidEntrypoint, LaunchCommand, launch_command, zygote_command
from lambdad.runtimes.registry import (
    RUNTIMES,
    Family,
    Interpreter,
    RuntimeNotAvailable,
    RuntimeSpec,
    UnknownRuntime,
    find_interpreter,
    spec,
)

__all__ = [
    "RESERVED_ENV_VARS",
    "RUNTIMES",
    "Family",
    "InstallError",
    "Interpreter",
    "InvalidEntrypoint",
    "LaunchCommand",
    "RuntimeNotAvailable",
    "RuntimeSpec",
    "UnknownRuntime",
    "ensure_installed",
    "find_interpreter",
    "language_paths",
    "launch_command",
    "log_group_name",
    "log_stream_name",
    "reserved_keys_message",
    "reserved_keys_used",
    "runtime_dir_name",
    "spec",
    "standard_environment",
    "zygote_command",
]
