"""Work that must have exactly one owner: the port, and its single-server implementation.

Event source mapping pollers, schedules, provisioned concurrency configs and the Event queue's partitions
each run on one node at a time. Whoever runs such work asks ``owns(kind, key)`` before (and while) doing
it, tells ``track(kind, keys)`` which keys of its kind exist, and listens (``subscribe``) for changes of
what this node owns. A single server owns everything (``LocalOwnership``, which costs nothing); a cluster
node owns what its leases say (``lambdad.cluster.ownership.ClusterOwnership``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum
from typing import Protocol

from lambdad.store.async_events import PARTITIONS


class WorkKind(StrEnum):
    """The kinds of work with one owner; the values are the members of a heartbeat's ``Owns``."""

    EVENT_SOURCE_MAPPING = "EventSourceMappings"  # key: the mapping's UUID
    SCHEDULE = "Schedules"  # key: "group/name"
    PROVISIONED_CONCURRENCY = "ProvisionedConcurrency"  # key: the function's (unqualified) ARN
    ASYNC_PARTITION = "AsyncPartitions"  # key: the partition's number, "0" .. str(PARTITIONS - 1)


# Called after what this node owns changed; the owner lets go of a key only after its listeners returned
# (they stop the work they no longer own), so awaitable listeners are awaited.
OwnershipListener = Callable[[], Awaitable[None] | None]

ALL_PARTITIONS = [str(partition) for partition in range(PARTITIONS)]


class WorkOwnership(Protocol):
    """Which work this node owns."""

    # How often the users re-read work that other nodes may have changed without telling this one
    # (event source mappings announce their changes to the node that made them only); None: never.
    resync_every: float | None

    def owns(self, kind: WorkKind, key: str) -> bool:
        """Whether this node owns ``key`` now (and may run it)."""
        ...

    def track(self, kind: WorkKind, keys: Iterable[str]) -> None:
        """Every key of ``kind`` that exists now (this node takes its share of them)."""
        ...

    def subscribe(self, listener: OwnershipListener) -> None:
        """Call ``listener()`` (on the event loop) after what this node owns changed."""
        ...

    def owned(self) -> dict[WorkKind, list[str]]:
        """What this node owns, by kind (a heartbeat's ``Owns``)."""
        ...

    def partitions(self) -> list[int] | None:
        """The Event queue partitions this node may claim events of; None: all of them (no filter)."""
        ...


class LocalOwnership:
    """A single server: it owns every piece of work, always."""

    resync_every: float | None = None

    def owns(self, kind: WorkKind, key: str) -> bool:
        return True

    def track(self, kind: WorkKind, keys: Iterable[str]) -> None:
        """Nothing to share."""

    def subscribe(self, listener: OwnershipListener) -> None:
        """Ownership never changes."""

    def owned(self) -> dict[WorkKind, list[str]]:
        return {}

    def partitions(self) -> list[int] | None:
        return None


class KindOwnership:
    """One kind's view of a ``WorkOwnership``: what a user below ``events`` is handed (the provisioner
    takes ``owns`` and ``track`` of function ARNs, without knowing the kinds)."""

    def __init__(self, ownership: WorkOwnership, kind: WorkKind) -> None:
        self._ownership = ownership
        self._kind = kind

    def owns(self, key: str) -> bool:
        return self._ownership.owns(self._kind, key)

    def track(self, keys: Iterable[str]) -> None:
        self._ownership.track(self._kind, keys)
