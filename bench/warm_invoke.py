"""Warm invoke: latency p50/p99 and throughput of Invoke on warm environments, at 1 and 4 clients.

Each client is a thread with one keep-alive ``http.client`` connection sending
``POST /2015-03-31/functions/NAME/invocations`` with a small JSON event that the hello function returns
(boto3 would cost more on the client than lambdad on the server). Against:

- an in-process Starlette endpoint on uvicorn answering the same JSON (the floor of any Python HTTP
  service: what lambdad adds is the invoke pipeline, the sandboxed runtime and the Runtime API hops);
- AWS's Runtime Interface Emulator running awslambdaric as a plain process (no sandbox), i.e. AWS's own
  Runtime API server in front of the same runtime client. An emulator serves one invocation at a time,
  so N clients get N emulators, one each (N execution environments, as lambdad makes N).

The function has MemorySize 1769 (one full vCPU each). Before measuring, each target gets a warm-up at
the same concurrency (so lambdad has as many warm environments as clients); then the targets take
turns, round after round, and each target's rounds are pooled.
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
    Load,
    Progress,
    Row,
    drive,
    interpreter,
    lambdad_server,
    p50,
    p99,
    starlette_server,
)
from tests.support import create_function

CLIENTS = (1, 4)
ROUNDS = 3
REQUESTS_PER_ROUND = 1200  # split between the clients
WARMUP = 100  # per client


def run(progress: Progress) -> list[Row]:
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(lambdad_server())
        create_function(server.client(), "hello", MemorySize=FULL_VCPU_MB)
        assert server.process is not None
        lambdad = Endpoint(server.port, INVOKE_PATH.format(name="hello"), server.process.pid)
        starlette = stack.enter_context(starlette_server(PAYLOAD))
        emulators: list[Endpoint] = []
        unavailable = ""
        try:
            binary = rie.binary(progress)
            handler_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lambdad-bench-rie-")))
            (handler_dir / "handler.py").write_text(HELLO_HANDLER)
            emulators = [
                stack.enter_context(rie.emulator(binary, handler_dir, interpreter()))
                for _ in range(max(CLIENTS))
            ]
        except (rie.Unavailable, OSError, RuntimeError, TimeoutError) as error:
            unavailable = f"aws-lambda-rie unavailable: {error}"
        for clients in CLIENTS:
            targets = {"lambdad": [lambdad] * clients, "starlette": [starlette] * clients}
            if emulators:
                targets["rie"] = emulators[:clients]
            loads = {name: Load() for name in targets}
            progress(f"warm invoke, {clients} client(s): warming up...")
            for endpoints in targets.values():
                drive(endpoints, WARMUP)
            for round_ in range(ROUNDS):
                for name, endpoints in targets.items():
                    progress(f"warm invoke, {clients} client(s): round {round_ + 1}/{ROUNDS}, {name}...")
                    loads[name].add(drive(endpoints, REQUESTS_PER_ROUND // clients))
            rows += _rows(clients, loads["lambdad"], loads["starlette"], "in-process Starlette", 1.5)
            if "rie" in loads:
                rows += _rows(clients, loads["lambdad"], loads["rie"], f"aws-lambda-rie x{clients}", None)
            else:
                rows += [
                    Row(
                        f"warm invoke, {clients} client(s)",
                        "aws-lambda-rie",
                        "",
                        None,
                        None,
                        note=unavailable,
                    )
                ]
    return rows


def _rows(clients: int, ours: Load, theirs: Load, baseline: str, target: float | None) -> list[Row]:
    what = f"warm invoke, {clients} client{'s' if clients > 1 else ''}:"
    ms = 1000
    return [
        Row(
            f"{what} p50", baseline, "ms", p50(ours.latencies) * ms, p50(theirs.latencies) * ms, target=target
        ),
        Row(f"{what} p99", baseline, "ms", p99(ours.latencies) * ms, p99(theirs.latencies) * ms),
        Row(
            f"{what} throughput", baseline, "req/s", ours.throughput, theirs.throughput, higher_is_better=True
        ),
    ]
