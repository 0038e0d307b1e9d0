"""Domain objects in AWS's response shapes."""

from __future__ import annotations

import hashlib
from typing import Any

from lambdad.models import LATEST, Alias, FunctionVersion, Scope, aws_timestamp, layer_arn
from lambdad.services.provisioned import ProvisionedStatus
from lambdad.store.function_configs import EventInvokeConfig
from lambdad.store.layers import LayerVersion
from lambdad.store.provisioned import ProvisionedConfig

# What AWS leaves out of the configurations it lists (ListFunctions, ListVersionsByFunction).
_NOT_LISTED = (
    "State",
    "StateReason",
    "StateReasonCode",
    "LastUpdateStatus",
    "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode",
    "RuntimeVersionConfig",
)


def function_configuration(
    version: FunctionVersion, scope: Scope, *, arn: str | None = None, listed: bool = False
) -> dict[str, Any]:
    """A ``FunctionConfiguration``, as GetFunctionConfiguration and friends answer it. ``arn`` is the
    FunctionArn to report (AWS echoes the qualifier asked for); by default a published version's ARN
    carries its number and ``$LATEST``'s none. ``listed`` gives the shorter form lists carry."""
    qualifier = None if version.version == LATEST else version.version
    config: dict[str, Any] = {
        "FunctionName": version.name,
        "FunctionArn": arn or scope.function_arn(version.name, qualifier),
        "Runtime": version.runtime,
        "Role": version.role,
        "Handler": version.handler,
        "CodeSize": version.code.size,
        "Description": version.description,
        "Timeout": version.timeout,
        "MemorySize": version.memory_size,
        "LastModified": aws_timestamp(version.last_modified),
        "CodeSha256": version.code.code_sha256,
        "Version": version.version,
        "Environment": {"Variables": dict(version.environment)},
        "RevisionId": version.revision_id,
        "State": version.state.value,
        "StateReason": version.state_reason,
        "StateReasonCode": version.state_reason_code,
        "LastUpdateStatus": version.last_update_status.value if version.last_update_status else None,
        "LastUpdateStatusReason": version.last_update_status_reason,
        "LastUpdateStatusReasonCode": version.last_update_status_reason_code,
        "PackageType": version.package_type,
        "Architectures": list(version.architectures),
        "EphemeralStorage": {"Size": version.ephemeral_storage},
    }
    if version.layers:
        config["Layers"] = [{"Arn": layer.arn, "CodeSize": layer.code.size} for layer in version.layers]
    if version.runtime:
        config["RuntimeVersionConfig"] = {"RuntimeVersionArn": runtime_version_arn(scope, version.runtime)}
    for member in (
        "VpcConfig",
        "DeadLetterConfig",
        "KMSKeyArn",
        "TracingConfig",
        "FileSystemConfigs",
        "SnapStart",
        "LoggingConfig",
        "CapacityProviderConfig",
    ):
        if member in version.extra:
            config[member] = version.extra[member]
    if "ImageConfig" in version.extra:
        config["ImageConfigResponse"] = {"ImageConfig": version.extra["ImageConfig"]}
    if listed:
        for member in _NOT_LISTED:
            config.pop(member, None)
    return config


def alias_configuration(alias: Alias, scope: Scope) -> dict[str, Any]:
    """An ``AliasConfiguration`` (RoutingConfig only when the alias has one, as AWS answers)."""
    config: dict[str, Any] = {
        "AliasArn": scope.function_arn(alias.function_name, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.additional_weights:
        config["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.additional_weights)}
    return config


def layer_version(layer: LayerVersion, scope: Scope, location: str | None = None) -> dict[str, Any]:
    """A layer version as PublishLayerVersion and GetLayerVersion answer it (with ``location``, the
    download link of its Content), or as the lists carry it (without). LicenseInfo and the
    compatibility lists only when given."""
    arn = layer_arn(scope.region, scope.account, layer.name)
    answer: dict[str, Any] = {
        "LayerVersionArn": f"{arn}:{layer.version}",
        "Version": layer.version,
        "Description": layer.description,
        "CreatedDate": aws_timestamp(layer.created),
    }
    if layer.compatible_runtimes is not None:
        answer["CompatibleRuntimes"] = list(layer.compatible_runtimes)
    if layer.compatible_architectures is not None:
        answer["CompatibleArchitectures"] = list(layer.compatible_architectures)
    if layer.license_info is not None:
        answer["LicenseInfo"] = layer.license_info
    if location is not None:
        answer["LayerArn"] = arn
        answer["Content"] = {
            "Location": location,
            "CodeSha256": layer.code.code_sha256,
            "CodeSize": layer.code.size,
        }
    return answer


def event_invoke_config(config: EventInvokeConfig, scope: Scope, function_name: str) -> dict[str, Any]:
    """A ``FunctionEventInvokeConfig``: FunctionArn always qualified (``:$LATEST`` when unqualified),
    DestinationConfig always present, the two limits only when set."""
    answer: dict[str, Any] = {
        "LastModified": config.last_modified,
        "FunctionArn": scope.function_arn(function_name, config.qualifier),
        "DestinationConfig": {
            "OnSuccess": dict(config.destinations.get("OnSuccess") or {}),
            "OnFailure": dict(config.destinations.get("OnFailure") or {}),
        },
    }
    if config.maximum_retry_attempts is not None:
        answer["MaximumRetryAttempts"] = config.maximum_retry_attempts
    if config.maximum_event_age is not None:
        answer["MaximumEventAgeInSeconds"] = config.maximum_event_age
    return answer


def runtime_version_arn(scope: Scope, runtime: str) -> str:
    """A stable runtime version ARN per runtime, in AWS's form."""
    digest = hashlib.sha256(runtime.encode()).hexdigest()
    return f"arn:aws:lambda:{scope.region}::runtime:{digest}"


def provisioned_config(
    config: ProvisionedConfig, status: ProvisionedStatus, scope: Scope | None = None
) -> dict[str, Any]:
    """A provisioned concurrency config as AWS answers it (with its FunctionArn in lists)."""
    answer: dict[str, Any] = {}
    if scope is not None:
        answer["FunctionArn"] = scope.function_arn(config.function_name, config.qualifier)
    answer |= {
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": status.allocated,
        "AllocatedProvisionedConcurrentExecutions": status.allocated,
        "Status": status.status,
        "LastModified": aws_timestamp(config.last_modified),
    }
    if status.reason is not None:
        answer["StatusReason"] = status.reason
    return answer
