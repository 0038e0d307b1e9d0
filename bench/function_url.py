"""Function URL: latency p50/p99 and throughput of a warm function behind its URL (AuthType NONE).

Each client is a thread with one keep-alive connection POSTing a small JSON body to the URL's path form
(``/_lambdad/urls/<url-id>/``): lambdad turns it into a payload format 2.0 event, runs the function in
its warm environment and renders its answer (a constant JSON object, the same bytes the baseline
sends). Against an in-process Starlette endpoint on uvicorn answering that JSON, at 1 and 4 clients.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlparse

from bench.common import (
    FULL_VCPU_MB,
    Endpoint,
    Load,
    Progress,
    Row,
    drive,
    lambdad_server,
    p50,
    p99,
    starlette_server,
)
from tests.support import create_function, make_zip

CLIENTS = (1, 4)
ROUNDS = 3
REQUESTS_PER_ROUND = 1200  # split between the clients
WARMUP = 100  # per client
HANDLER = 'def handler(event, context):\n    return {"hello": "world"}\n'
ANSWER = b'{"hello":"world"}'  # a dict without statusCode becomes a 200 application/json body, as on AWS


def run(progress: Progress) -> list[Row]:
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(lambdad_server())
        client = server.client()
        create_function(
            client, "url", MemorySize=FULL_VCPU_MB, Code={"ZipFile": make_zip({"handler.py": HANDLER})}
        )
        client.add_permission(
            FunctionName="url",
            StatementId="public-url",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            FunctionUrlAuthType="NONE",
        )
        url = client.create_function_url_config(FunctionName="url", AuthType="NONE")["FunctionUrl"]
        url_id = urlparse(url).hostname.split(".", 1)[0]  # type: ignore[union-attr]
        assert server.process is not None
        lambdad = Endpoint(server.port, f"/_lambdad/urls/{url_id}/", server.process.pid)
        starlette = stack.enter_context(starlette_server(ANSWER))
        for clients in CLIENTS:
            targets = {"lambdad": [lambdad] * clients, "starlette": [starlette] * clients}
            loads = {name: Load() for name in targets}
            progress(f"function URL, {clients} client(s): warming up...")
            for endpoints in targets.values():
                drive(endpoints, WARMUP, expect=ANSWER)
            for round_ in range(ROUNDS):
                for name, endpoints in targets.items():
                    progress(f"function URL, {clients} client(s): round {round_ + 1}/{ROUNDS}, {name}...")
                    loads[name].add(drive(endpoints, REQUESTS_PER_ROUND // clients, expect=ANSWER))
            rows += _rows(clients, loads["lambdad"], loads["starlette"])
    return rows


def _rows(clients: int, ours: Load, theirs: Load) -> list[Row]:
    what = f"function URL, {clients} client{'s' if clients > 1 else ''}:"
    baseline = "in-process Starlette"
    ms = 1000
    return [
        Row(f"{what} p50", baseline, "ms", p50(ours.latencies) * ms, p50(theirs.latencies) * ms),
        Row(f"{what} p99", baseline, "ms", p99(ours.latencies) * ms, p99(theirs.latencies) * ms),
        Row(
            f"{what} throughput", baseline, "req/s", ours.throughput, theirs.throughput, higher_is_better=True
        ),
    ]
