"""The invoke pipeline, top to bottom: look up -> lease (concurrency) -> place (warm or new
environment) -> run -> release. Each stage is a small collaborator passed in."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import time
from dataclasses import dataclass, replace

import anyio.to_thread

from lambdad.environment import ExecutionEnvironment, FunctionImage, InvokeOutcome, InvokeStream, RuntimeGone
from lambdad.errors import (
    InvalidRequestContentException,
    LambdaError,
    ResourceConflictException,
    TooManyRequestsException,
)
from lambdad.invocation.concurrency import ConcurrencyLeases
from lambdad.invocation.images import ImageBuilder
from lambdad.invocation.pool import EnvironmentPool, PoolFull
from lambdad.models import FunctionState, FunctionVersion, Scope
from lambdad.runtime_api import Invocation
from lambdad.sandbox import EgressRule, SandboxError
from lambdad.services.capacity_providers import may_run_on, provider_of
from lambdad.services.lookup import FunctionLookup, RunnableFunction
from lambdad.services.tags import NETWORK_TAG

log = logging.getLogger(__name__)

# How often an invocation whose environment's runtime had died before it got there is given to a new
# environment (it never ran, so it cannot run twice); after that, it answers Runtime.ExitError.
REDELIVERIES = 2


@dataclass(frozen=True)
class InvokeRequest:
    """One synchronous invocation as the API received it."""

    scope: Scope
    function_name: str
    qualifier: str | None
    payload: bytes
    request_id: str
    client_context: str | None = None


@dataclass(frozen=True)
class InvokeResult:
    """What the API answers: the payload, whether the function failed, its log, the version run."""

    payload: bytes
    function_error: str | None
    executed_version: str
    outcome: InvokeOutcome


@dataclass(frozen=True)
class StreamedResult:
    """A streamed invocation: iterate ``stream`` for the chunks, then read ``stream.outcome``."""

    stream: InvokeStream
    executed_version: str


class Invoker:
    """Runs invocations in the server's environments."""

    def __init__(
        self,
        lookup: FunctionLookup,
        images: ImageBuilder,
        pool: EnvironmentPool,
        leases: ConcurrencyLeases,
        *,
        host_network_allowed: bool = False,
        capacity_provider: str = "",
    ) -> None:
        self._lookup = lookup
        # The capacity provider whose node this is ("" none): it runs only that provider's versions.
        self._capacity_provider = capacity_provider
        self._host_network_allowed = host_network_allowed
        self._images = images
        self._pool = pool
        self._leases = leases
        self._image_cache: dict[tuple[object, ...], FunctionImage] = {}

    async def find(
        self, scope: Scope, function_name: str, qualifier: str | None, *, here: bool = True
    ) -> RunnableFunction:
        """The function to run; AWS's errors if it is missing or cannot run yet (or, with ``here``, cannot
        run on this node: a cluster's router asks with ``here=False`` and places it where it can)."""
        runnable = self._lookup.cached(scope, function_name, qualifier)
        if runnable is None:
            runnable = await anyio.to_thread.run_sync(self._lookup.load, scope, function_name, qualifier)
        version = runnable.version
        if version.state is FunctionState.PENDING:
            raise ResourceConflictException(
                "The operation cannot be performed at this time. The function is currently in the following "
                "state: Pending"
            )
        if version.state is FunctionState.FAILED:
            raise ResourceConflictException(
                f"The operation cannot be performed at this time. The function is currently in the following "
                f"state: Failed ({version.state_reason})"
            )
        if runnable.network == "host" and not self._host_network_allowed:
            # Tagged on a server that allowed it (an earlier run, another server on the same database):
            # refused, not run on another network the function does not expect. Queued Event
            # invocations wait, as for a Failed function, until the operator allows it or the tag goes.
            raise ResourceConflictException(
                f"The operation cannot be performed at this time. The function is tagged {NETWORK_TAG}=host, "
                "which this server does not allow: the operator must start lambdad serve with "
                "--allow-host-network, or the tag must be removed (UntagResource)."
            )
        if here and not may_run_on(version, self._capacity_provider):
            raise not_on_this_node(version, self._capacity_provider)
        return runnable

    async def invoke(self, request: InvokeRequest) -> InvokeResult:
        """Run one invocation and wait for its result."""
        runnable = await self.find(request.scope, request.function_name, request.qualifier)
        version = runnable.version
        payload = request.payload or b"{}"
        check_json(payload)
        lease = await self._leases.acquire(
            (request.scope, version.name), runnable.reserved_concurrency, runnable.total_reserved
        )
        try:
            image = await self.image(request.scope, runnable)
            invocation = Invocation(
                request_id=request.request_id,
                payload=payload,
                deadline_ms=int(time.time() * 1000) + version.timeout * 1000,
                # The ARN as invoked: unqualified, or carrying the version or alias named.
                invoked_function_arn=request.scope.function_arn(version.name, runnable.qualifier),
                trace_id=_trace_id(),
                client_context=request.client_context,
            )
            for attempt in range(1, REDELIVERIES + 2):
                environment = await self._acquire(request.scope, image, runnable)
                try:
                    outcome = await environment.invoke(
                        invocation, version.timeout, redeliverable=attempt <= REDELIVERIES
                    )
                    break
                except RuntimeGone:
                    continue  # its runtime had died before the invocation reached it: take another
                finally:
                    self._pool.release(environment)
        finally:
            self._leases.release(lease)
        return InvokeResult(
            payload=outcome.payload,
            function_error="Unhandled" if outcome.function_error else None,
            executed_version=version.version,
            outcome=outcome,
        )

    async def invoke_streaming(self, request: InvokeRequest) -> StreamedResult:
        """Start one invocation whose response is read as the function streams it.

        The concurrency lease and the environment are given back once, when the function has finished
        (not when the caller stops reading).
        """
        runnable = await self.find(request.scope, request.function_name, request.qualifier)
        version = runnable.version
        payload = request.payload or b"{}"
        check_json(payload)
        lease = await self._leases.acquire(
            (request.scope, version.name), runnable.reserved_concurrency, runnable.total_reserved
        )
        handed_over = False
        try:
            image = await self.image(request.scope, runnable)
            environment = await self._acquire(request.scope, image, runnable)
            invocation = Invocation(
                request_id=request.request_id,
                payload=payload,
                deadline_ms=int(time.time() * 1000) + version.timeout * 1000,
                invoked_function_arn=request.scope.function_arn(version.name, runnable.qualifier),
                trace_id=_trace_id(),
                client_context=request.client_context,
            )

            def done() -> None:
                self._pool.release(environment)
                self._leases.release(lease)

            try:
                stream = environment.invoke_streaming(invocation, version.timeout, done)
            except BaseException:
                self._pool.release(environment)
                raise
            handed_over = True
        finally:
            if not handed_over:
                self._leases.release(lease)
        return StreamedResult(stream, version.version)

    async def _acquire(
        self, scope: Scope, image: FunctionImage, runnable: RunnableFunction
    ) -> ExecutionEnvironment:
        """An environment from the pool, within the version's MaxExecutionEnvironments: past it the
        invocation is throttled, as Managed Instances throttle while their environments are saturated."""
        try:
            environment = await self._pool.acquire(image, runnable.max_environments)
        except PoolFull as full:
            raise TooManyRequestsException.rate_exceeded(
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            ) from full
        if environment.egress is not None:
            try:
                await self._egress_as_stored(scope, environment)
            except BaseException:
                self._pool.release(environment)
                raise
        return environment

    async def _egress_as_stored(self, scope: Scope, environment: ExecutionEnvironment) -> None:
        """A security group may have changed between this invocation's lookup and its environment joining
        the pool (where ``refresh_egress`` finds it): give the environment the policy as it is now."""
        image = environment.image
        current = self._lookup.cached(scope, image.function_name, image.version)
        if current is None:  # forgotten since: changed
            current = await anyio.to_thread.run_sync(
                self._lookup.load, scope, image.function_name, image.version
            )
        if current.egress is not None and current.egress != environment.egress:
            await environment.set_egress(current.egress)

    async def refresh_egress(self, scope: Scope, function_name: str) -> int:
        """Apply the function's egress policies as they are now to its running environments, of every
        version, idle or busy (a security group's rules changed: AWS applies that to running functions
        at once); how many environments changed. Environments outside a VPC are left alone."""
        policies: dict[str, tuple[EgressRule, ...] | None] = {}
        changed = 0
        for environment in self._pool.environments_of(scope.function_arn(function_name)):
            image = environment.image
            if image.egress is None:
                continue
            if image.version not in policies:
                try:
                    runnable = await anyio.to_thread.run_sync(
                        self._lookup.load, scope, function_name, image.version
                    )
                except LambdaError:  # the function or version is gone: its environments go with it
                    policies[image.version] = None
                else:
                    policies[image.version] = runnable.egress
            rules = policies[image.version]
            if rules is None or rules == environment.egress:
                continue
            try:
                changed += await environment.set_egress(rules)
            except (SandboxError, OSError, subprocess.CalledProcessError) as error:
                # Its sandbox stopped meanwhile, and its chain went with it.
                log.warning(
                    "egress policy of an environment of %s not changed: %s", image.function_arn, error
                )
        return changed

    async def image(self, scope: Scope, runnable: RunnableFunction) -> FunctionImage:
        """The image environments of ``runnable`` are made from (built once per revision)."""
        # Building an image may unpack code or install a runtime (after a restart): a worker thread's job,
        # once per revision.
        version = runnable.version
        # The egress policy is in the key: a security group's rules change without a new revision.
        key = (
            scope,
            version.name,
            version.version,
            version.revision_id,
            runnable.network or "",
            runnable.egress,
        )
        image = self._image_cache.get(key)
        if image is None:
            image = await anyio.to_thread.run_sync(self._images.image_for, scope, version, runnable.network)
            if runnable.egress is not None:
                image = replace(image, egress=runnable.egress)
            self._image_cache = {k: v for k, v in self._image_cache.items() if k[:3] != key[:3]}
            self._image_cache[key] = image
        return image


def not_on_this_node(version: FunctionVersion, node_provider: str) -> TooManyRequestsException:
    """The answer when a version may not run on this node (``may_run_on``): throttled, as AWS throttles
    a Managed Instances function whose provider has no capacity for it. In a cluster the router sends
    invocations to eligible nodes only, so this is what a node answers when none is (or on a single
    server whose ``--capacity-provider`` is not the function's)."""
    provider = provider_of(version)
    if provider is None:
        why = f"this node serves capacity provider {node_provider} only"
    else:
        why = f"no node of capacity provider {provider} is available to run it"
    return TooManyRequestsException(
        f"Rate Exceeded. The function {version.name} cannot run here: {why}.",
        headers={"Retry-After": "1"},
    )


def check_json(payload: bytes) -> None:
    """AWS refuses an invocation payload that is not JSON."""
    try:
        json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: Could not parse payload into json: {error}"
        ) from error
    except RecursionError as error:  # nested past the parser's depth (about 1,000 levels)
        raise InvalidRequestContentException(
            "Could not parse request body into json: Could not parse payload into json: "
            "Document nesting depth exceeds the maximum allowed"
        ) from error


def _trace_id() -> str:
    """An X-Ray trace header as AWS passes it to the runtime (no X-Ray here: only its shape)."""
    random = secrets.token_hex(20)
    return f"Root=1-{int(time.time()):08x}-{random[:24]};Parent={random[24:]};Sampled=0;Lineage=1"
