"""Layers: PublishLayerVersion and friends, their resource-based policies, and resolving the layer
version ARNs a function names into the packages it will run with.

A layer version's package lives in the code store beside functions' code; a function keeps the digest of
each layer it uses, so it still runs (and its package is kept) after the layer version is deleted, as on
AWS.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from lambdad.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import CodePackage, FunctionLayer, Scope, layer_arn, parse_layer_arn, utcnow
from lambdad.services import limits
from lambdad.services.code import check_package, check_storage, storing
from lambdad.services.markers import decode_marker, encode_marker
from lambdad.store import CodeStore, Database
from lambdad.store import layers as records
from lambdad.store.layers import LayerVersion

__all__ = ["LayerPage", "LayerService", "LayerVersion", "LayerVersionPage"]

MAX_LAYERS = 5
NOT_FOUND = "The resource you requested does not exist."
NO_POLICY = "No policy is associated with the given resource."
VERSION_TOO_LOW = "Layer Version Cannot be less than 1"
REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetLayerPolicy API to "
    "retrieve the latest Revision Id"
)
_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class LayerPage:
    """One page of ListLayers: each layer with its newest version matching the filters."""

    layers: list[LayerVersion]
    next_marker: str | None


@dataclass(frozen=True)
class LayerVersionPage:
    """One page of ListLayerVersions, newest first."""

    versions: list[LayerVersion]
    next_marker: str | None


class LayerService:
    """The layer operations of the Lambda API."""

    def __init__(self, database: Database, code_store: CodeStore, code_storage_limit: int) -> None:
        self._database = database
        self._code = code_store
        self._code_storage_limit = code_storage_limit

    # --- layer versions -----------------------------------------------------------------------------

    def publish(self, scope: Scope, layer_name: str, params: dict[str, Any]) -> LayerVersion:
        """PublishLayerVersion: a new version numbered after the layer's last (1, 2, ...)."""
        name = self._name(scope, layer_name)
        zip_bytes = _zip_from(params.get("Content") or {})
        package = check_package(zip_bytes)
        with storing(self._code, zip_bytes, package), self._database.write() as connection:
            check_storage(connection, package, self._code_storage_limit)
            number = records.next_version_number(connection, scope, name)
            layer = LayerVersion(
                name=name,
                version=number,
                code=package,
                created=utcnow(),
                description=params.get("Description") or "",
                license_info=params.get("LicenseInfo"),
                compatible_runtimes=_given(params.get("CompatibleRuntimes")),
                compatible_architectures=_given(params.get("CompatibleArchitectures")),
            )
            records.insert_version(connection, scope, layer)
        return layer

    def get(self, scope: Scope, layer_name: str, version: int) -> LayerVersion:
        """GetLayerVersion."""
        name = self._name(scope, layer_name)
        _check_number(version)
        with self._database.read() as connection:
            layer = records.get_version(connection, scope, name, version)
        if layer is None:
            raise ResourceNotFoundException(NOT_FOUND)
        return layer

    def get_by_arn(self, scope: Scope, arn: str) -> LayerVersion:
        """GetLayerVersionByArn (the model's pattern has checked the ARN's form)."""
        ref = parse_layer_arn(arn)
        if ref is None or ref.version is None or (ref.region, ref.account) != (scope.region, scope.account):
            raise ResourceNotFoundException(NOT_FOUND)
        return self.get(scope, ref.name, ref.version)

    def delete(self, scope: Scope, layer_name: str, version: int) -> None:
        """DeleteLayerVersion: idempotent, as on AWS. Functions using it keep their copy."""
        name = self._name(scope, layer_name)
        _check_number(version)
        with self._database.write() as connection:
            records.delete_version(connection, scope, name, version)
        self._code.holds.dereferenced()  # its package may now be unused: the reclaimer looks

    def list_versions(
        self,
        scope: Scope,
        layer_name: str,
        *,
        runtime: str | None = None,
        architecture: str | None = None,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> LayerVersionPage:
        """ListLayerVersions: newest first, those compatible with the filters only."""
        name = self._name(scope, layer_name)
        with self._database.read() as connection:
            versions = records.list_versions(connection, scope, name)
        matching = [v for v in versions if _matches(v, runtime, architecture)]
        if marker:
            (after,) = decode_marker(marker, 1)
            if not after.isdigit():
                raise InvalidParameterValueException("Invalid Marker value.")
            matching = [v for v in matching if v.version < int(after)]
        limit = max_items or limits.LIST_PAGE_DEFAULT
        if len(matching) <= limit:
            return LayerVersionPage(matching, None)
        return LayerVersionPage(matching[:limit], encode_marker(str(matching[limit - 1].version)))

    def list_layers(
        self,
        scope: Scope,
        *,
        runtime: str | None = None,
        architecture: str | None = None,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> LayerPage:
        """ListLayers: every layer with a version matching the filters, with its newest such version."""
        with self._database.read() as connection:
            versions = records.list_versions(connection, scope)
        latest: dict[str, LayerVersion] = {}
        for version in versions:  # by name, newest first
            if version.name not in latest and _matches(version, runtime, architecture):
                latest[version.name] = version
        found = list(latest.values())
        if marker:
            (after,) = decode_marker(marker, 1)
            found = [v for v in found if v.name > after]
        limit = max_items or limits.LIST_PAGE_DEFAULT
        if len(found) <= limit:
            return LayerPage(found, None)
        return LayerPage(found[:limit], encode_marker(found[limit - 1].name))

    # --- policies -----------------------------------------------------------------------------------

    def add_permission(
        self,
        scope: Scope,
        layer_name: str,
        version: int,
        *,
        statement_id: str,
        action: str,
        principal: str,
        organization_id: str | None = None,
        revision_id: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """AddLayerVersionPermission: (the statement added, the policy's new RevisionId)."""
        name = self._name(scope, layer_name)
        _check_number(version)
        arn = layer_arn(scope.region, scope.account, name, version)
        with self._database.write() as connection:
            layer = _policy_target(connection, scope, name, version, arn, revision_id)
            if any(statement.get("Sid") == statement_id for statement in layer.statements):
                raise ResourceConflictException(
                    f"The statement id ({statement_id}) provided already exists. Please provide a new "
                    "statement id, or remove the existing statement."
                )
            statement: dict[str, Any] = {
                "Sid": statement_id,
                "Effect": "Allow",
                "Principal": _principal(principal),
                "Action": action,
                "Resource": arn,
            }
            if organization_id:
                statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
            revision = str(uuid.uuid4())
            statements = [*layer.statements, statement]
            records.save_policy(connection, scope, name, version, statements, revision)
        return statement, revision

    def remove_permission(
        self, scope: Scope, layer_name: str, version: int, statement_id: str, revision_id: str | None = None
    ) -> None:
        """RemoveLayerVersionPermission."""
        name = self._name(scope, layer_name)
        _check_number(version)
        arn = layer_arn(scope.region, scope.account, name, version)
        with self._database.write() as connection:
            layer = _policy_target(connection, scope, name, version, arn, revision_id)
            kept = [statement for statement in layer.statements if statement.get("Sid") != statement_id]
            if len(kept) == len(layer.statements):
                raise ResourceNotFoundException(f"Statement {statement_id} is not found in resource policy.")
            records.save_policy(connection, scope, name, version, kept, str(uuid.uuid4()))

    def get_policy(self, scope: Scope, layer_name: str, version: int) -> tuple[str, str]:
        """GetLayerVersionPolicy: (the policy document as a JSON string, its RevisionId)."""
        name = self._name(scope, layer_name)
        _check_number(version)
        arn = layer_arn(scope.region, scope.account, name, version)
        with self._database.read() as connection:
            layer = records.get_version(connection, scope, name, version)
        if layer is None:
            raise ResourceNotFoundException(f"Layer version {arn} does not exist.")
        if not layer.statements or layer.policy_revision_id is None:
            raise ResourceNotFoundException(NO_POLICY)
        document = {"Version": "2012-10-17", "Id": "default", "Statement": layer.statements}
        return json.dumps(document, separators=(",", ":")), layer.policy_revision_id

    # --- functions' layers --------------------------------------------------------------------------

    def resolve(self, scope: Scope, arns: Sequence[str]) -> tuple[FunctionLayer, ...]:
        """The layers a function names (its ``Layers``), in order, with AWS's checks: at most five, all
        in the function's region, no layer twice, every version existing."""
        if len(arns) > MAX_LAYERS:
            raise InvalidParameterValueException(f"Cannot reference more than {MAX_LAYERS} layers.")
        refs = []
        for arn in arns:
            ref = parse_layer_arn(arn)
            if ref is None or ref.version is None:
                raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
            if ref.region != scope.region:
                raise InvalidParameterValueException(
                    "Layers are not in the same region as the function. Layers are expected to be in "
                    f"region {scope.region}."
                )
            refs.append((arn, ref))
        for index, (arn, ref) in enumerate(refs):
            for other_arn, other in refs[index + 1 :]:
                if (other.account, other.name) == (ref.account, ref.name):
                    raise InvalidParameterValueException(
                        "Two different versions of the same layer are not allowed to be referenced in the "
                        f"same function. {arn} and {other_arn} are versions of the same layer."
                    )
        resolved = []
        with self._database.read() as connection:
            for arn, ref in refs:
                assert ref.version is not None
                # Another account's layer is read in its owner's records (the authorizer has checked the
                # caller may: lambda:GetLayerVersion, granted by the layer version's policy).
                owner = Scope(ref.account, scope.region)
                layer = records.get_version(connection, owner, ref.name, ref.version)
                if layer is None:
                    raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
                resolved.append(FunctionLayer(arn, layer.code))
        return tuple(resolved)

    # --- helpers ------------------------------------------------------------------------------------

    def _name(self, scope: Scope, layer_name: str) -> str:
        """A LayerName parameter (a name or a layer ARN) as the layer's name."""
        if layer_name.startswith("arn:"):
            ref = parse_layer_arn(layer_name)
            if ref is None or (ref.region, ref.account) != (scope.region, scope.account):
                raise ResourceNotFoundException(NOT_FOUND)
            return ref.name
        return layer_name


def check_combined_size(code: CodePackage, layers: Sequence[FunctionLayer]) -> None:
    """AWS's 250 MB limit on a function's unzipped code and layers together."""
    total = code.unzipped_size + sum(layer.code.unzipped_size for layer in layers)
    if total > limits.UNZIPPED_CODE_MAX:
        raise InvalidParameterValueException(
            "Function code combined with layers exceeds the maximum allowed size of "
            f"{limits.UNZIPPED_CODE_MAX} bytes. The actual size is {total} bytes."
        )


def _check_number(version: int) -> None:
    if version < 1:
        raise InvalidParameterValueException(VERSION_TOO_LOW)


def _given(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _matches(layer: LayerVersion, runtime: str | None, architecture: str | None) -> bool:
    if runtime is not None and runtime not in (layer.compatible_runtimes or ()):
        return False
    return architecture is None or architecture in (layer.compatible_architectures or ())


def _principal(principal: str) -> Any:
    if principal == "*":
        return "*"
    if _ACCOUNT.match(principal):
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    return {"AWS": principal}


def _zip_from(content: dict[str, Any]) -> bytes:
    if content.get("ZipFile") is not None:
        return bytes(content["ZipFile"])
    if content.get("S3Bucket") or content.get("S3Key"):
        raise InvalidParameterValueException(
            "lambdad has no S3-compatible code source configured yet, so S3Bucket/S3Key cannot be used; "
            "upload the layer as ZipFile instead."
        )
    raise InvalidParameterValueException("Please provide a source for layer content.")


def _policy_target(
    connection: Connection, scope: Scope, name: str, version: int, arn: str, revision_id: str | None
) -> LayerVersion:
    """The layer version whose policy is about to change, locked, after AWS's existence and RevisionId
    checks."""
    layer = records.get_version(connection, scope, name, version, for_update=True)
    if layer is None:
        raise ResourceNotFoundException(f"Layer version {arn} does not exist.")
    if revision_id is not None and revision_id != layer.policy_revision_id:
        raise PreconditionFailedException(REVISION_MISMATCH)
    return layer
