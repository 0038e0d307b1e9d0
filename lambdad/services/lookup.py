"""Reading what an invocation needs about a function, from memory when nothing has changed.

The invoke path must not pay a database round trip per request; the control plane must never serve a
stale configuration. Entries are dropped on every change (``FunctionChanges``); a per-function
generation stops a read that raced a change from caching what it read.

An entry is keyed by (scope, name, qualifier) and remembers what the qualifier reaches: one version,
or for a weighted alias two, between which each invocation is chosen afresh by weight.

A Managed Instances function (one with a capacity provider) invoked without a qualifier runs its newest
published version, as AWS runs its ``$LATEST.PUBLISHED`` (which lambdad does not have yet), and
answers NoPublishedVersionException before one is published. Its versions' MaxExecutionEnvironments
(PutFunctionScalingConfig) come with the entry.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from sqlalchemy import Connection

from lambdad.errors import NoPublishedVersionException, ResourceNotFoundException
from lambdad.models import LATEST, FunctionVersion, Scope
from lambdad.sandbox import EgressRule
from lambdad.services.capacity_providers import provider_of
from lambdad.services.changes import (
    ALIASES,
    CODE_OR_CONFIGURATION,
    EVERYTHING,
    POLICY,
    PROVISIONED,
    URLS,
    VERSIONS,
    FunctionChanges,
)
from lambdad.services.networks import egress_policy
from lambdad.services.resolution import Target, read_target, resolve
from lambdad.services.tags import NETWORK_TAG
from lambdad.store import Database
from lambdad.store import capacity_providers as capacity_records
from lambdad.store import functions as records
from lambdad.store import tags as tag_records

# Changes that concern the one function only. Any other (reserved concurrency set or removed, a function
# deleted with its reservation) changes the region's reservation total, which every entry carries. Keeping
# the others' entries matters in a cluster: a deploy does not make every node read every function it runs
# again, and functions keep running from memory while the database is away.
_ONE_FUNCTION = frozenset({CODE_OR_CONFIGURATION, VERSIONS, ALIASES, PROVISIONED, URLS, POLICY})


@dataclass(frozen=True)
class RunnableFunction:
    """A version to run, with the concurrency settings that gate it."""

    version: FunctionVersion
    reserved_concurrency: int | None
    total_reserved: int
    network: str | None = None  # the ``lambdad:network`` tag
    qualifier: str | None = None  # as invoked (None, $LATEST, a version or an alias): the invoked ARN's
    # FunctionScalingConfig's MaxExecutionEnvironments of a Managed Instances version (None: no cap).
    max_environments: int | None = None
    # The version's security groups' egress rules (None: not in a VPC, the default network's policy).
    egress: tuple[EgressRule, ...] | None = None


@dataclass(frozen=True)
class _Entry:
    target: Target
    reserved_concurrency: int | None
    total_reserved: int
    network: str | None
    max_environments: dict[str, int] = field(default_factory=dict)  # by version
    egress: dict[str, tuple[EgressRule, ...] | None] = field(default_factory=dict)  # by version

    def pick(self, chance: float, qualifier: str | None) -> RunnableFunction:
        """The version one invocation runs: the additional version with probability ``weight``.
        (``qualifier`` is per call: the ARN invoked carries it.)"""
        target = self.target
        use_additional = target.additional is not None and chance < target.weight
        version = target.additional if use_additional and target.additional else target.version
        return RunnableFunction(
            version,
            self.reserved_concurrency,
            self.total_reserved,
            self.network,
            qualifier,
            self.max_environments.get(version.version),
            self.egress.get(version.version),
        )


class FunctionLookup:
    """Cached reads of function versions and reservations, keyed by (region, name, qualifier)."""

    def __init__(
        self, database: Database, changes: FunctionChanges, chooser: random.Random | None = None
    ) -> None:
        self._database = database
        self._entries: dict[tuple[Scope, str, str], _Entry] = {}
        self._generations: dict[tuple[Scope, str], int] = {}
        self._everything = 0  # bumped when every entry is forgotten at once
        self._lock = threading.Lock()
        self._chooser = chooser or random.Random()
        changes.subscribe(self.invalidate)

    def cached(self, scope: Scope, function_name: str, qualifier: str | None) -> RunnableFunction | None:
        """The entry if it is in memory (no I/O: safe on the event loop)."""
        try:
            name, resolved = resolve(scope, function_name, qualifier)
        except Exception:
            return None
        # Unqualified apart from $LATEST: a Managed Instances function's differ (see above).
        entry = self._entries.get((scope, name, resolved or ""))
        return entry.pick(self._chooser.random(), resolved) if entry else None

    def load(self, scope: Scope, function_name: str, qualifier: str | None) -> RunnableFunction:
        """Read from the store (blocking: call from a worker thread) and remember it."""
        name, resolved = resolve(scope, function_name, qualifier)
        key = (scope, name, resolved or "")
        with self._lock:
            generation = (self._everything, self._generations.get((scope, name), 0))
        with self._database.read() as connection:
            target = read_target(connection, scope, name, resolved)
            if target is None:
                raise ResourceNotFoundException(
                    f"Function not found: {scope.function_arn(name, resolved or LATEST)}"
                )
            if resolved is None and provider_of(target.version) is not None:
                target = _newest_published(connection, scope, name)
            entry = _Entry(
                target,
                records.get_reserved_concurrency(connection, scope, name),
                records.total_reserved_concurrency(connection, scope),
                tag_records.get_tags(connection, scope.function_arn(name)).get(NETWORK_TAG),
                _max_environments(connection, scope, target),
                _egress(connection, scope, target),
            )
        with self._lock:
            if (self._everything, self._generations.get((scope, name), 0)) == generation:
                self._entries[key] = entry
        return entry.pick(self._chooser.random(), resolved)

    def invalidate(self, scope: Scope, name: str, what: str = "") -> None:
        """Forget a function (and every reservation total, which it may have changed)."""
        if what == EVERYTHING:
            with self._lock:
                self._entries.clear()
                self._everything += 1
            return
        with self._lock:
            self._generations[(scope, name)] = self._generations.get((scope, name), 0) + 1
            if what in _ONE_FUNCTION:
                gone = [k for k in self._entries if k[0] == scope and k[1] == name]
            else:  # another function's reservation changes every total in the region: drop the region
                gone = [k for k in self._entries if k[0] == scope]
            for key in gone:
                del self._entries[key]


def _egress(connection: Connection, scope: Scope, target: Target) -> dict[str, tuple[EgressRule, ...] | None]:
    """The egress policy of each version the target reaches, from its VpcConfig's security groups."""
    policies = {}
    for version in (target.version, target.additional):
        if version is not None:
            groups = (version.extra.get("VpcConfig") or {}).get("SecurityGroupIds") or []
            policies[version.version] = egress_policy(connection, scope, groups)
    return policies


def _newest_published(connection: Connection, scope: Scope, name: str) -> Target:
    newest = records.newest_published(connection, scope, name)
    target = read_target(connection, scope, name, newest.version) if newest else None
    if target is None:
        raise NoPublishedVersionException(
            f"The function {scope.function_arn(name)} has no published versions available."
        )
    return target


def _max_environments(connection: Connection, scope: Scope, target: Target) -> dict[str, int]:
    limits = {}
    for version in (target.version, target.additional):
        if version is None or provider_of(version) is None:
            continue
        scaling = capacity_records.get_scaling(connection, scope, version.name, version.version)
        if scaling is not None and scaling.maximum is not None:
            limits[version.version] = scaling.maximum
    return limits
