"""Control-plane latency: GetFunctionConfiguration on lambdad vs a bare Starlette endpoint.

Both run as uvicorn servers on loopback and are driven by the same keep-alive HTTP client in the same
run, so the ratio shows what lambdad's model-driven API layer and store add to a request, whatever
the machine's speed.
"""

from __future__ import annotations

import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import starlette_server
from tests.support import Server, create_function

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
            with starlette_server(body) as baseline:
                _measure(server.port, path, 200)  # warm-up
                _measure(baseline.port, path, 200)
                ours = _summary(_measure(server.port, path, REQUESTS))
                theirs = _summary(_measure(baseline.port, path, REQUESTS))
        finally:
            server.stop()
    return [("GetFunctionConfiguration", *ours, *theirs)]
