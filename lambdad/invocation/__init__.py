"""Running invocations: leases (concurrency), placement (the warm pool), the invoke pipeline, events."""

from lambdad.invocation.async_queue import EventQueue
from lambdad.invocation.concurrency import ConcurrencyLimiter
from lambdad.invocation.images import ImageBuilder
from lambdad.invocation.invoker import Invoker, InvokeRequest, InvokeResult
from lambdad.invocation.pool import EnvironmentPool

__all__ = [
    "ConcurrencyLimiter",
    "EnvironmentPool",
    "EventQueue",
    "ImageBuilder",
    "InvokeRequest",
    "InvokeResult",
    "Invoker",
]
