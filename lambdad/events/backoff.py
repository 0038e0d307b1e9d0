"""Exponential backoff, the one curve every retry in ``events`` waits on: throttled Event invocations
(``async_policy``), schedule targets that cannot be invoked (``schedules``), failed stream batches
(``mappings.poller``) and messages a broker would redeliver at once (``sources.redelivery``)."""

from __future__ import annotations


def doubling(attempt: int, first: float, longest: float) -> float:
    """The wait before try number ``attempt`` (1 = the first retry): ``first``, then doubling with each
    attempt, never more than ``longest``."""
    return float(min(longest, first * 2 ** max(0, attempt - 1)))
