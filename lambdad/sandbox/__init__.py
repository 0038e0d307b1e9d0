"""Isolated execution sandboxes for function runtimes.

Pick an implementation with :func:`create_factory`; everything else talks to the
:class:`SandboxFactory` / :class:`Sandbox` protocols from :mod:`lambdad.sandbox.api`.
"""

from __future__ import annotations

from typing import Any

from lambdad.sandbox.api import (
    MB,
    VCPU_MEMORY_MB,
    EgressControlled,
    EgressRule,
    Mount,
    NetworkMode,
    Sandbox,
    SandboxError,
    SandboxFactory,
    SandboxSpec,
    SandboxUnavailable,
    SpecializableSandbox,
    cpu_quota_us,
    supports_specialization,
)

__all__ = [
    "FACTORIES",
    "MB",
    "VCPU_MEMORY_MB",
    "EgressControlled",
    "EgressRule",
    "Mount",
    "NetworkMode",
    "Sandbox",
    "SandboxError",
    "SandboxFactory",
    "SandboxSpec",
    "SandboxUnavailable",
    "SpecializableSandbox",
    "cpu_quota_us",
    "create_factory",
    "supports_specialization",
]

#: Implementation names accepted by :func:`create_factory`.
FACTORIES = ("namespaces", "process", "fake")


def create_factory(name: str = "namespaces", *, safe: bool = True, **options: Any) -> SandboxFactory:
    """Create the sandbox factory called ``name`` with implementation-specific ``options``.

    ``namespaces`` (default) is the isolated implementation and raises
    :class:`SandboxUnavailable` (saying what to do) where the machine cannot provide it;
    lambdad never silently falls back to ``process``, which is unisolated and must be chosen
    explicitly. ``fake`` runs nothing and is for unit tests of other layers.

    With ``safe`` (the default) the factory is wrapped in :class:`~lambdad.sandbox.safe.SafeFactory`,
    which bounds creation time and guarantees cleanup on errors and cancellation.
    """
    factory: SandboxFactory
    if name in ("namespaces", "bwrap"):
        from lambdad.sandbox.namespaces import NamespaceSandboxFactory

        factory = NamespaceSandboxFactory(**options)
    elif name == "process":
        from lambdad.sandbox.process import ProcessSandboxFactory

        factory = ProcessSandboxFactory(**options)
    elif name == "fake":
        from lambdad.sandbox.fake import FakeSandboxFactory

        factory = FakeSandboxFactory(**options)
    else:
        raise ValueError(f"unknown sandbox implementation {name!r}; choose one of {', '.join(FACTORIES)}")
    if safe:
        from lambdad.sandbox.safe import SafeFactory

        factory = SafeFactory(factory)
    return factory
