"""Warm environments per function, reused while warm, multiplied under concurrency, reaped when idle.

The pool hands out an environment per invocation: the most recently used idle one for the same image
(warm start), or a new one (cold start). An environment whose image is no longer current (the function
was updated) is drained: shut down when idle, or when its invocation ends. Provisioned environments
(``provision``) are started ahead of any invocation for a published version, never reaped, and handed out
before any other environment of their version. Policies that only watch
(metrics) subscribe to the events rather than being called from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from lambdad.environment import (
    ExecutionEnvironment,
    FunctionImage,
    LambdaApi,
    RoleCredentials,
    SharedExecutionEnvironment,
    Spare,
    SpareKey,
)
from lambdad.invocation.spares import SparePool
from lambdad.observability.logs import LogStore
from lambdad.sandbox import SandboxFactory, supports_specialization

log = logging.getLogger(__name__)

PoolListener = Callable[[str, ExecutionEnvironment], None]  # (event, environment)
EnvironmentMaker = Callable[[FunctionImage], ExecutionEnvironment]


def environment_maker(
    factory: SandboxFactory,
    logs: LogStore,
    lambda_api: LambdaApi | None = None,
    lambda_endpoint: str | None = None,
    initialization_type: str = "on-demand",
    credentials: RoleCredentials | None = None,
    max_age_s: float | None = None,
) -> EnvironmentMaker:
    """Environments in sandboxes from ``factory``, logging to ``logs``, reaching the Lambda API through
    ``lambda_api`` (in their sandbox) or at ``lambda_endpoint``, given their execution role's
    ``credentials`` and retired after ``max_age_s``. An image that serves several invocations at once
    (Managed Instances) gets a ``SharedExecutionEnvironment``."""
    lifetime: dict[str, Any] = {} if max_age_s is None else {"max_age_s": max_age_s}

    def make(image: FunctionImage) -> ExecutionEnvironment:
        kind = SharedExecutionEnvironment if image.max_concurrency > 1 else ExecutionEnvironment
        return kind(
            image,
            factory,
            logs,
            initialization_type=initialization_type,
            lambda_api=lambda_api,
            lambda_endpoint=lambda_endpoint,
            credentials=credentials,
            **lifetime,
        )

    return make


def spare_pool(factory: SandboxFactory, per_key: int, idle_timeout_s: float) -> SparePool | None:
    """``per_key`` spares per key in use, in sandboxes from ``factory``; None if off (0) or the sandbox
    implementation cannot specialise a running sandbox."""
    if per_key <= 0:
        return None
    if not supports_specialization(factory):
        log.info("sandbox %r cannot use spare environments: cold starts take the full path", factory.name)
        return None

    def make(key: SpareKey) -> Spare:
        return Spare(key, factory)

    return SparePool(make, per_key, idle_timeout_s)


class PoolFull(Exception):
    """A version already has as many environments as its MaxExecutionEnvironments allows."""

    def __init__(self, function_arn: str, limit: int) -> None:
        super().__init__(f"{function_arn} has {limit} execution environment(s), its maximum")
        self.function_arn = function_arn
        self.limit = limit


class EnvironmentPool:
    """All execution environments of one server."""

    def __init__(
        self,
        make_environment: EnvironmentMaker,
        idle_timeout_s: float = 300,
        spares: SparePool | None = None,
        make_provisioned: EnvironmentMaker | None = None,
    ) -> None:
        self._make_environment = make_environment
        self._make_provisioned = make_provisioned or make_environment
        # Provisioned environments: the wanted (fingerprint, count) per version ARN, the idle ones, and
        # every one alive (idle or busy).
        self._targets: dict[str, tuple[str, int]] = {}
        self._provisioned_idle: dict[str, list[ExecutionEnvironment]] = defaultdict(list)
        self._provisioned: set[ExecutionEnvironment] = set()
        self._replenishing: set[asyncio.Task[int]] = set()
        self.idle_timeout_s = idle_timeout_s
        #: Pre-initialised sandboxes a cold start specialises instead of starting one (None: off).
        self.spares = spares
        self._idle: dict[str, list[ExecutionEnvironment]] = defaultdict(list)  # by function ARN
        self._busy: set[ExecutionEnvironment] = set()
        self._current: dict[str, str] = {}  # function ARN -> fingerprint of its current image
        self._stopping: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._listeners: list[PoolListener] = []
        self._closed = False
        #: Environments serving several invocations at once (Managed Instances), idle or not, by function
        #: ARN; how many invocations each was handed; and those still starting (joined while they start).
        self._shared: dict[str, list[ExecutionEnvironment]] = defaultdict(list)
        self._claims: dict[ExecutionEnvironment, int] = {}
        self._starting: dict[ExecutionEnvironment, asyncio.Future[None]] = {}

    def subscribe(self, listener: PoolListener) -> None:
        """Call ``listener(event, environment)`` on "created", "reused", "idle" and "stopped"."""
        self._listeners.append(listener)

    @property
    def environments(self) -> int:
        """How many environments exist (idle and busy)."""
        idle = sum(len(idle) for idle in self._idle.values())
        shared = sum(1 for e in self._claims if e not in self._provisioned)
        return len(self._busy) + idle + shared + sum(len(ready) for ready in self._provisioned_idle.values())

    def idle_by_function(self) -> dict[str, int]:
        """Idle environments (on-demand and provisioned) per function ARN: where a warm start waits."""
        idle: dict[str, int] = defaultdict(int)
        for group in (self._idle, self._provisioned_idle):
            for arn, environments in group.items():
                if environments:
                    idle[arn] += len(environments)
        for environment, claims in self._claims.items():  # a shared one with room takes a warm start
            if 0 < claims < environment.image.max_concurrency and environment.reusable:
                idle[environment.image.function_arn] += 1
        return dict(idle)

    @property
    def busy_environments(self) -> int:
        """Environments running an invocation now."""
        return len(self._busy) + sum(1 for claims in self._claims.values() if claims > 0)

    @property
    def running_invocations(self) -> int:
        """Invocations running now: one per busy environment, several in a shared one."""
        return len(self._busy) + sum(self._claims.values())

    def _count(self, function_arn: str) -> int:
        """The version's environments (idle, busy, provisioned), counted before one more is made: no
        await between this count and the new one's joining ``_busy``, so concurrent acquires agree."""
        busy = sum(1 for e in self._busy if e.image.function_arn == function_arn)
        idle = len(self._idle.get(function_arn, ()))
        idle += sum(1 for e in self._shared.get(function_arn, ()) if e not in self._provisioned)
        provisioned = sum(1 for e in self._provisioned if e.image.function_arn == function_arn)
        busy_provisioned = sum(
            1 for e in self._busy if e in self._provisioned and e.image.function_arn == function_arn
        )
        return busy + idle + provisioned - busy_provisioned

    def provisioned_environments(self, function_arn: str) -> int:
        """How many provisioned environments of the version exist (idle and busy)."""
        return sum(1 for environment in self._provisioned if environment.image.function_arn == function_arn)

    def environments_of(self, function_arn: str) -> list[ExecutionEnvironment]:
        """Every live environment (idle, busy, shared or provisioned) of the function, of any version."""
        every = {
            *self._busy,
            *self._provisioned,
            *self._claims,
            *(e for idle in self._idle.values() for e in idle),
            *(e for idle in self._provisioned_idle.values() for e in idle),
        }
        return [e for e in every if e.image.function_arn.split(":")[:7] == function_arn.split(":")[:7]]

    def provisioned_arns(self, prefix: str) -> list[str]:
        """The version ARNs starting with ``prefix`` that have provisioned environments wanted."""
        return [arn for arn in self._targets if arn.startswith(prefix)]

    async def provision(self, image: FunctionImage, count: int) -> int:
        """Keep ``count`` provisioned environments of ``image`` (started now, initialised, exempt from
        reaping); returns how many are ready."""
        if self._closed:
            raise RuntimeError("the environment pool is closed")
        self._ensure_reaper()
        arn, fingerprint = image.function_arn, image.fingerprint
        self._targets[arn] = (fingerprint, count)
        keep = []
        for environment in self._provisioned_idle.pop(arn, []):
            if environment.reusable and environment.image.fingerprint == fingerprint:
                keep.append(environment)
            else:
                self._stop_provisioned(environment)
        busy = sum(1 for e in self._provisioned if e.image.function_arn == arn and self._in_use(e))
        while keep and len(keep) + busy > count:
            self._stop_provisioned(keep.pop(0))
        self._provisioned_idle[arn] = keep
        missing = count - len(keep) - busy
        if missing > 0:
            await asyncio.gather(*(self._start_provisioned(image) for _ in range(missing)))
        return self.provisioned_environments(arn)

    def unprovision(self, function_arn: str) -> None:
        """No provisioned environments for the version any more: idle ones stop now, busy ones when
        released."""
        self._targets.pop(function_arn, None)
        for environment in self._provisioned_idle.pop(function_arn, []):
            self._stop_provisioned(environment)

    async def _start_provisioned(self, image: FunctionImage) -> None:
        environment = self._make_provisioned(image)
        self._provisioned.add(environment)
        try:
            await environment.start()
        except BaseException:
            self._stop_provisioned(environment)
            raise
        target = self._targets.get(image.function_arn)
        if (
            environment.reusable
            and target is not None
            and target[0] == image.fingerprint
            and not self._closed
        ):
            self._provisioned_idle[image.function_arn].append(environment)
            self._notify("created", environment)
        else:
            self._stop_provisioned(environment)

    def _stop_provisioned(self, environment: ExecutionEnvironment) -> None:
        self._provisioned.discard(environment)
        self._stop(environment)

    @property
    def spare_environments(self) -> int:
        """How many spare environments are ready (0 when spares are off)."""
        return self.spares.spares if self.spares is not None else 0

    async def acquire(self, image: FunctionImage, limit: int | None = None) -> ExecutionEnvironment:
        """An environment for ``image``, ready to invoke (or holding its init error). With ``limit``, no
        new one is made while the version has that many (idle, busy or provisioned): ``PoolFull``."""
        if self._closed:
            raise RuntimeError("the environment pool is closed")
        self._ensure_reaper()
        self._set_current(image.function_arn, image.fingerprint)
        if image.max_concurrency > 1:
            return await self._acquire_shared(image, limit)
        provisioned = self._provisioned_idle.get(image.function_arn)
        while provisioned:
            environment = provisioned.pop()
            if environment.reusable and environment.image.fingerprint == image.fingerprint:
                self._busy.add(environment)
                self._notify("reused", environment)
                return environment
            self._stop_provisioned(environment)
        idle = self._idle[image.function_arn]
        spare_key = image.spare_key if self.spares is not None else None
        while idle:
            environment = idle.pop()  # most recently used: its caches are warmest
            if environment.reusable and environment.image.fingerprint == image.fingerprint:
                self._busy.add(environment)
                if spare_key is not None and self.spares is not None:
                    self.spares.note(spare_key)
                self._notify("reused", environment)
                return environment
            self._stop(environment)
        if limit is not None and self._count(image.function_arn) >= limit:
            raise PoolFull(image.function_arn, limit)
        environment = self._make_environment(image)
        self._busy.add(environment)
        try:
            spare = None
            if spare_key is not None and self.spares is not None:
                made = environment
                spare = self.spares.take(spare_key, lambda s: s.fits(made.function_environment()))
            if spare is None:
                await environment.start()
            else:
                await environment.start(spare)
            if spare_key is not None and self.spares is not None:
                self.spares.note(spare_key)  # refill (or first fill) once this cold start is done
        except BaseException:
            self._busy.discard(environment)
            self._stop(environment)
            raise
        self._notify("created", environment)
        return environment

    async def _acquire_shared(self, image: FunctionImage, limit: int | None) -> ExecutionEnvironment:
        """A Managed Instances environment with room for one more invocation: the busiest that has room
        (invocations pack into few environments, each up to ``max_concurrency``), provisioned ones
        included; one still starting counts, and the caller waits for its start. Else a new one, within
        ``limit`` (``PoolFull``). No spare: a spare's runtime was started for one invocation at a time."""
        arn, room = image.function_arn, image.max_concurrency
        candidates = [
            e
            for e in (
                *self._shared.get(arn, ()),
                *(e for e in self._provisioned if e.image.function_arn == arn),
            )
            if e.image.fingerprint == image.fingerprint
            and (e.reusable or e in self._starting)
            and self._claims.get(e, 0) < room
        ]
        if candidates:
            chosen: ExecutionEnvironment = max(candidates, key=lambda e: self._claims.get(e, 0))
            self._claim(chosen)
            starting = self._starting.get(chosen)
            if starting is not None:
                try:
                    await asyncio.shield(starting)
                except BaseException:
                    self.release(chosen)
                    raise
            self._notify("reused", chosen)
            return chosen
        if limit is not None and self._count(arn) >= limit:
            raise PoolFull(arn, limit)
        environment = self._make_environment(image)
        self._shared[arn].append(environment)
        self._claim(environment)
        started = asyncio.get_running_loop().create_future()
        self._starting[environment] = started
        try:
            await environment.start()
        except BaseException as error:
            started.set_exception(error)
            started.exception()
            self.release(environment)
            raise
        finally:
            del self._starting[environment]
            if not started.done():
                started.set_result(None)
        self._notify("created", environment)
        return environment

    def _claim(self, environment: ExecutionEnvironment) -> None:
        self._claims[environment] = self._claims.get(environment, 0) + 1
        if environment in self._provisioned:
            ready = self._provisioned_idle.get(environment.image.function_arn, [])
            if environment in ready:
                ready.remove(environment)

    def _in_use(self, environment: ExecutionEnvironment) -> bool:
        return environment in self._busy or self._claims.get(environment, 0) > 0

    def _release_shared(self, environment: ExecutionEnvironment) -> None:
        """One invocation of a shared environment ended: with none left it idles (or stops, if it cannot
        be reused or is no longer current)."""
        claims = self._claims[environment] - 1
        if claims > 0:
            self._claims[environment] = claims
            return
        if environment in self._provisioned:
            del self._claims[environment]
            self._release_provisioned(environment)
            return
        self._claims[environment] = 0
        current = self._current.get(environment.image.function_arn) == environment.image.fingerprint
        if environment.reusable and current and not self._closed:
            self._notify("idle", environment)
        else:
            self._stop_shared(environment)

    def _stop_shared(self, environment: ExecutionEnvironment) -> None:
        self._claims.pop(environment, None)
        shared = self._shared.get(environment.image.function_arn)
        if shared is not None and environment in shared:
            shared.remove(environment)
            if not shared:
                del self._shared[environment.image.function_arn]
        self._stop(environment)

    def release(self, environment: ExecutionEnvironment) -> None:
        """Give an environment back after its invocation: kept warm if it can be reused."""
        if environment in self._claims:
            self._release_shared(environment)
            return
        self._busy.discard(environment)
        if environment in self._provisioned:
            self._release_provisioned(environment)
            return
        current = self._current.get(environment.image.function_arn) == environment.image.fingerprint
        if environment.reusable and current and not self._closed:
            self._idle[environment.image.function_arn].append(environment)
            self._notify("idle", environment)
        else:
            self._stop(environment)

    def _release_provisioned(self, environment: ExecutionEnvironment) -> None:
        arn = environment.image.function_arn
        target = self._targets.get(arn)
        wanted = target is not None and target[0] == environment.image.fingerprint and not self._closed
        if wanted and environment.reusable:
            self._provisioned_idle[arn].append(environment)
            self._notify("idle", environment)
            return
        self._stop_provisioned(environment)
        if wanted and target is not None:  # it failed (timeout, crash): start a replacement
            task = asyncio.get_running_loop().create_task(self._replenish(environment.image, target[1]))
            self._replenishing.add(task)
            task.add_done_callback(self._replenishing.discard)

    async def _replenish(self, image: FunctionImage, count: int) -> int:
        try:
            return await self.provision(image, count)
        except Exception:
            log.exception("replacing a provisioned environment of %s failed", image.function_arn)
            return 0

    def drain(self, function_arn: str, fingerprint: str | None = None) -> None:
        """Stop the function's idle environments (all, or those not of ``fingerprint``); busy ones
        stop when released."""
        if fingerprint is None:
            self._current.pop(function_arn, None)
        else:
            self._current[function_arn] = fingerprint
        keep = []
        for environment in self._idle.pop(function_arn, []):
            if fingerprint is not None and environment.image.fingerprint == fingerprint:
                keep.append(environment)
            else:
                self._stop(environment)
        if keep:
            self._idle[function_arn] = keep
        for environment in list(self._shared.get(function_arn, ())):
            wanted = fingerprint is not None and environment.image.fingerprint == fingerprint
            if not wanted and self._claims.get(environment) == 0:
                self._stop_shared(environment)  # busy ones stop when their last invocation ends

    def drain_function(self, function_arn: str) -> None:
        """Stop the idle environments of a function and of every published version of it (the
        function or a version was deleted); busy ones stop when released."""
        arns = (*self._idle, *self._current, *self._shared)
        versions = {arn for arn in arns if arn.startswith(function_arn + ":")}
        for arn in (function_arn, *versions):
            self.drain(arn)

    def reap(self, now: float | None = None) -> int:
        """Stop environments idle for longer than the idle timeout, or no longer reusable, and replace
        provisioned ones that failed while idle; returns how many were stopped."""
        moment = time.monotonic() if now is None else now
        reaped = 0
        for arn in list(self._idle):
            fresh = []
            for environment in self._idle[arn]:
                # An environment that failed while idle (its runtime exited) goes at once.
                if moment - environment.last_used >= self.idle_timeout_s or not environment.reusable:
                    self._stop(environment)
                    reaped += 1
                else:
                    fresh.append(environment)
            if fresh:
                self._idle[arn] = fresh
            else:
                del self._idle[arn]
        for arn in list(self._shared):
            for environment in list(self._shared[arn]):
                if self._claims.get(environment) != 0:
                    continue  # in use, or still starting
                if moment - environment.last_used >= self.idle_timeout_s or not environment.reusable:
                    self._stop_shared(environment)
                    reaped += 1
        for arn, ready in list(self._provisioned_idle.items()):
            failed = [environment for environment in ready if not environment.reusable]
            if failed:
                self._provisioned_idle[arn] = [e for e in ready if e.reusable]
                for environment in failed:
                    self._release_provisioned(environment)  # stops it and starts a replacement
                reaped += len(failed)
        return reaped

    async def close(self) -> None:
        """Stop every environment, idle and busy, and wait until they are gone."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for arn in list(self._idle):
            for environment in self._idle.pop(arn):
                self._stop(environment)
        for task in list(self._replenishing):
            task.cancel()
        self._targets.clear()
        for arn in list(self._provisioned_idle):
            for environment in self._provisioned_idle.pop(arn):
                self._stop_provisioned(environment)
        for environment in list(self._busy):
            self._stop(environment)
        for arn in list(self._shared):
            for environment in list(self._shared[arn]):
                self._stop_shared(environment)
        for environment in [e for e in self._claims if e in self._provisioned]:
            self._stop_provisioned(environment)
        if self.spares is not None:
            await self.spares.close()
        while self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    async def settle(self) -> None:
        """Wait for environments being stopped to be gone (tests, shutdown)."""
        while self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    def _set_current(self, function_arn: str, fingerprint: str) -> None:
        if self._current.get(function_arn) != fingerprint:
            self.drain(function_arn, fingerprint)

    def _stop(self, environment: ExecutionEnvironment) -> None:
        task = asyncio.get_running_loop().create_task(self._shutdown(environment))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _shutdown(self, environment: ExecutionEnvironment) -> None:
        try:
            await environment.shutdown()
        except Exception:
            log.exception("shutting down environment %s failed", environment.id)
        self._notify("stopped", environment)

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, max(0.05, self.idle_timeout_s / 4)))
            self.reap()
            if self.spares is not None:
                self.spares.reap()

    def _notify(self, event: str, environment: ExecutionEnvironment) -> None:
        for listener in self._listeners:
            listener(event, environment)
