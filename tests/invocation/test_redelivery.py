"""The invoker gives an invocation whose environment's runtime had died before it got there to another
environment (RuntimeGone), a bounded number of times; the last try answers whatever happens."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from lambdad.environment import RuntimeGone
from lambdad.invocation.concurrency import LocalConcurrencyLeases
from lambdad.invocation.invoker import REDELIVERIES, Invoker, InvokeRequest
from lambdad.models import FunctionState, Scope


class Environment:
    def __init__(self, gone: bool) -> None:
        self.gone = gone
        self.redeliverable: bool | None = None
        self.egress = None  # outside a VPC

    async def invoke(self, invocation: Any, timeout: float, *, redeliverable: bool) -> Any:
        self.redeliverable = redeliverable
        if self.gone and redeliverable:
            raise RuntimeGone(invocation.request_id)
        return SimpleNamespace(payload=b'"ran"', function_error=self.gone)


class Pool:
    def __init__(self, environments: list[Environment]) -> None:
        self.waiting = list(environments)
        self.released: list[Environment] = []

    async def acquire(self, image: Any, limit: int | None = None) -> Environment:
        return self.waiting.pop(0)

    def release(self, environment: Environment) -> None:
        self.released.append(environment)


def invoker(pool: Pool) -> Invoker:
    version = SimpleNamespace(
        state=FunctionState.ACTIVE, timeout=3, name="f", version="$LATEST", revision_id="r", extra={}
    )
    runnable = SimpleNamespace(
        version=version,
        reserved_concurrency=None,
        total_reserved=0,
        network=None,
        qualifier=None,
        max_environments=None,
        egress=None,
    )
    lookup = SimpleNamespace(cached=lambda *_: runnable)
    images = SimpleNamespace(image_for=lambda *_: "image")
    return Invoker(cast(Any, lookup), cast(Any, images), cast(Any, pool), LocalConcurrencyLeases(10))


def request() -> InvokeRequest:
    return InvokeRequest(Scope("000000000000", "us-east-1"), "f", None, b"{}", "request-1")


def test_an_invocation_the_runtime_never_took_runs_in_the_next_environment() -> None:
    pool = Pool([Environment(gone=True), Environment(gone=False)])
    result = asyncio.run(invoker(pool).invoke(request()))
    assert result.payload == b'"ran"' and result.function_error is None
    assert len(pool.released) == 2  # both given back: the dead one is the pool's to stop


def test_redelivery_is_bounded_and_the_last_try_answers_the_exit() -> None:
    environments = [Environment(gone=True) for _ in range(REDELIVERIES + 1)]
    pool = Pool(environments)
    result = asyncio.run(invoker(pool).invoke(request()))
    assert result.function_error == "Unhandled"
    assert [e.redeliverable for e in environments] == [True] * REDELIVERIES + [False]
