"""Concurrency leases: the account's limit, and functions' reserved concurrency, as AWS counts them.

A function with reserved concurrency R runs at most R invocations at once, from its own reservation;
every other function shares what is left of the account limit (the unreserved pool). Past either, an
invocation is refused with TooManyRequestsException and AWS's Reason. Provisioned environments are no
exception: an invocation they serve takes a lease like any other (their count came out of the same
reservation or pool when the config was put, ``services/provisioned.py``).

``ConcurrencyLeases`` is the port the invoke pipeline takes leases through; ``LocalConcurrencyLeases``
counts in this process (a single server), ``lambdad.cluster.concurrency.ClusterConcurrencyLeases`` for
the whole cluster. The composition root (``lambdad.app``) picks one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

from lambdad.errors import TooManyRequestsException
from lambdad.models import Scope

RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"

FunctionKey = tuple[Scope, str]  # (account and region, name): each account has its own limit


@dataclass
class Lease:
    """One running invocation's place; give it back with ``ConcurrencyLeases.release``."""

    function: FunctionKey
    reserved: bool  # counted in the function's reservation (else in its account's unreserved pool)
    released: bool = False


class ConcurrencyLeases(Protocol):
    """Where invocations take their place before they run and give it back when they finished."""

    async def acquire(self, function: FunctionKey, reserved: int | None, total_reserved: int) -> Lease:
        """A lease, or TooManyRequestsException with AWS's Reason. ``reserved`` is the function's
        reservation (None if it has none); ``total_reserved`` the sum of every reservation in the region.
        Never waits long: a cluster implementation that cannot count refuses."""
        ...

    def release(self, lease: Lease) -> None:
        """Give a lease back (once; again is a no-op). Never waits: it may be called from a callback."""
        ...

    def in_flight(self, function: FunctionKey) -> int:
        """Invocations of ``function`` running in this process now."""
        ...


class LocalConcurrencyLeases:
    """Counts invocations in flight per function and in the unreserved pool, in this process: a single
    server's leases. Event-loop only; ``acquire`` never awaits anything."""

    def __init__(self, account_limit: int) -> None:
        self.account_limit = account_limit
        self._in_flight: dict[FunctionKey, int] = defaultdict(int)
        # Per account and region: every account has its own limit, as on AWS.
        self._unreserved_in_flight: dict[Scope, int] = defaultdict(int)

    async def acquire(self, function: FunctionKey, reserved: int | None, total_reserved: int) -> Lease:
        if reserved is not None:
            if self._in_flight[function] >= reserved:
                raise TooManyRequestsException.rate_exceeded(RESERVED_LIMIT)
            self._in_flight[function] += 1
            return Lease(function, reserved=True)
        pool = function[0]
        if self._unreserved_in_flight[pool] >= self.account_limit - total_reserved:
            raise TooManyRequestsException.rate_exceeded(ACCOUNT_LIMIT)
        self._unreserved_in_flight[pool] += 1
        self._in_flight[function] += 1
        return Lease(function, reserved=False)

    def release(self, lease: Lease) -> None:
        if lease.released:
            return
        lease.released = True
        self._in_flight[lease.function] -= 1
        if not lease.reserved:
            self._unreserved_in_flight[lease.function[0]] -= 1

    def in_flight(self, function: FunctionKey) -> int:
        return self._in_flight[function]
