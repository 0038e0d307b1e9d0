"""The control-plane token bucket."""

from __future__ import annotations

from lambdad.api.throttle import RateLimiter


def test_bucket_refuses_past_its_burst_and_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=2, clock=lambda: now[0])
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert limiter.try_acquire() is True
    assert limiter.try_acquire() is False
