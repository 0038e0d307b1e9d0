"""Server CPU per invoke: what one warm Invoke costs the lambdad server process itself.

CPU = user + system time of the server process (all its threads: the event loop, the Runtime API it
serves to every environment, worker threads) from /proc/<pid>/stat, over N sequential warm invokes on
one keep-alive connection, divided by N. The function's own CPU (inside its sandbox) is not counted.

Baselines, in alternating rounds with lambdad: the in-process Starlette endpoint's CPU per request, and
aws-lambda-rie's CPU per invoke (the emulator process only, not the awslambdaric child it runs): AWS's
Runtime API server doing the same job as lambdad's data plane, in Go.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from bench import rie
from bench.common import (
    FULL_VCPU_MB,
    HELLO_HANDLER,
    INVOKE_PATH,
    PAYLOAD,
    Endpoint,
    Progress,
    Row,
    cpu_seconds,
    drive,
    interpreter,
    lambdad_server,
    starlette_server,
)
from tests.support import create_function

ROUNDS = 3
REQUESTS_PER_ROUND = 600  # /proc counts CPU in 10 ms ticks: enough requests make that fine-grained
WARMUP = 100


def _cpu_per_request(endpoint: Endpoint, requests: int) -> float:
    before = cpu_seconds(endpoint.pid)
    drive([endpoint], requests)
    return cpu_seconds(endpoint.pid) - before


def run(progress: Progress) -> list[Row]:
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(lambdad_server())
        create_function(server.client(), "hello", MemorySize=FULL_VCPU_MB)
        assert server.process is not None
        targets = {
            "lambdad": Endpoint(server.port, INVOKE_PATH.format(name="hello"), server.process.pid),
            "starlette": stack.enter_context(starlette_server(PAYLOAD)),
        }
        unavailable = ""
        try:
            binary = rie.binary(progress)
            handler_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lambdad-bench-rie-")))
            (handler_dir / "handler.py").write_text(HELLO_HANDLER)
            targets["rie"] = stack.enter_context(rie.emulator(binary, handler_dir, interpreter()))
        except (rie.Unavailable, OSError, RuntimeError, TimeoutError) as error:
            unavailable = f"aws-lambda-rie unavailable: {error}"
        for endpoint in targets.values():
            drive([endpoint], WARMUP)
        cpu = dict.fromkeys(targets, 0.0)
        for round_ in range(ROUNDS):
            for name, endpoint in targets.items():
                progress(f"server CPU per invoke: round {round_ + 1}/{ROUNDS}, {name}...")
                cpu[name] += _cpu_per_request(endpoint, REQUESTS_PER_ROUND)
    count = ROUNDS * REQUESTS_PER_ROUND
    ms = {name: seconds / count * 1000 for name, seconds in cpu.items()}
    what = "server CPU per warm invoke"
    rows = [Row(what, "in-process Starlette", "ms", ms["lambdad"], ms["starlette"])]
    if "rie" in ms:
        rows.append(Row(what, "aws-lambda-rie process", "ms", ms["lambdad"], ms["rie"]))
    else:
        rows.append(Row(what, "aws-lambda-rie process", "", None, None, note=unavailable))
    return rows
