"""The sandbox contract: what the rest of lambdad may rely on, and nothing more.

A *sandbox* is one isolated process tree running one function runtime (the model is
OpenLambda's worker sandbox API: a small protocol, interchangeable implementations behind
it). The layers above only ever see :class:`SandboxSpec`, :class:`Sandbox` and
:class:`SandboxFactory`; which implementation runs underneath is a configuration choice
(see :func:`lambdad.sandbox.create_factory`).

This module is stdlib only so that every implementation, and every test double, can import
it without pulling in anything else.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = [
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
    "supports_specialization",
]

MB = 1024 * 1024
#: AWS gives a function one full vCPU at 1,769 MB and scales CPU linearly with memory.
VCPU_MEMORY_MB = 1769

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")
_ENV_NAME_RE = re.compile(r"^[^=\0]+$")


class SandboxError(Exception):
    """A sandbox could not be created, or an operation on it failed."""


class SandboxUnavailable(SandboxError):
    """This machine (or this process) cannot provide the requested kind of sandbox.

    The message always says what to do next: install a package, run as root, or choose the
    unisolated ``process`` implementation explicitly.
    """


@dataclass(frozen=True)
class Mount:
    """A host path made visible inside the sandbox at ``target``.

    Read-only by default: function code, layers and runtimes must never be writable by the
    function itself (AWS mounts them read-only too).
    """

    source: Path
    target: str
    read_only: bool = True

    def __post_init__(self) -> None:
        if not self.target.startswith("/") or ".." in self.target.split("/"):
            raise ValueError(f"mount target must be an absolute path without '..': {self.target!r}")


class NetworkMode(StrEnum):
    """How a sandbox reaches the network."""

    #: Own network namespace with loopback plus outbound (NATed) access, like a Lambda
    #: function outside a VPC. The host's services and other sandboxes are unreachable.
    DEFAULT = "default"
    #: Own, empty network namespace: loopback only.
    NONE = "none"
    #: The host's network stack (no isolation at all; for debugging and trusted code).
    HOST = "host"


@dataclass(frozen=True)
class EgressRule:
    """One kind of connection a sandbox with an egress policy may open (a security group's egress rule).

    ``protocol`` is "tcp", "udp", "icmp", "-1" (every protocol) or another IP protocol's number; for tcp and
    udp ``from_port``..``to_port`` is the destination port range, for icmp they are the ICMP type and code
    (-1: any); other protocols have no ports.
    """

    cidr: str
    protocol: str = "-1"
    from_port: int = -1
    to_port: int = -1


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to start one sandboxed process.

    Paths in ``argv``, ``env`` and ``workdir`` are paths *inside* the sandbox, i.e. after
    ``mounts`` are applied (code at ``/var/task``, layers at ``/opt``, the runtime at its own
    path).
    """

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    workdir: str = "/var/task"
    #: Memory limit; also sets the CPU share (1,769 MB = one vCPU) as AWS does.
    memory_mb: int = 128
    #: Maximum number of processes and threads in the sandbox.
    pids_max: int = 1024
    #: Size cap of the writable /tmp (a tmpfs: its pages count towards ``memory_mb`` too).
    tmp_mb: int = 512
    network: NetworkMode = NetworkMode.DEFAULT
    #: The DEFAULT network's outbound connections narrowed to these (a function's security groups'
    #: egress rules); ``None``: no narrowing. Narrowing only: what the default network refuses stays refused.
    egress: tuple[EgressRule, ...] | None = None
    #: AWS runs functions as sbx_user1051, uid 993 / gid 990.
    uid: int = 993
    gid: int = 990
    #: Port of the Lambda Runtime API on the sandbox's own 127.0.0.1; ``None`` = no socket.
    #: ``AWS_LAMBDA_RUNTIME_API`` is set in the environment to the actual address.
    runtime_api_port: int | None = 9001
    hostname: str = "localhost"
    #: Human-readable tag used in sandbox ids, cgroup names and logs.
    label: str = "sandbox"
    #: Start without the CPU quota (a function's init runs at full speed); ``end_cpu_boost()`` then
    #: applies the share of ``memory_mb``.
    cpu_boost: bool = False
    #: A path inside the sandbox left as an empty, read-only directory at start, where
    #: ``SpecializableSandbox.specialize`` attaches code later (pre-initialised "spare" sandboxes).
    #: Only factories that ``supports_specialization`` accept it.
    code_slot: str | None = None

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("argv must not be empty")
        if any("\0" in a for a in self.argv):
            raise ValueError("argv must not contain NUL bytes")
        for name, value in self.env.items():
            if not _ENV_NAME_RE.match(name) or "\0" in value:
                raise ValueError(f"invalid environment variable {name!r}")
        if not self.workdir.startswith("/"):
            raise ValueError(f"workdir must be absolute: {self.workdir!r}")
        for attr in ("memory_mb", "pids_max", "tmp_mb"):
            if getattr(self, attr) < 1:
                raise ValueError(f"{attr} must be positive")
        if self.uid < 0 or self.gid < 0:
            raise ValueError("uid and gid must not be negative")
        if self.runtime_api_port is not None and not 0 < self.runtime_api_port < 65536:
            raise ValueError(f"invalid runtime_api_port {self.runtime_api_port}")
        if not _LABEL_RE.match(self.label):
            raise ValueError(f"label must match {_LABEL_RE.pattern}: {self.label!r}")
        if self.code_slot is not None and (
            not self.code_slot.startswith("/") or ".." in self.code_slot.split("/")
        ):
            raise ValueError(f"code_slot must be an absolute path without '..': {self.code_slot!r}")
        if not self.hostname or len(self.hostname) > 63 or "\0" in self.hostname:
            raise ValueError(f"invalid hostname {self.hostname!r}")


def cpu_quota_us(memory_mb: int, period_us: int) -> int:
    """CFS quota giving ``memory_mb`` its AWS-proportional CPU share of one ``period_us``.

    The kernel refuses quotas under 1 ms, so tiny functions get at least that.
    """
    return max(1000, round(period_us * memory_mb / VCPU_MEMORY_MB))


@runtime_checkable
class Sandbox(Protocol):
    """One running, isolated process tree.

    Lifecycle: a factory's ``create()`` returns it with the process already running; the
    caller serves the Runtime API on ``runtime_api_socket``, drains ``output``, and must
    finally call ``destroy()`` (even after the process exited) to release its resources.
    """

    @property
    def id(self) -> str:
        """Unique id, also the name of the sandbox's cgroups."""
        ...

    @property
    def spec(self) -> SandboxSpec:
        """The spec this sandbox was created from."""
        ...

    @property
    def pid(self) -> int:
        """Host pid of the sandbox's top process (killing it ends the whole sandbox)."""
        ...

    @property
    def output(self) -> int:
        """Read end of ONE pipe carrying the process's merged stdout and stderr.

        Owned by the caller, which reads it to EOF and closes it (``destroy()`` does not).
        """
        ...

    @property
    def runtime_api_socket(self) -> socket.socket | None:
        """A listening TCP socket on which the sandboxed process's Runtime API calls arrive.

        For isolated network modes it is bound to 127.0.0.1:``runtime_api_port`` inside the
        sandbox's own network namespace, so the host ``accept()``s the sandbox's connections
        directly, with no proxy hop. ``destroy()`` closes it. ``None`` if the spec asked for
        no Runtime API.
        """
        ...

    @property
    def runtime_api_address(self) -> str | None:
        """``host:port`` the process must use for the Runtime API (``AWS_LAMBDA_RUNTIME_API``)."""
        ...

    async def wait(self) -> int:
        """Wait for the process to exit; its exit status, or ``-signal`` if killed by one."""
        ...

    def memory_peak_bytes(self) -> int:
        """Highest memory use of the whole sandbox so far (still valid after ``destroy()``)."""
        ...

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process in the sandbox for exceeding ``memory_mb``."""
        ...

    def end_cpu_boost(self) -> None:
        """Apply the CPU quota of ``memory_mb`` (a no-op unless the spec asked for ``cpu_boost``)."""
        ...

    async def destroy(self) -> None:
        """Kill every process and release every resource (cgroups, mounts, namespaces, links).

        Idempotent, safe to call concurrently, and never leaves anything behind.
        """
        ...


@runtime_checkable
class SpecializableSandbox(Sandbox, Protocol):
    """A sandbox started with a ``code_slot`` that can be given a function after it started."""

    async def specialize(self, code: Path, memory_mb: int, label: str | None = None) -> None:
        """Attach ``code`` read-only at the spec's ``code_slot`` and apply the limits of ``memory_mb``
        (memory, and the CPU share that ``end_cpu_boost`` applies); with ``label``, the sandbox's id
        (and cgroups) are renamed as if it had been created with that label. Once only."""
        ...


@runtime_checkable
class EgressControlled(Sandbox, Protocol):
    """A sandbox whose egress policy can change while it runs (a security group's rules changed)."""

    async def set_egress(self, rules: tuple[EgressRule, ...]) -> None:
        """Replace the sandbox's egress policy (it must have been created with one): new connections
        follow ``rules`` from now on; connections already open stay open."""
        ...


def supports_specialization(factory: object) -> bool:
    """Whether ``factory`` makes :class:`SpecializableSandbox` es from specs with a ``code_slot``."""
    return bool(getattr(factory, "specializable", False))


@runtime_checkable
class SandboxFactory(Protocol):
    """Creates sandboxes of one kind and owns whatever they share (cgroup parents, bridges)."""

    @property
    def name(self) -> str:
        """Implementation name, as accepted by :func:`lambdad.sandbox.create_factory`."""
        ...

    @property
    def isolated(self) -> bool:
        """Whether sandboxes are really isolated from the host and from each other."""
        ...

    async def create(self, spec: SandboxSpec) -> Sandbox:
        """Start ``spec.argv`` in a new sandbox; returns once the process is running."""
        ...

    async def close(self) -> None:
        """Tear down shared resources. Sandboxes still alive are destroyed first."""
        ...
