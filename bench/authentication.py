"""What authentication costs a warm invoke: the same function on a server with ``--auth sigv4`` (each
request's signature verified, its key looked up, the request decided by the root's policies) against one
with ``--auth none``, in alternating rounds, at 1 and 4 clients. One signature serves a whole round (it
is valid for minutes, as on AWS), so the figure is the server's cost, not the client's signing.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from bench.common import (
    FULL_VCPU_MB,
    INVOKE_PATH,
    PAYLOAD,
    Endpoint,
    Load,
    Progress,
    Row,
    drive,
    p50,
)
from tests.support import Server, create_function

ROUNDS = 3
REQUESTS_PER_ROUND = 1200
WARMUP = 100


def run(progress: Progress) -> list[Row]:
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lambdad-bench-auth-")))
        progress("authentication: a server with --auth sigv4 and one with --auth none...")
        servers = {
            "sigv4": Server(directory / "signed", auth=True),
            "none": Server(directory / "open", auth=False),
        }
        endpoints = {}
        for name, server in servers.items():
            server.start()
            stack.callback(server.stop)
            create_function(server.client(), "hello", MemorySize=FULL_VCPU_MB)
            assert server.process is not None
            path = INVOKE_PATH.format(name="hello")
            headers = server.signed_headers("POST", path, body=PAYLOAD)
            endpoints[name] = Endpoint(server.port, path, server.process.pid, headers)
        for clients in (1, 4):
            loads = {name: Load() for name in servers}
            for endpoint in endpoints.values():
                drive([endpoint] * clients, WARMUP)
            for round_ in range(ROUNDS):
                for name, endpoint in endpoints.items():
                    progress(f"authentication, {clients} client(s): round {round_ + 1}/{ROUNDS}, {name}...")
                    loads[name].add(drive([endpoint] * clients, REQUESTS_PER_ROUND // clients))
            rows += [
                Row(
                    f"warm invoke signed (--auth sigv4), {clients} client(s): p50",
                    "the same unsigned (--auth none)",
                    "ms",
                    p50(loads["sigv4"].latencies) * 1000,
                    p50(loads["none"].latencies) * 1000,
                ),
                Row(
                    f"warm invoke signed (--auth sigv4), {clients} client(s): throughput",
                    "the same unsigned (--auth none)",
                    "req/s",
                    loads["sigv4"].throughput,
                    loads["none"].throughput,
                    higher_is_better=True,
                ),
            ]
    return rows
