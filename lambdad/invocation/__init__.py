"""Running invocations: leases (concurrency), placement (the warm pool), the invoke pipeline."""

from lambdad.invocation.concurrency import ConcurrencyLeases, LocalConcurrencyLeases
from lambdad.invocation.images import ImageBuilder
from lambdad.invocation.invoker import Invoker, InvokeRequest, InvokeResult
from lambdad.invocation.pool import EnvironmentPool

__all__ = [
    "ConcurrencyLeases",
    "EnvironmentPool",
    "ImageBuilder",
    "InvokeRequest",
    "InvokeResult",
    "Invoker",
    "LocalConcurrencyLeases",
]
