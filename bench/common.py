"""What the benchmarks share: result rows, percentiles, servers to compare, a keep-alive load driver.

Every figure is compared with a baseline measured in the same run (machines are shared and noisy), and
subjects and baselines are measured in alternating rounds so that a burst of noise hits both.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lambdad.runtimes import find_interpreter
from tests.support import Server, free_port

Progress = Callable[[str], None]

# The figures compare lambdad with itself and with baselines as they were measured before identities:
# every server runs ``--auth none`` (tests/support.py's switch) unless a benchmark asks for SigV4.
os.environ.setdefault("LAMBDAD_TEST_AUTH", "none")

# Runtime clients (awslambdaric, boto3) are installed once per machine there, shared with the test suite.
RUNTIMES_DIR = "/tmp/lambdad-test-runtimes"
INVOKE_PATH = "/2015-03-31/functions/{name}/invocations"
# A full vCPU: lambdad, like AWS, gives CPU in proportion to memory (128 MB gets 7% of one CPU).
FULL_VCPU_MB = 1769
HELLO_HANDLER = "def handler(event, context):\n    return event\n"
PAYLOAD = b'{"hello": "world"}'
RESPONSE = b'{"hello": "world"}'  # what awslambdaric's json.dumps makes of the event


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure of lambdad's, its baseline's, and how they compare."""

    what: str
    baseline: str
    unit: str
    value: float | None
    base: float | None
    target: float | None = None  # the target for the ratio, if it sets one
    higher_is_better: bool = False
    note: str = ""  # why the row has no figures

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.base:
            return None
        return self.value / self.base

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        if ratio is None or self.target is None:
            return None
        return ratio >= self.target if self.higher_is_better else ratio <= self.target


def p50(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p99(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def interpreter(runtime: str = "python3.12") -> Path:
    """The real interpreter binary lambdad runs ``runtime`` functions with (never a pyenv shim)."""
    found = find_interpreter(runtime).path
    assert found is not None, runtime
    return found


def runtimes_dir() -> Path:
    """Where lambdad's runtime clients are installed for these benchmarks."""
    return Path(os.environ.get("LAMBDAD_RUNTIMES_DIR", RUNTIMES_DIR))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads, dead ones included), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3 of stat(5), utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Pids of the live direct children of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def wait_http(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 20) -> None:
    """Wait until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening")
        try:
            with contextlib.closing(http.client.HTTPConnection("127.0.0.1", port, timeout=1)) as probe:
                probe.connect()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"{what} did not listen on port {port} in {timeout} s")


def stop(process: subprocess.Popen[bytes], group: bool = False) -> None:
    """Stop a process we started (and its process group if it leads one), politely then not."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                if group:
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.kill()
            process.wait(5)
    elif group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Endpoint:
    """Where one client sends its requests, and the process that serves them (whose CPU we count)."""

    port: int
    path: str
    pid: int
    # Sent with every request (e.g. a SigV4 signature, valid for minutes, so one serves a whole round).
    headers: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def starlette_server(body: bytes, path: str = "/{path:path}") -> Iterator[Endpoint]:
    """A bare Starlette app on uvicorn answering ``body`` to GET and POST: the in-process baseline."""
    port = free_port()
    source = textwrap.dedent(
        f"""
        import uvicorn
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route
        BODY = {body!r}
        async def endpoint(request):
            await request.body()
            return Response(BODY, media_type="application/json")
        app = Starlette(routes=[Route({path!r}, endpoint, methods=["GET", "POST"])])
        uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
        """
    )
    process = subprocess.Popen([sys.executable, "-c", source])
    try:
        wait_http(port, process, "the Starlette baseline")
        yield Endpoint(port, INVOKE_PATH.format(name="hello"), process.pid)
    finally:
        stop(process)


@contextlib.contextmanager
def lambdad_server(extra_args: Sequence[str] = ()) -> Iterator[Server]:
    """A real ``lambdad serve`` (isolated sandboxes, the default) in a temporary data directory."""
    os.environ.setdefault("LAMBDAD_RUNTIMES_DIR", RUNTIMES_DIR)
    with tempfile.TemporaryDirectory(prefix="lambdad-bench-") as directory:
        server = Server(Path(directory) / "data", extra_args=list(extra_args)).start()
        try:
            yield server
        finally:
            server.stop()


@dataclass
class Load:
    """Latencies (seconds) of the requests of one or more rounds, and the wall time they took."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall

    def add(self, other: Load) -> None:
        self.latencies += other.latencies
        self.wall += other.wall


def drive(
    endpoints: Sequence[Endpoint], requests: int, body: bytes = PAYLOAD, expect: bytes = RESPONSE
) -> Load:
    """One client thread per endpoint, each sending ``requests`` POSTs on one keep-alive connection.

    The clients start together; the wall time runs from their start until the last one finishes.
    """
    results: list[list[float]] = [[] for _ in endpoints]
    errors: list[BaseException] = []
    ready = threading.Barrier(len(endpoints) + 1)

    def client(endpoint: Endpoint, out: list[float]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=30)
        headers = {"Content-Type": "application/json", **endpoint.headers}
        try:
            connection.connect()
            ready.wait()
            for _ in range(requests):
                start = time.perf_counter()
                connection.request("POST", endpoint.path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                out.append(time.perf_counter() - start)
                if response.status != 200 or answer != expect:
                    raise RuntimeError(f"port {endpoint.port} answered {response.status}: {answer[:200]!r}")
        except BaseException as error:
            errors.append(error)
            ready.abort()
        finally:
            connection.close()

    threads = [
        threading.Thread(target=client, args=(endpoint, out), daemon=True)
        for endpoint, out in zip(endpoints, results, strict=True)
    ]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return Load([latency for out in results for latency in out], wall)


def compare_warm_invokes(
    subject: Endpoint, baseline: Endpoint, what: str, versus: str, progress: Progress
) -> list[Row]:
    """``subject`` against ``baseline`` (each a function answering ``PAYLOAD``): warm invokes at 1 and 4
    clients, in alternating rounds so that a burst of noise hits both; p50 and throughput rows."""
    rows: list[Row] = []
    targets = {"subject": subject, "baseline": baseline}
    for clients in (1, 4):
        loads = {name: Load() for name in targets}
        for endpoint in targets.values():
            drive([endpoint] * clients, COMPARE_WARMUP)
        for round_ in range(COMPARE_ROUNDS):
            for name, endpoint in targets.items():
                progress(f"{what}, {clients} client(s): round {round_ + 1}/{COMPARE_ROUNDS}, {name}...")
                loads[name].add(drive([endpoint] * clients, COMPARE_REQUESTS // clients))
        subject_load, baseline_load = loads["subject"], loads["baseline"]
        rows += [
            Row(
                f"{what}, {clients} client(s): p50",
                versus,
                "ms",
                p50(subject_load.latencies) * 1000,
                p50(baseline_load.latencies) * 1000,
            ),
            Row(
                f"{what}, {clients} client(s): throughput",
                versus,
                "req/s",
                subject_load.throughput,
                baseline_load.throughput,
                higher_is_better=True,
            ),
        ]
    return rows


# compare_warm_invokes: rounds per client count, requests per round (shared by the clients), warm-up.
COMPARE_ROUNDS = 3
COMPARE_REQUESTS = 1200
COMPARE_WARMUP = 100
