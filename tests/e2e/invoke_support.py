"""Helpers for the end-to-end tests of Invoke: servers sharing one runtimes cache, functions from source,
invocations decoded, the function's logs read back."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest

from tests.support import ROLE, Server, make_zip

# Runtime clients (awslambdaric, aws-lambda-ric) are installed once per machine and shared by every
# server the tests start: the first Node.js install takes minutes, later ones nothing.
RUNTIMES_DIR = "/tmp/lambdad-test-runtimes"
os.environ.setdefault("LAMBDAD_RUNTIMES_DIR", RUNTIMES_DIR)

# Generous enough for a first install of a runtime client on a fresh machine.
ACTIVE_WAIT = {"Delay": 0.2, "MaxAttempts": 1500}
REQUEST_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
STREAM_NAME = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")

T = TypeVar("T")


def unique(prefix: str) -> str:
    """A function name no other test (or xdist worker) uses: cgroups and logs are named after it."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def executable_zip(files: dict[str, str], executables: set[str]) -> bytes:
    """A zip whose ``executables`` carry mode 0755 (a ``bootstrap`` must be executable, as on AWS)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100755 if name in executables else 0o100644) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def start_server(directory: Path, *extra_args: str, env: dict[str, str] | None = None) -> Server:
    """A running lambdad server on its own data directory (``env``: extra environment variables)."""
    return Server(directory / "data", extra_args=list(extra_args), env=env or {}).start(timeout=60)


def server_fixture(*extra_args: str) -> Any:
    """A module-scoped fixture: one server with ``extra_args`` for the whole test module."""

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
        running = start_server(tmp_path_factory.mktemp("lambdad"), *extra_args)
        yield running
        running.stop(timeout=60)

    return server


def deploy(client: Any, name: str, files: dict[str, str | bytes], **overrides: Any) -> dict[str, Any]:
    """CreateFunction from source files (default: Python 3.12, ``handler.handler``), waiting until Active."""
    params: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "handler.handler",
        "Code": {"ZipFile": make_zip(files)},
        "Timeout": 30,
    }
    params.update(overrides)
    client.create_function(**params)
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=ACTIVE_WAIT)
    return dict(client.get_function_configuration(FunctionName=name))


def deploy_python(client: Any, name: str, source: str, **overrides: Any) -> dict[str, Any]:
    """A Python function whose ``handler.py`` is ``source``."""
    return deploy(client, name, {"handler.py": source}, **overrides)


def wait_updated(client: Any, name: str) -> None:
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=ACTIVE_WAIT)


def invoke(client: Any, name: str, event: Any = None, **params: Any) -> tuple[dict[str, Any], Any]:
    """Invoke; the response and its payload decoded from JSON (None when empty)."""
    if event is not None:
        params["Payload"] = json.dumps(event).encode()
    response = dict(client.invoke(FunctionName=name, **params))
    body = response["Payload"].read() if "Payload" in response else b""
    response["RawPayload"] = body
    return response, json.loads(body) if body else None


def tail(response: dict[str, Any]) -> str:
    """The log tail of an invocation made with LogType=Tail."""
    return base64.b64decode(response["LogResult"]).decode()


def request_id(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["RequestId"])


def report_fields(log: str) -> dict[str, str]:
    """The REPORT line's fields: {"Duration": "1.23 ms", "Init Duration": ..., "Status": ...}."""
    line = next(line for line in log.splitlines() if line.startswith("REPORT RequestId: "))
    fields: dict[str, str] = {}
    for part in line.split("\t"):
        key, _, value = part.partition(": ")
        if key:
            fields[key] = value
    return fields


def health(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.endpoint}/health", timeout=5) as answer:
        return dict(json.load(answer))


def eventually(probe: Callable[[], T | None], timeout: float = 30, interval: float = 0.1) -> T:
    """``probe()``'s first truthy answer, retried until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last answer: {value!r})")
        time.sleep(interval)


def log_group_dir(server: Server, function_name: str) -> Path:
    """The directory of the function's log group ``/aws/lambda/NAME`` (one file per stream)."""
    return server.data_dir / "logs" / quote(f"/aws/lambda/{function_name}", safe="")


def log_messages(server: Server, function_name: str) -> list[str]:
    """Every message in the function's log group, read from the server's files."""
    directory = log_group_dir(server, function_name)
    if not directory.exists():
        return []
    messages: list[tuple[int, str]] = []
    for path in directory.iterdir():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line:
                record = json.loads(line)
                messages.append((int(record["timestamp"]), str(record["message"])))
    return [message for _, message in sorted(messages, key=lambda pair: pair[0])]


def cgroup_dirs(function_name: str) -> list[Path]:
    """cgroup directories of the function's sandboxes (lambdad names them ``fn-NAME-<hex>``)."""
    root = Path("/sys/fs/cgroup")
    return sorted(root.glob(f"*/lambdad*/fn-{function_name}-*"))


def processes_with(marker: str) -> list[int]:
    """Pids of processes whose command line or environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            text = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in text:
            found.append(int(proc.name))
    return found
