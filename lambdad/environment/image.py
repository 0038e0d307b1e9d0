"""What an execution environment runs: a function version resolved to paths and an interpreter."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from lambdad.environment.spare import SpareKey, spare_key
from lambdad.runtimes import Interpreter
from lambdad.sandbox import EgressRule, NetworkMode


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
    # The function's security groups' egress rules (None: not in a VPC): its sandboxes may open only these.
    egress: tuple[EgressRule, ...] | None = None

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
        if self.egress is not None:  # likewise; a rule change makes a new image, and drains the old one's
            parts["egress"] = [vars(rule) for rule in self.egress]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

    @cached_property
    def spare_key(self) -> SpareKey | None:
        """The key of the spare environments that can start this image; None if none can (a spare has
        no /opt, so a function with layers always starts cold; nor one with an egress policy)."""
        if self.layers_dir is not None or self.egress is not None:
            # (A spare's sandbox joined the network before anyone knew its egress policy.)
            return None
        return spare_key(self.runtime, self.interpreter, self.runtime_dir, self.network, self.ephemeral_mb)
