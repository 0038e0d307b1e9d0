"""Capacity providers (Lambda Managed Instances): Create/Get/Update/Delete/ListCapacityProviders,
ListFunctionVersionsByCapacityProvider, Put/GetFunctionScalingConfig."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.models import aws_timestamp
from lambdad.services.capacity_providers import CapacityProvider
from lambdad.store.capacity_providers import ScalingRecord

table = OperationTable()


@table.operation("CreateCapacityProvider")
def create_capacity_provider(call: Call) -> dict[str, Any]:
    provider = call.services.capacity_providers.create(call.scope, call.params)
    return {"CapacityProvider": capacity_provider(provider)}


@table.operation("GetCapacityProvider")
def get_capacity_provider(call: Call) -> dict[str, Any]:
    provider = call.services.capacity_providers.get(call.scope, call.params["CapacityProviderName"])
    return {"CapacityProvider": capacity_provider(provider)}


@table.operation("UpdateCapacityProvider")
def update_capacity_provider(call: Call) -> dict[str, Any]:
    provider = call.services.capacity_providers.update(call.scope, call.params)
    return {"CapacityProvider": capacity_provider(provider)}


@table.operation("DeleteCapacityProvider")
def delete_capacity_provider(call: Call) -> dict[str, Any]:
    provider = call.services.capacity_providers.delete(call.scope, call.params["CapacityProviderName"])
    return {"CapacityProvider": capacity_provider(provider)}


@table.operation("ListCapacityProviders")
def list_capacity_providers(call: Call) -> dict[str, Any]:
    page = call.services.capacity_providers.list_providers(
        call.scope,
        state=call.params.get("State"),
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
    )
    return {
        "CapacityProviders": [capacity_provider(provider) for provider in page.providers],
        "NextMarker": page.next_marker,
    }


@table.operation("ListFunctionVersionsByCapacityProvider")
def list_function_versions_by_capacity_provider(call: Call) -> dict[str, Any]:
    page = call.services.capacity_providers.list_function_versions(
        call.scope,
        call.params["CapacityProviderName"],
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
    )
    return {
        "CapacityProviderArn": page.provider_arn,
        "FunctionVersions": [{"FunctionArn": arn, "State": state} for arn, state in page.versions],
        "NextMarker": page.next_marker,
    }


@table.operation("PutFunctionScalingConfig")
def put_function_scaling_config(call: Call) -> dict[str, Any]:
    version = call.services.capacity_providers.put_scaling(
        call.scope,
        call.params["FunctionName"],
        call.params["Qualifier"],
        call.params.get("FunctionScalingConfig") or {},
    )
    return {"FunctionState": version.state.value}


@table.operation("GetFunctionScalingConfig")
def get_function_scaling_config(call: Call) -> dict[str, Any]:
    config = call.services.capacity_providers.get_scaling(
        call.scope, call.params["FunctionName"], call.params["Qualifier"]
    )
    answer: dict[str, Any] = {"FunctionArn": config.function_arn}
    if config.requested is not None:
        # lambdad applies a request at once: what is applied is what was asked.
        answer["RequestedFunctionScalingConfig"] = scaling_config(config.requested)
        answer["AppliedFunctionScalingConfig"] = scaling_config(config.requested)
    else:
        answer["AppliedFunctionScalingConfig"] = {"MinExecutionEnvironments": 0}
    return answer


def capacity_provider(provider: CapacityProvider) -> dict[str, Any]:
    """A ``CapacityProvider`` shape."""
    return {
        "CapacityProviderArn": provider.arn,
        "State": provider.state.value,
        **provider.record.config,
        "LastModified": aws_timestamp(provider.record.last_modified),
    }


def scaling_config(record: ScalingRecord) -> dict[str, Any]:
    """A ``FunctionScalingConfig`` shape (members not requested left out)."""
    config = {}
    if record.minimum is not None:
        config["MinExecutionEnvironments"] = record.minimum
    if record.maximum is not None:
        config["MaxExecutionEnvironments"] = record.maximum
    return config
