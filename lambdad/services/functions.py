"""Creating, reading, updating and deleting functions, with AWS's rules."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from lambdad.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import (
    LATEST,
    FunctionLayer,
    FunctionVersion,
    Scope,
    UpdateStatus,
    is_version_number,
    utcnow,
)
from lambdad.policy.roles import RolePermissions, function_source
from lambdad.services import limits
from lambdad.services.activation import Activator
from lambdad.services.capacity_providers import (
    NOT_MANAGED,
    CapacityProviderService,
    check_publish_to,
    provider_of,
)
from lambdad.services.changes import DELETED, FunctionChanges
from lambdad.services.code import check_package, check_storage, storing
from lambdad.services.code_signing import CodeSigningService
from lambdad.services.configuration import check_complete, configure
from lambdad.services.event_invoke_configs import EventInvokeConfigService
from lambdad.services.function_settings import FunctionSettingsService
from lambdad.services.layers import LayerService, check_combined_size
from lambdad.services.markers import decode_marker, encode_marker
from lambdad.services.networks import NetworkService, check_vpc_config
from lambdad.services.permissions import PermissionService
from lambdad.services.resolution import latest_for_update, read_target, resolve, unqualified
from lambdad.services.tags import check_lambdad_tags
from lambdad.services.versions import VersionService, publish_in
from lambdad.store import CodeStore, Database
from lambdad.store import functions as records
from lambdad.store import tags as tag_records
from lambdad.store.signing import ConfigRecord

__all__ = ["FunctionPage", "FunctionService", "resolve"]  # resolve: re-exported for older callers

_UPDATING = "The function is being created."


@dataclass(frozen=True)
class FunctionPage:
    """One page of ListFunctions."""

    versions: list[FunctionVersion]
    next_marker: str | None


# What sending a dead-letter message takes of the execution role, per ARN service, and how AWS names it.
_DEAD_LETTER_ACTIONS = {"sqs": ("SendMessage", "SQS"), "sns": ("Publish", "SNS")}


class FunctionService:
    """The function-management operations of the Lambda API."""

    def __init__(
        self,
        database: Database,
        code_store: CodeStore,
        activator: Activator,
        changes: FunctionChanges,
        code_storage_limit: int,
        *,
        host_network_allowed: bool = False,
        code_signing: CodeSigningService | None = None,
    ) -> None:
        self._database = database
        self._host_network_allowed = host_network_allowed
        self._code = code_store
        self._activator = activator
        self._changes = changes
        self._code_storage_limit = code_storage_limit
        self.versions = VersionService(database, activator, changes)
        # What attaches to functions, versions and aliases (reached through ``Services`` as well).
        self.permissions = PermissionService(database, changes)
        self.event_invoke_configs = EventInvokeConfigService(database)
        self.settings = FunctionSettingsService(database)
        self.layers = LayerService(database, code_store, code_storage_limit)
        self.capacity_providers = CapacityProviderService(database, changes)
        # Code signing configs, and the one check of a package's signature on deployment.
        self.code_signing = code_signing or CodeSigningService(database)
        # What execution roles may do, set by the composition root with authentication on (None: not
        # checked); the dead-letter queue of a function needs its role's permission to send there.
        self.roles: RolePermissions | None = None
        # EC2's VPCs, subnets and security groups: a VpcConfig is checked against them.
        self.networks = NetworkService(database, changes)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, scope: Scope, function_name: str, qualifier: str | None = None) -> FunctionVersion:
        """A function's version: ``$LATEST`` unless qualified by a version or an alias (its version)."""
        name, qualifier = resolve(scope, function_name, qualifier)
        with self._database.read() as connection:
            target = read_target(connection, scope, name, qualifier)
        if target is None:
            raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name, qualifier)}")
        return target.version

    def list(
        self, scope: Scope, *, marker: str | None, max_items: int | None, all_versions: bool
    ) -> FunctionPage:
        """A page of functions in name order, continuing after ``marker``."""
        limit = max_items or limits.LIST_PAGE_DEFAULT
        after: tuple[str, str] | None = None
        if marker:
            after_name, after_version = decode_marker(marker, 2)
            after = (after_name, after_version)
        with self._database.read() as connection:
            versions = records.list_versions(
                connection, scope, after=after, limit=limit + 1, all_versions=all_versions
            )
        if len(versions) <= limit:
            return FunctionPage(versions, None)
        last = versions[limit - 1]
        return FunctionPage(versions[:limit], encode_marker(last.name, last.version))

    # --- writing ---------------------------------------------------------------------------------

    def create(
        self, scope: Scope, params: dict[str, Any], tags: dict[str, str] | None = None
    ) -> FunctionVersion:
        """CreateFunction: store the code and a Pending ``$LATEST``; the activator makes it Active.
        With ``Publish``, version 1 is published from it at once and answered instead."""
        name, qualifier = resolve(scope, params["FunctionName"])
        if qualifier:
            raise InvalidParameterValueException(
                "Unsupported FunctionName: a new function takes no qualifier"
            )
        if params.get("PackageType", "Zip") != "Zip":
            raise InvalidParameterValueException(
                "lambdad does not run container images yet; use PackageType Zip"
            )
        if tags is not None and len(tags) > limits.TAGS_MAX:
            raise InvalidParameterValueException("Number of tags exceeds resource tag limit.")
        check_lambdad_tags(tags or {}, self._host_network_allowed)
        check_publish_to(params)
        zip_bytes = _zip_from(params["Code"])
        package = check_package(zip_bytes)
        blank = FunctionVersion(
            name=name,
            version=LATEST,
            runtime=None,
            handler=None,
            role=params["Role"],
            code=package,
            revision_id=str(uuid.uuid4()),
            config_revision=str(uuid.uuid4()),
            last_modified=utcnow(),
            architectures=tuple(params.get("Architectures") or ("x86_64",)),
            extra={
                "TracingConfig": {"Mode": "PassThrough"},
                "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"},
                "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
            },
        )
        version = configure(blank, params, self._layers(scope, params))
        check_complete(version)
        self._check_dead_letter_role(scope, version)
        check_combined_size(version.code, version.layers)
        with storing(self._code, zip_bytes, package), self._database.write() as connection:
            if records.function_exists(connection, scope, name):
                raise ResourceConflictException(f"Function already exist: {name}")
            signing = self.code_signing.config_for_create(
                connection, scope, params.get("CodeSigningConfigArn")
            )
            self.code_signing.verify(connection, signing, name, zip_bytes)
            self._verify_layers(connection, signing, name, version.layers)
            check_storage(connection, package, self._code_storage_limit)
            self.capacity_providers.check_function(connection, scope, version)
            version = _with_vpc(connection, scope, version)
            records.insert_function(connection, scope, version, version.last_modified)
            if signing is not None:
                self.code_signing.attach_in(connection, scope, name, signing.arn)
            tag_records.put_tags(connection, scope.function_arn(name), tags or {})
            published = publish_in(connection, scope, version)[0] if params.get("Publish") else None
        self._changes.notify(scope, name)
        self._activator.submit(scope, name)
        if published is not None:
            self._activator.submit(scope, name, published.version)
            return published
        return version

    def update_configuration(self, scope: Scope, params: dict[str, Any]) -> FunctionVersion:
        """UpdateFunctionConfiguration."""
        name = unqualified(scope, params["FunctionName"])
        layers = self._layers(scope, params)
        with self._database.write() as connection:
            current = latest_for_update(connection, scope, name, params.get("RevisionId"))
            if "CapacityProviderConfig" in params and provider_of(current) is None:
                # The compute type is chosen when a function is created, as on AWS.
                raise InvalidParameterValueException(NOT_MANAGED)
            updated = configure(current, params, layers)
            if "DeadLetterConfig" in params or "Role" in params:
                self._check_dead_letter_role(scope, updated)
            if layers:
                signing = self.code_signing.config_of(connection, scope, name)
                self._verify_layers(connection, signing, name, layers)
            check_complete(updated)
            check_combined_size(updated.code, updated.layers)
            updated = _in_progress(updated)
            if "CapacityProviderConfig" in params:
                self.capacity_providers.check_function(connection, scope, updated)
            if "VpcConfig" in params:
                updated = _with_vpc(connection, scope, updated)
            records.save_version(connection, scope, updated)
        self._changes.notify(scope, name)
        self._activator.submit(scope, name)
        return updated

    def _check_dead_letter_role(self, scope: Scope, version: FunctionVersion) -> None:
        """AWS's check of DeadLetterConfig: the execution role must be allowed to send there (SQS
        SendMessage, SNS Publish). A role the identity store does not know is not checked."""
        target = (version.extra.get("DeadLetterConfig") or {}).get("TargetArn")
        if self.roles is None or not target or not version.role:
            return
        service = target.split(":")[2] if target.count(":") >= 5 else ""
        action, label = _DEAD_LETTER_ACTIONS.get(service, (None, None))
        if action is None:
            return
        denial = self.roles.denial(
            version.role,
            f"{service}:{action}",
            target,
            service="lambda.amazonaws.com",
            session=version.name,
            context=function_source(scope.function_arn(version.name)),
        )
        if denial is not None:
            raise InvalidParameterValueException(
                f"The provided execution role does not have permissions to call {action} on {label}"
            )

    def update_code(self, scope: Scope, params: dict[str, Any]) -> FunctionVersion:
        """UpdateFunctionCode (``DryRun`` checks and answers without changing anything; ``Publish``
        publishes a version from the update and answers that version)."""
        name = unqualified(scope, params["FunctionName"])
        zip_bytes = _zip_from(params)
        package = check_package(zip_bytes)
        with contextlib.ExitStack() as stack:
            if not params.get("DryRun"):
                stack.enter_context(storing(self._code, zip_bytes, package))
            connection = stack.enter_context(self._database.write())
            current = latest_for_update(connection, scope, name, params.get("RevisionId"))
            signing = self.code_signing.config_of(connection, scope, name)
            self.code_signing.verify(connection, signing, name, zip_bytes)
            changes: dict[str, Any] = {"code": package}
            if params.get("Architectures"):
                changes["architectures"] = tuple(params["Architectures"])
            check_combined_size(package, current.layers)
            updated = _in_progress(current.evolve(**changes))
            if params.get("DryRun"):
                return current.evolve(**changes)
            check_storage(connection, package, self._code_storage_limit)
            records.save_version(connection, scope, updated)
            published = publish_in(connection, scope, updated)[0] if params.get("Publish") else None
        self._changes.notify(scope, name)
        self._activator.submit(scope, name)
        if published is not None:
            self._activator.submit(scope, name, published.version)
            return published
        return updated

    def delete(self, scope: Scope, function_name: str, qualifier: str | None = None) -> None:
        """DeleteFunction: the whole function, or one published version; deleting ``$LATEST`` alone or
        an alias this way is refused, as on AWS."""
        name, qualifier = resolve(scope, function_name, qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueException(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if qualifier is not None and not is_version_number(qualifier):
            raise InvalidParameterValueException("Deletion of aliases is not currently supported.")
        if qualifier is not None:
            self.versions.delete(scope, name, qualifier)
            return
        with self._database.write() as connection:
            if not records.function_exists(connection, scope, name):
                raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}")
            records.delete_function(connection, scope, name)
            tag_records.remove_tags(connection, scope.function_arn(name))
        self._changes.notify(scope, name, DELETED)

    # --- helpers ---------------------------------------------------------------------------------

    def _verify_layers(
        self,
        connection: Connection,
        signing: ConfigRecord | None,
        name: str,
        layers: tuple[FunctionLayer, ...],
    ) -> None:
        """A function with a code signing config takes only layers its config trusts (as on AWS)."""
        if signing is None:
            return
        for layer in layers:
            self.code_signing.verify(connection, signing, name, self._code.read(layer.code.sha256_hex))

    def _layers(self, scope: Scope, params: dict[str, Any]) -> tuple[FunctionLayer, ...] | None:
        """The request's ``Layers`` resolved to their packages; None when it names none."""
        if "Layers" not in params:
            return None
        return self.layers.resolve(scope, params["Layers"] or [])


def _in_progress(version: FunctionVersion) -> FunctionVersion:
    return version.evolve(
        revision_id=str(uuid.uuid4()),
        config_revision=str(uuid.uuid4()),
        last_modified=utcnow(),
        last_update_status=UpdateStatus.IN_PROGRESS,
        last_update_status_reason=_UPDATING,
        last_update_status_reason_code="Creating",
    )


def _zip_from(code: dict[str, Any]) -> bytes:
    if code.get("ZipFile") is not None:
        return bytes(code["ZipFile"])
    if code.get("S3Bucket") or code.get("S3Key"):
        raise InvalidParameterValueException(
            "lambdad has no S3-compatible code source configured yet, so S3Bucket/S3Key cannot be used; "
            "upload the package as ZipFile instead."
        )
    if code.get("ImageUri"):
        raise InvalidParameterValueException("lambdad does not run container images yet; upload a ZipFile.")
    raise InvalidParameterValueException("Please provide a source for function code.")


def _with_vpc(connection: Connection, scope: Scope, version: FunctionVersion) -> FunctionVersion:
    """``version`` with its VpcConfig checked against the region's networks and its VpcId filled in."""
    if "VpcConfig" not in version.extra:
        return version
    config = check_vpc_config(connection, scope, version.extra["VpcConfig"])
    return version.evolve(extra={**version.extra, "VpcConfig": config})
