"""AWS's rules for an Event invocation after each attempt, in numbers (no waiting for minutes)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambdad.events import async_policy as policy
from lambdad.events.async_policy import Finish, Limits, Retry
from lambdad.store.function_configs import EventInvokeConfig

DELAYS = (60.0, 120.0)


def test_limits_default_to_two_retries_and_six_hours() -> None:
    assert Limits.of(None) == Limits(2, 21_600)
    config = EventInvokeConfig("$LATEST", datetime.now(UTC), maximum_retry_attempts=0)
    assert Limits.of(config) == Limits(0, 21_600)
    config = EventInvokeConfig("$LATEST", datetime.now(UTC), maximum_event_age=60)
    assert Limits.of(config) == Limits(2, 60)


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_function_errors_are_retried_maximum_retry_attempts_times(retries: int) -> None:
    limits = Limits(retries, 21_600)
    now = 1000.0
    decisions = [policy.after_function_error(1000.0, now, attempt, limits, DELAYS) for attempt in (1, 2, 3)]
    expected_retries = [Retry(now + DELAYS[i], decisions[i].reason) for i in range(retries)]  # type: ignore[union-attr]
    assert decisions[:retries] == expected_retries
    assert decisions[retries] == Finish("RetriesExhausted")


def test_retries_wait_one_then_two_minutes_by_default() -> None:
    first = policy.after_function_error(0.0, 10.0, 1, Limits(), DELAYS)
    second = policy.after_function_error(0.0, 80.0, 2, Limits(), DELAYS)
    assert isinstance(first, Retry) and first.due == 70.0
    assert isinstance(second, Retry) and second.due == 200.0


def test_a_retry_that_would_come_after_the_maximum_age_finishes_the_event_now() -> None:
    # AWS's recording: MaximumEventAgeInSeconds 60 with the one-minute retry delay gives
    # EventAgeExceeded after a single attempt.
    assert policy.after_function_error(0.0, 1.0, 1, Limits(2, 60), DELAYS) == Finish("EventAgeExceeded")


def test_throttle_backoff_doubles_from_one_second_up_to_the_cap() -> None:
    assert [policy.backoff(n, 300) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert [policy.backoff(n, 3) for n in (1, 2, 3, 4)] == [1, 2, 3, 3]


def test_throttled_events_return_to_the_queue_until_their_maximum_age() -> None:
    limits = Limits(0, 60)
    created, now, requeues = 0.0, 0.0, 0
    while True:
        requeues += 1
        decision = policy.after_throttle(created, now, requeues, limits, cap=8)
        if isinstance(decision, Finish):
            break
        now = decision.due
    assert decision == Finish("EventAgeExceeded")
    assert requeues > limits.maximum_retry_attempts + 1, "throttles do not spend the retry attempts"
    assert 52 <= now <= 60


def test_expired_compares_the_age_with_the_maximum() -> None:
    assert not policy.expired(100.0, 160.0, Limits(2, 60))
    assert policy.expired(100.0, 160.5, Limits(2, 60))
