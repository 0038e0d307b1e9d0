"""The safety wrapper every factory is used through (OpenLambda's "safe sandbox" idea).

It adds, uniformly for all implementations:

* a bound on ``create()`` time (a stuck create is aborted and cleaned up);
* cleanup when the task calling ``create()`` is cancelled right after the sandbox was made;
* ``destroy()`` that is idempotent, bounded in time, and safe to call concurrently;
* ``close()`` that destroys every sandbox still alive before closing the factory, and
  refuses new sandboxes afterwards;
* ``async with`` support: ``async with await factory.create(spec) as sandbox: ...``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from types import TracebackType

from lambdad.sandbox.api import (
    EgressControlled,
    EgressRule,
    Sandbox,
    SandboxError,
    SandboxFactory,
    SandboxSpec,
    SpecializableSandbox,
    supports_specialization,
)

__all__ = ["SafeFactory", "SafeSandbox"]

log = logging.getLogger(__name__)


class SafeSandbox:
    """Wraps one sandbox; see the module docstring. ``inner`` is the wrapped sandbox."""

    def __init__(self, factory: SafeFactory, inner: Sandbox, destroy_timeout: float) -> None:
        self.inner = inner
        self._factory = factory
        self._destroy_timeout = destroy_timeout
        self._destroying: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def spec(self) -> SandboxSpec:
        return self.inner.spec

    @property
    def pid(self) -> int:
        return self.inner.pid

    @property
    def output(self) -> int:
        return self.inner.output

    @property
    def runtime_api_socket(self) -> socket.socket | None:
        return self.inner.runtime_api_socket

    @property
    def runtime_api_address(self) -> str | None:
        return self.inner.runtime_api_address

    async def wait(self) -> int:
        return await self.inner.wait()

    def memory_peak_bytes(self) -> int:
        return self.inner.memory_peak_bytes()

    def oom_killed(self) -> bool:
        return self.inner.oom_killed()

    def end_cpu_boost(self) -> None:
        self.inner.end_cpu_boost()

    async def specialize(self, code: Path, memory_mb: int, label: str | None = None) -> None:
        if not isinstance(self.inner, SpecializableSandbox):
            raise SandboxError(f"sandbox {self.id} ({type(self.inner).__name__}) cannot be specialized")
        await self.inner.specialize(code, memory_mb, label)

    async def set_egress(self, rules: tuple[EgressRule, ...]) -> None:
        if not isinstance(self.inner, EgressControlled):
            raise SandboxError(f"sandbox {self.id} ({type(self.inner).__name__}) cannot change its egress")
        await self.inner.set_egress(rules)

    async def destroy(self) -> None:
        # One teardown task shared by all callers; shielded so a cancelled caller cannot
        # interrupt it half-way.
        if self._destroying is None:
            self._destroying = asyncio.get_running_loop().create_task(self._destroy())
        await asyncio.shield(self._destroying)

    async def _destroy(self) -> None:
        try:
            await asyncio.wait_for(self.inner.destroy(), self._destroy_timeout)
        except TimeoutError as exc:
            log.error("sandbox %s: destroy timed out after %ss", self.id, self._destroy_timeout)
            raise SandboxError(f"sandbox {self.id}: destroy timed out") from exc
        finally:
            self._factory._live.discard(self)
        log.debug("sandbox %s destroyed", self.id)

    async def __aenter__(self) -> SafeSandbox:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.destroy()


class SafeFactory:
    """Wraps a :class:`SandboxFactory`; see the module docstring."""

    def __init__(self, inner: SandboxFactory, *, create_timeout: float = 30.0, destroy_timeout: float = 30.0):
        self.inner = inner
        self._create_timeout = create_timeout
        self._destroy_timeout = destroy_timeout
        self._live: set[SafeSandbox] = set()
        self._closed = False
        self._close_lock = asyncio.Lock()
        if not inner.isolated and inner.name != "fake":
            log.warning("sandbox implementation %r does not isolate functions from the host", inner.name)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def isolated(self) -> bool:
        return self.inner.isolated

    @property
    def specializable(self) -> bool:
        return supports_specialization(self.inner)

    @property
    def live(self) -> int:
        """Number of sandboxes created and not yet destroyed."""
        return len(self._live)

    async def create(self, spec: SandboxSpec) -> SafeSandbox:
        if self._closed:
            raise SandboxError("sandbox factory is closed")
        task = asyncio.get_running_loop().create_task(self.inner.create(spec))
        try:
            # Shielded so that the inner create, which cleans up after itself when it fails,
            # is never cancelled at an arbitrary point; we decide what to do with its result.
            inner = await asyncio.wait_for(asyncio.shield(task), self._create_timeout)
        except BaseException as exc:
            if not task.done():
                task.cancel()
            results = await asyncio.gather(task, return_exceptions=True)
            made = results[0]
            if not isinstance(made, BaseException):
                # Created just as we were cancelled or timed out: do not leak it.
                await SafeSandbox(self, made, self._destroy_timeout).destroy()
            if isinstance(exc, TimeoutError):
                raise SandboxError(f"creating a sandbox took over {self._create_timeout}s") from exc
            raise
        sandbox = SafeSandbox(self, inner, self._destroy_timeout)
        self._live.add(sandbox)
        if self._closed:  # closed while we were creating
            await sandbox.destroy()
            raise SandboxError("sandbox factory is closed")
        log.debug("sandbox %s created (pid %d)", sandbox.id, sandbox.pid)
        return sandbox

    async def close(self) -> None:
        async with self._close_lock:
            if self._closed:
                return
            self._closed = True
            results = await asyncio.gather(*(s.destroy() for s in list(self._live)), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    log.error("destroying a sandbox on close failed: %r", result)
            await self.inner.close()
