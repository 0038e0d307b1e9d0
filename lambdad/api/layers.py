"""Layer operations: PublishLayerVersion, GetLayerVersion(ByArn), ListLayers, ListLayerVersions,
DeleteLayerVersion, and the layer version policy calls."""

from __future__ import annotations

import json
from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.api.render import layer_version
from lambdad.errors import ValidationException
from lambdad.services.configuration import SUPPORTED_RUNTIMES
from lambdad.store.layers import LayerVersion

table = OperationTable()

# The runtimes AWS names when a list filter's CompatibleRuntime is unknown, in the order it names them.
_LIST_FILTER_RUNTIMES = (
    "ruby3.5, ruby2.6, dotnetcore1.0, python3.7, nodejs8.10, nasa, ruby2.7, python2.7-greengrass, "
    "dotnetcore2.0, python3.8, java21, dotnet6, dotnetcore2.1, python3.9, java11, nodejs6.10, provided, "
    "dotnetcore3.1, dotnet8, java25, java17, nodejs, nodejs4.3, java8.al2, go1.x, dotnet10, nodejs20.x, "
    "go1.9, byol, nodejs10.x, provided.al2023, nodejs22.x, python3.10, java8, nodejs12.x, python3.11, "
    "nodejs24.x, nodejs8.x, python3.12, nodejs14.x, nodejs8.9, nodejs26.x, python3.13, python3.14, "
    "nodejs16.x, python3.15, provided.al2, nodejs4.3-edge, nodejs18.x, ruby3.2, python3.4, ruby3.3, "
    "ruby3.4, ruby2.5, python3.6, python2.7"
)


def _full(call: Call, layer: LayerVersion) -> dict[str, Any]:
    location = call.services.code_links.url(call.base_url, layer.code.sha256_hex)
    return layer_version(layer, call.scope, location)


@table.operation("PublishLayerVersion")
def publish_layer_version(call: Call) -> dict[str, Any]:
    runtimes = call.params.get("CompatibleRuntimes") or []
    if any(runtime not in SUPPORTED_RUNTIMES for runtime in runtimes):
        raise ValidationException.from_messages(
            [
                f"Value '[{', '.join(runtimes)}]' at 'compatibleRuntimes' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(SUPPORTED_RUNTIMES)}]"
            ]
        )
    layer = call.services.layers.publish(call.scope, call.params["LayerName"], call.params)
    return _full(call, layer)


@table.operation("GetLayerVersion")
def get_layer_version(call: Call) -> dict[str, Any]:
    layer = call.services.layers.get(call.scope, call.params["LayerName"], call.params["VersionNumber"])
    return _full(call, layer)


@table.operation("GetLayerVersionByArn")
def get_layer_version_by_arn(call: Call) -> dict[str, Any]:
    return _full(call, call.services.layers.get_by_arn(call.scope, call.params["Arn"]))


@table.operation("DeleteLayerVersion")
def delete_layer_version(call: Call) -> dict[str, Any]:
    call.services.layers.delete(call.scope, call.params["LayerName"], call.params["VersionNumber"])
    return {}


def _filter_runtime(call: Call) -> str | None:
    runtime = call.params.get("CompatibleRuntime")
    if runtime is not None and runtime not in _LIST_FILTER_RUNTIMES.split(", "):
        raise ValidationException.from_messages(
            [
                f"Value '{runtime}' at 'compatibleRuntime' failed to satisfy constraint: Member must "
                f"satisfy enum value set: [{_LIST_FILTER_RUNTIMES}]"
            ]
        )
    return runtime


@table.operation("ListLayers")
def list_layers(call: Call) -> dict[str, Any]:
    page = call.services.layers.list_layers(
        call.scope,
        runtime=_filter_runtime(call),
        architecture=call.params.get("CompatibleArchitecture"),
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
    )
    layers = []
    for layer in page.layers:
        latest = layer_version(layer, call.scope)
        layers.append(
            {
                "LayerName": layer.name,
                "LayerArn": latest["LayerVersionArn"].rsplit(":", 1)[0],
                "LatestMatchingVersion": latest,
            }
        )
    return {"Layers": layers, "NextMarker": page.next_marker}


@table.operation("ListLayerVersions")
def list_layer_versions(call: Call) -> dict[str, Any]:
    page = call.services.layers.list_versions(
        call.scope,
        call.params["LayerName"],
        runtime=_filter_runtime(call),
        architecture=call.params.get("CompatibleArchitecture"),
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
    )
    return {
        "LayerVersions": [layer_version(layer, call.scope) for layer in page.versions],
        "NextMarker": page.next_marker,
    }


@table.operation("AddLayerVersionPermission")
def add_layer_version_permission(call: Call) -> dict[str, Any]:
    params = call.params
    statement, revision_id = call.services.layers.add_permission(
        call.scope,
        params["LayerName"],
        params["VersionNumber"],
        statement_id=params["StatementId"],
        action=params["Action"],
        principal=params["Principal"],
        organization_id=params.get("OrganizationId"),
        revision_id=params.get("RevisionId"),
    )
    return {"Statement": json.dumps(statement, separators=(",", ":")), "RevisionId": revision_id}


@table.operation("GetLayerVersionPolicy")
def get_layer_version_policy(call: Call) -> dict[str, Any]:
    policy, revision_id = call.services.layers.get_policy(
        call.scope, call.params["LayerName"], call.params["VersionNumber"]
    )
    return {"Policy": policy, "RevisionId": revision_id}


@table.operation("RemoveLayerVersionPermission")
def remove_layer_version_permission(call: Call) -> dict[str, Any]:
    call.services.layers.remove_permission(
        call.scope,
        call.params["LayerName"],
        call.params["VersionNumber"],
        call.params["StatementId"],
        revision_id=call.params.get("RevisionId"),
    )
    return {}
