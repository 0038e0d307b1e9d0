"""Control-plane latency: GetFunctionConfiguration on lambdad vs a bare Starlette endpoint.

Both run as uvicorn servers on loopback and are driven by the same keep-alive HTTP client in the same
run, so the ratio shows what lambdad's model-driven API layer and store add to a request, whatever
the machine's speed.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from tests.support import Server, create_function, free_port

REQUESTS = 2000


def _measure(port: int, path: str, count: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        connection.request("GET", path, headers={"Authorization": "Credential=x/20260101/us-east-1/lambda/"})
        response = connection.getresponse()
        response.read()
        samples.append(time.perf_counter() - start)
        assert response.status == 200, response.status
    connection.close()
    return samples


def _baseline_server(body: bytes) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    source = textwrap.dedent(
        f"""
        import uvicorn
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route
        BODY = {body!r}
        async def endpoint(request):
            return Response(BODY, media_type="application/json")
        app = Starlette(routes=[Route("/{{path:path}}", endpoint)])
        uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
        """
    )
    process = subprocess.Popen([sys.executable, "-c", source])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/")
            return process, port
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("baseline server did not start")


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99)] * 1000


def run() -> list[tuple[str, float, float, float, float]]:
    """Rows of (what, lambdad p50 ms, lambdad p99 ms, baseline p50 ms, baseline p99 ms)."""
    with tempfile.TemporaryDirectory() as directory:
        server = Server(Path(directory) / "data").start()
        try:
            create_function(server.client(), "bench")
            path = "/2015-03-31/functions/bench/configuration"
            connection = http.client.HTTPConnection("127.0.0.1", server.port)
            connection.request("GET", path)
            body = connection.getresponse().read()
            json.loads(body)
            baseline, port = _baseline_server(body)
            try:
                _measure(server.port, path, 200)  # warm-up
                _measure(port, path, 200)
                ours = _summary(_measure(server.port, path, REQUESTS))
                theirs = _summary(_measure(port, path, REQUESTS))
            finally:
                baseline.terminate()
                baseline.wait()
        finally:
            server.stop()
    return [("GetFunctionConfiguration", *ours, *theirs)]
