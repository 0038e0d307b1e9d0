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
    Progress,
    Row,
    compare_warm_invokes,
)
from tests.support import Server, create_function


def run(progress: Progress) -> list[Row]:
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
        rows = compare_warm_invokes(
            endpoints["sigv4"],
            endpoints["none"],
            "warm invoke signed (--auth sigv4)",
            "the same unsigned (--auth none)",
            progress,
        )
    return rows
