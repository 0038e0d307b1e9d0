"""Provisioned concurrency, acted on: keeps the environment pool's provisioned environments in step with
the stored configs and reports each config's status (READY, or FAILED with a reason) to the service.
A Managed Instances version's MinExecutionEnvironments (FunctionScalingConfig) is kept the same way, on
the nodes of its capacity provider.

Runs on the event loop; ``schedule(scope, name)`` (from a change listener, through
``call_soon_threadsafe``) reconciles one function in the background, one pass at a time per function.

In a cluster one node at a time provisions a function's configs (``FunctionOwnership``, keyed by the
function's ARN): the others keep none of its provisioned environments and report nothing about it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

import anyio.to_thread

from lambdad.invocation.invoker import Invoker
from lambdad.invocation.pool import EnvironmentPool
from lambdad.models import Scope
from lambdad.services.capacity_providers import CapacityProviderService
from lambdad.services.provisioned import FAILED, READY, ProvisionedConcurrencyService, ProvisionedStatus

log = logging.getLogger(__name__)


class FunctionOwnership(Protocol):
    """Which functions' provisioned concurrency this node runs (by unqualified function ARN)."""

    def owns(self, key: str) -> bool: ...

    def track(self, keys: Iterable[str]) -> None:
        """Every function ARN with provisioned concurrency configs now."""
        ...


class OwnsEveryFunction:
    """A single server provisions every function."""

    def owns(self, key: str) -> bool:
        return True

    def track(self, keys: Iterable[str]) -> None:
        """Nothing to share."""


class Provisioner:
    """Starts and stops provisioned environments as configs, aliases and versions change."""

    def __init__(
        self,
        account: str,
        service: ProvisionedConcurrencyService,
        invoker: Invoker,
        pool: EnvironmentPool,
        ownership: FunctionOwnership | None = None,
        *,
        scaling: CapacityProviderService | None = None,
        node_provider: str = "",
    ) -> None:
        self._account = account
        self._ownership = ownership or OwnsEveryFunction()
        self._scaling = scaling
        self._node_provider = node_provider
        self._service = service
        self._invoker = invoker
        self._pool = pool
        self._tasks: dict[tuple[Scope, str], asyncio.Task[None]] = {}
        self._dirty: set[tuple[Scope, str]] = set()
        # (scope, name) of every function with provisioned concurrency configs.
        self._functions: set[tuple[Scope, str]] = set()
        # Those this server has provisioned since it started or took them over.
        self._provisioning: set[tuple[Scope, str]] = set()

    def schedule(self, scope: Scope, name: str) -> None:
        """Reconcile the function soon (again after the pass under way, if any)."""
        key = (scope, name)
        self._dirty.add(key)
        if key not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._run(key))
            self._tasks[key] = task

    async def resume(self) -> None:
        """Provision every stored config again (server start; in a cluster, after what this node owns
        changed)."""
        functions = await anyio.to_thread.run_sync(self._service.provisioned_functions)
        self._functions = set(functions)
        self._ownership.track(self._arns())
        for scope, name in functions:
            self.schedule(scope, name)
        if self._scaling is not None:
            for scope, name in await anyio.to_thread.run_sync(self._scaling.scaled_functions):
                self.schedule(scope, name)
        for arn in self._pool.provisioned_arns(""):
            scope, name = _scope_and_name(arn)
            if (scope, name) not in functions:
                self.schedule(scope, name)

    def _arns(self) -> list[str]:
        return [scope.function_arn(name) for scope, name in self._functions]

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, key: tuple[Scope, str]) -> None:
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                try:
                    await self.reconcile(*key)
                except Exception:
                    log.exception("provisioning %s failed", key[1])
        finally:
            self._tasks.pop(key, None)

    async def reconcile(self, scope: Scope, name: str) -> None:
        """One pass: start what the configs want, stop what they no longer want, report statuses."""
        plans = await anyio.to_thread.run_sync(self._service.plans, scope, name)
        # Every node hears every provisioned-concurrency change, so each keeps the full set of functions.
        if plans and (scope, name) not in self._functions:
            self._functions.add((scope, name))
            self._ownership.track(self._arns())
        elif not plans and (scope, name) in self._functions:
            self._functions.discard((scope, name))
            self._ownership.track(self._arns())
        owned = self._ownership.owns(scope.function_arn(name))
        wanted: dict[str, int] = defaultdict(int)
        for plan in plans if owned else ():
            for version, count in plan.shares.items():
                wanted[version] += count
        if self._scaling is not None:
            # Managed Instances minimums: kept by every node of the provider (not by the owner, which
            # may be outside the provider's group).
            minimums = await anyio.to_thread.run_sync(
                self._scaling.minimums, scope, name, self._node_provider
            )
            for version, minimum in minimums.items():
                wanted[version] = max(wanted[version], minimum)
        if not owned:
            self._provisioning.discard((scope, name))
        elif (scope, name) not in self._provisioning:
            # First pass here (server start, or this node just took the function over): the stored
            # statuses speak of environments elsewhere or gone, so they are IN_PROGRESS until reported.
            self._provisioning.add((scope, name))
            for plan in plans:
                await anyio.to_thread.run_sync(
                    self._service.report, scope, name, plan.qualifier, ProvisionedStatus()
                )
        prefix = scope.function_arn(name) + ":"
        for arn in self._pool.provisioned_arns(prefix):
            if arn[len(prefix) :] not in wanted:
                self._pool.unprovision(arn)
        ready: dict[str, int] = {}
        failures: dict[str, str] = {}
        for version, count in wanted.items():
            try:
                runnable = await self._invoker.find(scope, name, version)
                image = await self._invoker.image(scope, runnable)
                ready[version] = await self._pool.provision(image, count)
            except Exception as error:
                log.warning("provisioning %s:%s failed: %s", name, version, error)
                failures[version] = str(error)
                ready[version] = 0
        if not owned:
            return  # another node's to provision and report
        for plan in plans:
            allocated = sum(min(share, ready.get(version, 0)) for version, share in plan.shares.items())
            reasons = [failures[version] for version in plan.shares if version in failures]
            if allocated >= plan.requested:
                status = ProvisionedStatus(READY, plan.requested)
            else:
                reason = reasons[0] if reasons else "FUNCTION_ERROR_INIT_FAILURE"
                status = ProvisionedStatus(FAILED, allocated, reason)
            await anyio.to_thread.run_sync(self._service.report, scope, name, plan.qualifier, status)


def _scope_and_name(arn: str) -> tuple[Scope, str]:
    """(scope, name) of ``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]``."""
    parts = arn.split(":")
    return Scope(parts[4], parts[3]), parts[6]
