"""Concurrency leases: the account's limit, and functions' reserved concurrency, as AWS counts them.

A function with reserved concurrency R runs at most R invocations at once, from its own reservation;
every other function shares what is left of the account limit (the unreserved pool). Past either, an
invocation is refused with TooManyRequestsException and AWS's Reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from lambdad.errors import TooManyRequestsException

RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"


@dataclass
class Lease:
    """One running invocation's place; give it back with ``ConcurrencyLimiter.release``."""

    function: tuple[str, str]  # (region, name)
    reserved: bool
    released: bool = False


class ConcurrencyLimiter:
    """Counts invocations in flight per function and in the unreserved pool. Event-loop only."""

    def __init__(self, account_limit: int) -> None:
        self.account_limit = account_limit
        self._in_flight: dict[tuple[str, str], int] = defaultdict(int)
        self._unreserved_in_flight = 0

    def acquire(self, function: tuple[str, str], reserved: int | None, total_reserved: int) -> Lease:
        """A lease, or TooManyRequestsException. ``reserved`` is the function's reservation (None if it
        has none); ``total_reserved`` the sum of every reservation in the region."""
        if reserved is not None:
            if self._in_flight[function] >= reserved:
                raise TooManyRequestsException.rate_exceeded(RESERVED_LIMIT)
            self._in_flight[function] += 1
            return Lease(function, reserved=True)
        if self._unreserved_in_flight >= self.account_limit - total_reserved:
            raise TooManyRequestsException.rate_exceeded(ACCOUNT_LIMIT)
        self._unreserved_in_flight += 1
        self._in_flight[function] += 1
        return Lease(function, reserved=False)

    def release(self, lease: Lease) -> None:
        """Return a lease (once)."""
        if lease.released:
            return
        lease.released = True
        self._in_flight[lease.function] -= 1
        if not lease.reserved:
            self._unreserved_in_flight -= 1

    def in_flight(self, function: tuple[str, str]) -> int:
        """Invocations of ``function`` running now."""
        return self._in_flight[function]
