"""Cold start: request-to-response time of an isolated Python hello on a new execution environment.

How a sample is made cold: the server runs with ``--idle-timeout 0.1``, so after each invoke its
environment is reaped (scale to zero). Before the next sample the benchmark waits until the server has
no child process left (every sandbox's bubblewrap gone) plus a short settle, then times one Invoke on
a keep-alive connection. The function is unchanged between samples, so its code is already unpacked
and its runtime client installed (as on AWS, where a cold start after scale-to-zero reuses the cached
package): what is timed is creating the sandbox, starting the runtime and running its init, plus the
invocation itself. Every sample's REPORT line (from ``X-Amz-Log-Type: Tail``) must carry an
``Init Duration``, which proves the environment was new.

A second measure is the cold start of a function on a running server: each sample invokes a function
never invoked before (a genuinely new environment, with Init Duration), once the server has a
pre-initialised spare environment for its runtime ready (``/health`` reports ``spares``). That is the
cold start the issue's target is about: specialising an already-running sandbox.

Baseline, interleaved with the samples: ``python3.12 -I -S -c pass`` run by the same real interpreter
binary lambdad runs the function with (not a pyenv shim).
"""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import time
import urllib.request
from pathlib import Path

from bench.common import (
    FULL_VCPU_MB,
    INVOKE_PATH,
    PAYLOAD,
    RESPONSE,
    Progress,
    Row,
    children,
    interpreter,
    lambdad_server,
)
from tests.support import Server, create_function

SAMPLES = 30
IDLE_TIMEOUT_S = 0.1
SETTLE_S = 0.1  # after the last sandbox process is gone: its cgroups and veth are removed off-thread


def _bare_start(python: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(python), "-I", "-S", "-c", "pass"], check=True)
    return time.perf_counter() - start


def _wait_scaled_to_zero(server: Server, timeout: float = 10) -> None:
    assert server.process is not None
    time.sleep(IDLE_TIMEOUT_S)
    deadline = time.monotonic() + timeout
    while children(server.process.pid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the idle environment was not reaped in {timeout} s")
        time.sleep(0.01)
    time.sleep(SETTLE_S)


def _cold_invoke(port: int, name: str) -> tuple[float, str]:
    """One Invoke on a fresh connection (connected before the clock starts); (seconds, REPORT line)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.connect()
    try:
        start = time.perf_counter()
        connection.request(
            "POST", INVOKE_PATH.format(name=name), body=PAYLOAD, headers={"X-Amz-Log-Type": "Tail"}
        )
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
    finally:
        connection.close()
    if response.status != 200 or body != RESPONSE:
        raise RuntimeError(f"cold invoke answered {response.status}: {body[:300]!r}")
    tail = base64.b64decode(response.getheader("X-Amz-Log-Result") or "").decode(errors="replace")
    report = next((line for line in tail.splitlines() if line.startswith("REPORT")), "")
    return elapsed, report


def _wait_for_spare(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{server.endpoint}/health", timeout=5) as response:
            if json.load(response).get("spares", 0) >= 1:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no spare environment became ready in {timeout} s")
        time.sleep(0.01)


def _spare_samples(progress: Progress, python: Path) -> tuple[list[float], list[float]]:
    """(cold starts of new functions with a spare ready, bare interpreter starts)."""
    bare: list[float] = []
    cold: list[float] = []
    with lambdad_server(["--spares", "1"]) as server:
        client = server.client()
        names = [f"fresh-{sample}" for sample in range(SAMPLES + 1)]
        for name in names:
            create_function(client, name, MemorySize=FULL_VCPU_MB)
        _cold_invoke(server.port, names[0])  # first start of the runtime: no spare yet, not counted
        for sample, name in enumerate(names[1:]):
            progress(f"cold start with a spare ready: sample {sample + 1}/{SAMPLES}...")
            _wait_for_spare(server)
            bare.append(_bare_start(python))
            elapsed, report = _cold_invoke(server.port, name)
            if "Init Duration" not in report:
                raise RuntimeError(f"a cold-start sample reused a warm environment: {report!r}")
            cold.append(elapsed)
    return cold, bare


def run(progress: Progress) -> list[Row]:
    python = interpreter()
    spare_cold, spare_bare = _spare_samples(progress, python)
    bare: list[float] = []
    cold: list[float] = []
    with lambdad_server(["--idle-timeout", str(IDLE_TIMEOUT_S)]) as server:
        create_function(server.client(), "cold", MemorySize=FULL_VCPU_MB)
        _cold_invoke(server.port, "cold")  # the very first start pays for page-cache misses: not counted
        _bare_start(python)
        for sample in range(SAMPLES):
            progress(f"cold start: sample {sample + 1}/{SAMPLES} (lambdad vs {python} -I -S -c pass)...")
            _wait_scaled_to_zero(server)
            bare.append(_bare_start(python))
            elapsed, report = _cold_invoke(server.port, "cold")
            if "Init Duration" not in report:
                raise RuntimeError(f"a cold-start sample reused a warm environment: {report!r}")
            cold.append(elapsed)
    baseline = f"{python.name} -I -S -c pass"
    ms = 1000
    return [
        Row(
            "cold start, spare ready: p50",
            baseline,
            "ms",
            _p(spare_cold, 50) * ms,
            _p(spare_bare, 50) * ms,
            target=1.0,
        ),
        Row("cold start, spare ready: p90", baseline, "ms", _p(spare_cold, 90) * ms, _p(spare_bare, 90) * ms),
        Row("cold start from zero: p50", baseline, "ms", _p(cold, 50) * ms, _p(bare, 50) * ms),
        Row("cold start from zero: p90", baseline, "ms", _p(cold, 90) * ms, _p(bare, 90) * ms),
    ]


def _p(samples: list[float], percent: int) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * percent / 100))]
