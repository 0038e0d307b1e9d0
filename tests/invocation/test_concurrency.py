"""Concurrency leases per account: every account has its own limit and its own reservations, as on AWS,
so one account's busy functions never throttle another account's (nor does a function of the same name)."""

from __future__ import annotations

import asyncio

import pytest

from lambdad.errors import TooManyRequestsException
from lambdad.invocation.concurrency import LocalConcurrencyLeases
from lambdad.models import Scope

A = Scope("111111111111", "us-east-1")
B = Scope("222222222222", "us-east-1")


def test_each_account_has_its_own_unreserved_pool() -> None:
    async def scenario() -> None:
        leases = LocalConcurrencyLeases(account_limit=2)
        held = [await leases.acquire((A, "f"), None, 0), await leases.acquire((A, "g"), None, 0)]
        with pytest.raises(TooManyRequestsException):
            await leases.acquire((A, "h"), None, 0)
        other = await leases.acquire((B, "f"), None, 0)  # B's pool is untouched by A's invocations
        assert (leases.in_flight((A, "f")), leases.in_flight((B, "f"))) == (1, 1)
        leases.release(held[0])
        leases.release(other)
        await leases.acquire((A, "h"), None, 0)

    asyncio.run(scenario())


def test_reservations_of_a_shared_name_are_counted_per_account() -> None:
    async def scenario() -> None:
        leases = LocalConcurrencyLeases(account_limit=10)
        await leases.acquire((A, "same"), 1, 1)
        with pytest.raises(TooManyRequestsException):
            await leases.acquire((A, "same"), 1, 1)
        await leases.acquire((B, "same"), 1, 1)

    asyncio.run(scenario())
