"""What an execution environment runs: a function version resolved to paths and an interpreter."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from lambdad.environment.spare import SpareKey, spare_key
from lambdad.runtimes import Interpreter
from lambdad.sandbox import NetworkMode


@dataclass(frozen=True)
class FunctionImage:
    """Everything needed to start environments for one function version.

    Two environments built from equal images are interchangeable; an update that changes the image
    (its ``fingerprint``) drains the environments built from the old one.
    """

    function_name: str
    version: str
    function_arn: str
    region: str
    runtime: str
    handler: str
    memory_mb: int
    timeout_s: int
    ephemeral_mb: int
    code_dir: Path
    runtime_dir: Path | None
    interpreter: Interpreter
    environment: dict[str, str] = field(default_factory=dict)
    network: NetworkMode = NetworkMode.DEFAULT
    # The function's layers merged in order, mounted read-only at /opt; None without layers.
    layers_dir: Path | None = None
    # The execution role's ARN: the identity the function's Lambda API calls act with.
    role: str = ""
    # Invocations one environment serves at once: PerExecutionEnvironmentMaxConcurrency of a Lambda
    # Managed Instances function, 1 for every other.
    max_concurrency: int = 1

    @cached_property
    def fingerprint(self) -> str:
        """A digest of everything that shapes an environment."""
        parts = {
            "version": self.version,
            "code": str(self.code_dir),
            "runtime": self.runtime,
            "handler": self.handler,
            "memory": self.memory_mb,
            "timeout": self.timeout_s,
            "tmp": self.ephemeral_mb,
            "env": self.environment,
            "network": self.network.value,
            "interpreter": str(self.interpreter.path),
            "layers": str(self.layers_dir) if self.layers_dir else None,
            "role": self.role,
        }
        if self.max_concurrency > 1:  # only then: every other image keeps the fingerprint it had
            parts["concurrency"] = self.max_concurrency
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

    @cached_property
    def spare_key(self) -> SpareKey | None:
        """The key of the spare environments that can start this image; None if none can (a spare has
        no /opt, so a function with layers always starts cold)."""
        if self.layers_dir is not None:
            return None
        return spare_key(self.runtime, self.interpreter, self.runtime_dir, self.network, self.ephemeral_mb)
