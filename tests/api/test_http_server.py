"""The API port's protocol helpers: the log filter that keeps per-connection lines from multiplying, and
the connection cap's relation to the open-file limit. (The protocol itself is tested end to end, against a
real server, in tests/e2e/test_api_port_attacks.py.)"""

from __future__ import annotations

import asyncio
import logging
import resource

import pytest

from lambdad.api.http_server import RateLimitFilter, Refusals, connection_cap, raise_fd_limit


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, args, None)


def test_the_filter_passes_a_burst_per_template_then_reports_how_many_it_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("lambdad.api.http_server.time.monotonic", lambda: now[0])
    limiter = RateLimitFilter(interval=10, burst=2)
    passed = [limiter.filter(record("accept failed: %s", n)) for n in range(1000)]
    assert passed.count(True) == 2
    assert limiter.filter(record("another message"))  # templates are limited apart
    now[0] += 10
    first = record("accept failed: %s", 1)
    assert limiter.filter(first)
    assert first.getMessage() == "accept failed: 1 (998 more like it suppressed)"
    later = record("accept failed: %s", 2)
    assert limiter.filter(later) and later.getMessage() == "accept failed: 2"


def test_the_filter_keeps_a_bounded_number_of_kinds() -> None:
    limiter = RateLimitFilter(interval=10, burst=1)
    for n in range(5000):  # every message different from its first character on
        limiter.filter(record(f"{n} connection from 10.0.0.{n % 250} failed"))
    assert len(limiter._windows) <= RateLimitFilter.MAX_KINDS + 1


def test_refusals_are_one_summary_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    async def attack() -> None:
        refusals = Refusals(interval=0.05)
        for _ in range(5000):
            refusals.count("connections over the cap")
        refusals.count("oversized heads (431)")
        await asyncio.sleep(0.2)  # the interval passes: its summary is logged by the loop's timer

    with caplog.at_level(logging.WARNING, "lambdad.http"):
        asyncio.run(attack())
    assert [r.getMessage() for r in caplog.records] == [
        "HTTP refusals in the last 0.05 s: 5,000 connections over the cap, 1 oversized heads (431)"
    ]


def test_the_connection_cap_stays_under_half_the_open_file_limit() -> None:
    assert connection_cap(4096, 20_000) == 4096
    assert connection_cap(4096, 1024) == 512
    assert connection_cap(10, 1) == 1


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
        assert raise_fd_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if hard != resource.RLIM_INFINITY:
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
