"""Capacity providers (Lambda Managed Instances): Create/Get/Update/Delete/ListCapacityProviders,
ListFunctionVersionsByCapacityProvider, and Put/GetFunctionScalingConfig.

On AWS a capacity provider is a fleet of EC2 instances in the caller's VPC. In lambdad it is a named
group of nodes: a node joins one with ``lambdad serve --capacity-provider NAME``. The members AWS
takes (VpcConfig, PermissionsConfig, InstanceRequirements, scaling, KMS, tags, telemetry) are checked by
the service model and kept as given; what lambdad acts on is the name. A function joins a provider with
``CapacityProviderConfig`` on CreateFunction or UpdateFunctionConfiguration; its versions then run only
on that group's nodes (``may_run_on``), several invocations at once per environment up to
``PerExecutionEnvironmentMaxConcurrency``.

States follow AWS's: Create answers Pending and the provider becomes Active in the background; Delete
answers Deleting and the record goes in the background. State lives in the database, so every node of a
cluster sees the same. A provider that function versions still name cannot be deleted
(ResourceConflictException).
"""

from __future__ import annotations

import enum
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from lambdad.errors import (
    CapacityProviderLimitExceededException,
    FunctionVersionsPerCapacityProviderLimitExceededException,
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import FunctionVersion, Scope, utcnow
from lambdad.services.changes import PROVISIONED, FunctionChanges
from lambdad.services.markers import decode_marker, encode_marker
from lambdad.services.resolution import resolve
from lambdad.store import Database
from lambdad.store import capacity_providers as records
from lambdad.store import functions as function_records
from lambdad.store import tags as tag_records
from lambdad.store.capacity_providers import CapacityProviderRecord, ScalingRecord

log = logging.getLogger(__name__)

# AWS's quotas (Lambda Managed Instances quotas page).
PROVIDERS_MAX = 1000
VERSIONS_PER_PROVIDER_MAX = 100
LIST_PAGE_MAX = 50
# The members of CreateCapacityProvider kept as given (the name and state are columns).
_KEPT = (
    "VpcConfig",
    "PermissionsConfig",
    "InstanceRequirements",
    "CapacityProviderScalingConfig",
    "KmsKeyArn",
    "PropagateTags",
    "TelemetryConfig",
)
_UPDATABLE = ("CapacityProviderScalingConfig", "PropagateTags", "TelemetryConfig")
_CONFIG = "CapacityProviderConfig"
NOT_MANAGED = (
    "CapacityProviderConfig can only be set when a function is created: a function created without one "
    "cannot be moved to a capacity provider."
)
_MANAGED = "LambdaManagedInstancesCapacityProviderConfig"


class CapacityProviderState(enum.StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    FAILED = "Failed"
    DELETING = "Deleting"


@dataclass(frozen=True)
class CapacityProvider:
    """A capacity provider as the API answers it."""

    arn: str
    record: CapacityProviderRecord

    @property
    def state(self) -> CapacityProviderState:
        return CapacityProviderState(self.record.state)


@dataclass(frozen=True)
class ProviderPage:
    providers: list[CapacityProvider]
    next_marker: str | None


@dataclass(frozen=True)
class VersionsPage:
    """One page of ListFunctionVersionsByCapacityProvider: (qualified function ARN, state)."""

    provider_arn: str
    versions: list[tuple[str, str]]
    next_marker: str | None


@dataclass(frozen=True)
class ScalingConfig:
    """GetFunctionScalingConfig's answer."""

    function_arn: str
    requested: ScalingRecord | None


# --- what the data plane and the router ask ---------------------------------------------------------


def capacity_provider_arn(scope: Scope, name: str) -> str:
    return f"arn:aws:lambda:{scope.region}:{scope.account}:capacity-provider:{name}"


def provider_of(version: FunctionVersion) -> str | None:
    """The name of the capacity provider ``version`` runs on, or None (Lambda's default compute)."""
    config = version.extra.get(_CONFIG)
    if not config:
        return None
    return str(config[_MANAGED]["CapacityProviderArn"]).rsplit(":", 1)[-1]


def check_publish_to(params: dict[str, Any]) -> None:
    """``PublishTo: LATEST_PUBLISHED`` (CreateFunction, PublishVersion) asks for the ``$LATEST.PUBLISHED``
    version, which lambdad does not have yet: refused rather than silently publishing a number."""
    if params.get("PublishTo") == "LATEST_PUBLISHED":
        raise InvalidParameterValueException(
            "lambdad does not support the $LATEST.PUBLISHED version yet (PublishTo LATEST_PUBLISHED); "
            "publish a numbered version instead: invoked without a qualifier, a function with a capacity "
            "provider runs its newest published version."
        )


def may_run_on(version: FunctionVersion, node_provider: str) -> bool:
    """May ``version`` run on a node of ``node_provider`` ("" = a node of no provider)? A provider's
    versions run only on its nodes, and a provider's nodes run only its versions, as a Managed Instances
    fleet serves only the functions assigned to it (the provider is their security boundary)."""
    return (provider_of(version) or "") == node_provider


def max_concurrency(version: FunctionVersion) -> int:
    """Invocations one environment of ``version`` takes at once: 1 unless it is a Managed Instances
    function with PerExecutionEnvironmentMaxConcurrency."""
    config = version.extra.get(_CONFIG)
    if not config:
        return 1
    return int(config[_MANAGED].get("PerExecutionEnvironmentMaxConcurrency") or 1)


class CapacityProviderService:
    """Capacity providers and function scaling configs, with AWS's states and errors."""

    def __init__(self, database: Database, changes: FunctionChanges) -> None:
        self._database = database
        self._changes = changes
        # Settling is a database write: one background thread, started on first use.
        self._settler: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # --- providers ----------------------------------------------------------------------------------

    def create(self, scope: Scope, params: dict[str, Any]) -> CapacityProvider:
        """CreateCapacityProvider: recorded Pending, Active once settled in the background."""
        name = self._name(scope, params["CapacityProviderName"])
        config = {member: params[member] for member in _KEPT if member in params}
        config.setdefault("InstanceRequirements", {"Architectures": ["x86_64"]})
        config.setdefault("CapacityProviderScalingConfig", {"ScalingMode": "Auto"})
        record = CapacityProviderRecord(name, CapacityProviderState.PENDING, config, utcnow())
        with self._database.write() as connection:
            if records.get_provider(connection, scope, name) is not None:
                raise ResourceConflictException(
                    f"Capacity provider already exists: {capacity_provider_arn(scope, name)}"
                )
            if records.count_providers(connection, scope) >= PROVIDERS_MAX:
                raise CapacityProviderLimitExceededException(
                    f"You have exceeded the maximum number of capacity providers ({PROVIDERS_MAX})."
                )
            records.insert_provider(connection, scope, record)
            tag_records.put_tags(connection, capacity_provider_arn(scope, name), params.get("Tags") or {})
        self._settle_soon(scope, name, CapacityProviderState.PENDING)
        return CapacityProvider(capacity_provider_arn(scope, name), record)

    def get(self, scope: Scope, name_or_arn: str) -> CapacityProvider:
        name = self._name(scope, name_or_arn)
        with self._database.read() as connection:
            return CapacityProvider(
                capacity_provider_arn(scope, name), self._existing(connection, scope, name)
            )

    def update(self, scope: Scope, params: dict[str, Any]) -> CapacityProvider:
        """UpdateCapacityProvider: the scaling, tag propagation and telemetry members."""
        name = self._name(scope, params["CapacityProviderName"])
        with self._database.write() as connection:
            current = self._existing(connection, scope, name)
            if current.state != CapacityProviderState.ACTIVE:
                raise ResourceConflictException(_busy(scope, name, current.state))
            config = dict(current.config)
            for member in _UPDATABLE:
                if member in params:
                    config[member] = params[member]
            updated = CapacityProviderRecord(name, current.state, config, utcnow())
            records.save_provider(connection, scope, updated)
        return CapacityProvider(capacity_provider_arn(scope, name), updated)

    def delete(self, scope: Scope, name_or_arn: str) -> CapacityProvider:
        """DeleteCapacityProvider: Deleting at once, gone once settled; refused while in use."""
        name = self._name(scope, name_or_arn)
        with self._database.write() as connection:
            current = self._existing(connection, scope, name)
            if current.state == CapacityProviderState.PENDING:
                raise ResourceConflictException(_busy(scope, name, current.state))
            users = _versions_of(connection, scope, name)
            if users:
                raise ResourceConflictException(
                    f"Capacity provider {capacity_provider_arn(scope, name)} is in use by "
                    f"{len(users)} function version(s) and cannot be deleted."
                )
            records.set_state(
                connection, scope, name, CapacityProviderState.DELETING, only_from=current.state
            )
            deleting = CapacityProviderRecord(
                name, CapacityProviderState.DELETING, current.config, current.last_modified
            )
        self._settle_soon(scope, name, CapacityProviderState.DELETING, capacity_provider_arn(scope, name))
        return CapacityProvider(capacity_provider_arn(scope, name), deleting)

    def list_providers(
        self, scope: Scope, *, state: str | None, marker: str | None, max_items: int | None
    ) -> ProviderPage:
        """ListCapacityProviders in name order."""
        limit = max_items or LIST_PAGE_MAX
        after = decode_marker(marker, 1)[0] if marker else None
        with self._database.read() as connection:
            found = records.list_providers(connection, scope, after=after, state=state, limit=limit + 1)
        page = [CapacityProvider(capacity_provider_arn(scope, r.name), r) for r in found[:limit]]
        return ProviderPage(page, encode_marker(found[limit - 1].name) if len(found) > limit else None)

    def list_function_versions(
        self, scope: Scope, name_or_arn: str, *, marker: str | None, max_items: int | None
    ) -> VersionsPage:
        """ListFunctionVersionsByCapacityProvider: qualified ARNs in function, then version order."""
        name = self._name(scope, name_or_arn)
        limit = max_items or LIST_PAGE_MAX
        start = int(decode_marker(marker, 1)[0]) if marker else 0
        with self._database.read() as connection:
            self._existing(connection, scope, name)
            versions = _versions_of(connection, scope, name)
        page = [
            (scope.function_arn(v.name, v.version), v.state.value) for v in versions[start : start + limit]
        ]
        more = len(versions) > start + limit
        return VersionsPage(
            capacity_provider_arn(scope, name), page, encode_marker(str(start + limit)) if more else None
        )

    # --- functions ----------------------------------------------------------------------------------

    def check_function(self, connection: Connection, scope: Scope, version: FunctionVersion) -> None:
        """A CapacityProviderConfig names an Active provider of this region with room for a version
        (CreateFunction, UpdateFunctionConfiguration; in their transaction)."""
        config = version.extra.get(_CONFIG)
        if not config:
            return
        arn = str(config[_MANAGED]["CapacityProviderArn"])
        name = arn.rsplit(":", 1)[-1]
        record = records.get_provider(connection, scope, name)
        if arn != capacity_provider_arn(scope, name) or record is None:
            raise InvalidParameterValueException(f"Capacity provider not found: {arn}")
        if record.state != CapacityProviderState.ACTIVE:
            raise InvalidParameterValueException(_busy(scope, name, record.state))
        users = [v for v in _versions_of(connection, scope, name) if v.name != version.name]
        if len(users) >= VERSIONS_PER_PROVIDER_MAX:
            raise FunctionVersionsPerCapacityProviderLimitExceededException(
                f"Capacity provider {arn} already has {VERSIONS_PER_PROVIDER_MAX} function versions."
            )

    def put_scaling(
        self, scope: Scope, function_name: str, qualifier: str, scaling: dict[str, Any]
    ) -> FunctionVersion:
        """PutFunctionScalingConfig on a published version of a Managed Instances function."""
        minimum = scaling.get("MinExecutionEnvironments")
        maximum = scaling.get("MaxExecutionEnvironments")
        if minimum is not None and maximum is not None and minimum > maximum:
            raise InvalidParameterValueException(
                "MinExecutionEnvironments must be less than or equal to MaxExecutionEnvironments."
            )
        with self._database.write() as connection:
            name, version = self._managed_version(connection, scope, function_name, qualifier)
            records.save_scaling(
                connection, scope, ScalingRecord(name, version.version, minimum, maximum, utcnow())
            )
        # The minimum is kept warm by the provisioner, which follows PROVISIONED notices.
        self._changes.notify(scope, name, PROVISIONED)
        return version

    def get_scaling(self, scope: Scope, function_name: str, qualifier: str) -> ScalingConfig:
        """GetFunctionScalingConfig."""
        with self._database.read() as connection:
            name, version = self._managed_version(connection, scope, function_name, qualifier)
            stored = records.get_scaling(connection, scope, name, version.version)
        return ScalingConfig(scope.function_arn(name, version.version), stored)

    def scaling_of(self, scope: Scope, name: str, version: str) -> ScalingRecord | None:
        """A version's scaling config, for the data plane (blocking: a worker thread's call)."""
        with self._database.read() as connection:
            return records.get_scaling(connection, scope, name, version)

    def minimums(self, scope: Scope, name: str, node_provider: str) -> dict[str, int]:
        """MinExecutionEnvironments by version of one function, for the versions a node of
        ``node_provider`` may run (blocking: a worker thread's call). The provisioner keeps them warm."""
        wanted = {}
        with self._database.read() as connection:
            for _, config in records.list_scaling(connection, scope, name):
                if not config.minimum:
                    continue
                version = function_records.get_version(connection, scope, name, config.qualifier)
                if version is not None and may_run_on(version, node_provider):
                    wanted[config.qualifier] = config.minimum
        return wanted

    def scaled_functions(self) -> list[tuple[Scope, str]]:
        """(scope, name) of every function with a scaling config (to keep minimums warm at start)."""
        with self._database.read() as connection:
            found = {(scope, c.function_name) for scope, c in records.list_scaling(connection)}
        return sorted(found)

    # --- settling -----------------------------------------------------------------------------------

    def recover(self) -> int:
        """Settle what a previous run left Pending or Deleting; the number found."""
        with self._database.read() as connection:
            found = records.unsettled(connection)
        for scope, name, state in found:
            self._settle_soon(scope, name, CapacityProviderState(state))
        return len(found)

    def settle(self, scope: Scope, name: str, state: CapacityProviderState, arn: str | None = None) -> None:
        """Pending -> Active; Deleting -> gone (with its tags, ``arn``'s). Compare-and-set, so two nodes
        settling agree."""
        with self._database.write() as connection:
            if state == CapacityProviderState.PENDING:
                records.set_state(
                    connection,
                    scope,
                    name,
                    CapacityProviderState.ACTIVE,
                    only_from=CapacityProviderState.PENDING,
                )
            elif state == CapacityProviderState.DELETING:
                record = records.get_provider(connection, scope, name)
                if record is not None and record.state == CapacityProviderState.DELETING:
                    records.delete_provider(connection, scope, name)
                    if arn is not None:
                        tag_records.remove_tags(connection, arn)

    def close(self) -> None:
        with self._lock:
            settler, self._settler = self._settler, None
        if settler is not None:
            settler.shutdown(wait=True)

    def _settle_soon(
        self, scope: Scope, name: str, state: CapacityProviderState, arn: str | None = None
    ) -> None:
        with self._lock:
            if self._settler is None:
                self._settler = ThreadPoolExecutor(1, thread_name_prefix="capacity-providers")
            settler = self._settler
        future = settler.submit(self.settle, scope, name, state, arn)
        future.add_done_callback(_log_failure)

    # --- helpers ------------------------------------------------------------------------------------

    def _name(self, scope: Scope, name_or_arn: str) -> str:
        if not name_or_arn.startswith("arn:"):
            return name_or_arn
        name = name_or_arn.rsplit(":", 1)[-1]
        if name_or_arn != capacity_provider_arn(scope, name):
            raise InvalidParameterValueException(
                f"The capacity provider ARN {name_or_arn} is not in this account and region."
            )
        return name

    def _existing(self, connection: Connection, scope: Scope, name: str) -> CapacityProviderRecord:
        record = records.get_provider(connection, scope, name)
        if record is None:
            raise ResourceNotFoundException(
                f"Capacity provider not found: {capacity_provider_arn(scope, name)}"
            )
        return record

    def _managed_version(
        self, connection: Connection, scope: Scope, function_name: str, qualifier: str
    ) -> tuple[str, FunctionVersion]:
        name, _ = resolve(scope, function_name)
        version = function_records.get_version(connection, scope, name, qualifier)
        if version is None:
            raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name, qualifier)}")
        if provider_of(version) is None:
            raise InvalidParameterValueException(
                "Function scaling configuration can only be applied to functions with a capacity provider."
            )
        return name, version


def _versions_of(connection: Connection, scope: Scope, provider: str) -> list[FunctionVersion]:
    """Every version (``$LATEST`` and published) whose configuration names ``provider``."""
    versions = function_records.list_versions(
        connection, scope, after=None, limit=1_000_000, all_versions=True
    )
    return [v for v in versions if provider_of(v) == provider]


def _busy(scope: Scope, name: str, state: str) -> str:
    return (
        f"The operation cannot be performed at this time. The capacity provider "
        f"{capacity_provider_arn(scope, name)} is currently in the following state: {state}"
    )


def _log_failure(future: Any) -> None:
    error = future.exception()
    if error is not None:
        log.error("settling a capacity provider failed", exc_info=error)
