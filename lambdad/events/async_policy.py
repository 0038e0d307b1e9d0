"""AWS's rules for an Event invocation after each attempt: retry, go back to the queue, or finish.

From AWS's "How Lambda handles errors and retries with asynchronous invocation":

- a *function error* (the handler raised, timed out, ran out of memory...) is retried
  ``MaximumRetryAttempts`` times (0-2, default 2), one minute then two minutes later
  (``Settings.async_retry_delays``); then the event is finished with condition ``RetriesExhausted``;
- a *throttle* (429) or *system error* (5xx) returns the event to the queue, with a backoff growing
  exponentially from 1 s to 5 minutes (``Settings.async_throttle_backoff_max``), for as long as the event
  is younger than ``MaximumEventAgeInSeconds`` (60-21600, default 21600);
- an event older than that is finished with condition ``EventAgeExceeded``, without another attempt;
- with reserved concurrency 0, an event is finished at once with condition ``ZeroReservedConcurrency``
  (approximateInvokeCount 0), as AWS's recordings show.

Pure functions of numbers, so the rules are tested without waiting for minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lambdad.events.backoff import doubling
from lambdad.store.function_configs import EventInvokeConfig

DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 2
DEFAULT_MAXIMUM_EVENT_AGE = 21_600  # seconds: six hours
FIRST_BACKOFF = 1.0  # seconds before a throttled event's first return from the queue

SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"
ZERO_RESERVED_CONCURRENCY = "ZeroReservedConcurrency"


@dataclass(frozen=True)
class Limits:
    """The error-handling settings in force for one event (its qualifier's event invoke config)."""

    maximum_retry_attempts: int = DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_event_age: float = DEFAULT_MAXIMUM_EVENT_AGE  # seconds

    @classmethod
    def of(cls, config: EventInvokeConfig | None) -> Limits:
        """The config's settings, AWS's defaults for what it leaves unset."""
        if config is None:
            return cls()
        retries = config.maximum_retry_attempts
        age = config.maximum_event_age
        return cls(
            DEFAULT_MAXIMUM_RETRY_ATTEMPTS if retries is None else retries,
            DEFAULT_MAXIMUM_EVENT_AGE if age is None else age,
        )


@dataclass(frozen=True)
class Retry:
    """Run the event again at ``due`` (epoch seconds)."""

    due: float
    reason: str


@dataclass(frozen=True)
class Finish:
    """The event is done: send its record for ``condition`` where configured, then remove it."""

    condition: str


def expired(created_at: float, now: float, limits: Limits) -> bool:
    """Whether the event has waited longer than its maximum age."""
    return now - created_at > limits.maximum_event_age


def after_function_error(
    created_at: float, now: float, attempts: int, limits: Limits, delays: Sequence[float]
) -> Retry | Finish:
    """After the function failed on attempt number ``attempts`` (1 = the first run)."""
    if attempts > limits.maximum_retry_attempts:
        return Finish(RETRIES_EXHAUSTED)
    delay = delays[min(attempts, len(delays)) - 1] if delays else 0.0
    due = now + delay
    if due - created_at > limits.maximum_event_age:
        # The retry would come too late: AWS finishes the event now rather than at its deadline.
        return Finish(EVENT_AGE_EXCEEDED)
    return Retry(due, f"function error on attempt {attempts}; retry {attempts} in {delay:g} s")


def backoff(requeues: int, cap: float) -> float:
    """The wait before a throttled event's ``requeues``-th return (1 = first): 1, 2, 4, ... s, capped."""
    return doubling(requeues, FIRST_BACKOFF, cap)


def after_throttle(
    created_at: float, now: float, requeues: int, limits: Limits, cap: float
) -> Retry | Finish:
    """After a throttle or system error; ``requeues`` counts this one (1 = first)."""
    delay = backoff(requeues, cap)
    due = now + delay
    if due - created_at > limits.maximum_event_age:
        return Finish(EVENT_AGE_EXCEEDED)
    return Retry(due, f"back to the queue for {delay:g} s")
