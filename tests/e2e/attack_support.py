"""What the hardening tests share: a victim function whose warm invoke latency is measured while an
attack runs, compared with the same latency measured idle just before and after (same machine, same
noise from other test workers).

The claim every attack test makes is the issue's: the other functions' p99 stays within 2x of idle.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.invoke_support import deploy_python, invoke, unique
from tests.support import Server

VICTIM_SOURCE = "def handler(event, context):\n    return event\n"


def p99(samples: list[float]) -> float:
    """The 99th percentile of latencies (seconds)."""
    assert len(samples) >= 20, f"too few samples for a p99: {len(samples)}"
    return statistics.quantiles(samples, n=100)[98]


@dataclass
class Victim:
    """An innocent function, invoked warm in a loop to see what an attack does to everyone else."""

    server: Server
    name: str = field(default_factory=lambda: unique("victim"))
    client: Any = None
    #: Latencies measured idle before the attack (``baseline()``); after it, ``assert_unaffected`` measures.
    idle_before: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = self.server.client(read_timeout=60)
        # A whole vCPU: a smaller function waits for its CFS quota (128 MB gets 1.4 ms per 20 ms), which
        # would hide what the attack does to lambdad behind what the quota does to the victim.
        deploy_python(self.client, self.name, VICTIM_SOURCE, MemorySize=1769)
        invoke(self.client, self.name, {"warm": True})  # the cold start is not what is measured

    def once(self) -> float:
        started = time.perf_counter()
        response, payload = invoke(self.client, self.name, {"n": 1})
        elapsed = time.perf_counter() - started
        assert response["StatusCode"] == 200 and "FunctionError" not in response, response
        assert payload == {"n": 1}
        return elapsed

    def baseline(self) -> None:
        """Measure the victim idle, before the attack."""
        self.idle_before = self.measure()

    def measure(self, count: int = 150) -> list[float]:
        """``count`` warm invokes, one after another: their latencies."""
        return [self.once() for _ in range(count)]

    @contextlib.contextmanager
    def measuring(self, minimum: int = 150) -> Iterator[list[float]]:
        """Invokes in a loop on a thread of its own while the ``with`` body runs (the attack); the list
        yielded fills with latencies, and on exit holds at least ``minimum`` of them."""
        samples: list[float] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def loop() -> None:
            try:
                while not stop.is_set() or len(samples) < minimum:
                    samples.append(self.once())
            except BaseException as exc:  # surfaced in the test's thread below
                errors.append(exc)

        thread = threading.Thread(target=loop, name="victim", daemon=True)
        thread.start()
        try:
            yield samples
        finally:
            stop.set()
            thread.join(120)
        assert not errors, f"the victim's invocations failed during the attack: {errors[0]!r}"
        assert not thread.is_alive(), "the victim's invocations hung during the attack"


@dataclass
class LatencyVerdict:
    idle_p99_ms: float
    attacked_p99_ms: float

    @property
    def ratio(self) -> float:
        return self.attacked_p99_ms / self.idle_p99_ms

    def __str__(self) -> str:
        return (
            f"victim p99 {self.attacked_p99_ms:.2f} ms under attack vs {self.idle_p99_ms:.2f} ms idle "
            f"({self.ratio:.2f}x)"
        )


def judge(idle_before: list[float], attacked: list[float], idle_after: list[float]) -> LatencyVerdict:
    """The victim's p99 under attack against idle; idle is the worse of before and after, so that noise
    from the rest of the machine (other test workers) counts on both sides."""
    idle = max(p99(idle_before), p99(idle_after))
    return LatencyVerdict(idle * 1000, p99(attacked) * 1000)


def assert_unaffected(victim: Victim, attacked: list[float], record: Any = None, factor: float = 2.0) -> None:
    """Measure the victim idle again and check the attack kept its p99 within ``factor`` of idle;
    ``record`` (pytest's ``record_property``) prints the figures in the run's summary."""
    verdict = judge(victim.idle_before or victim.measure(), attacked, victim.measure())
    if record is not None:
        record("summary_victim_p99", str(verdict))
    assert verdict.ratio <= factor, str(verdict)
