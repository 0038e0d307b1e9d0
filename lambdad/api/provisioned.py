"""Provisioned concurrency: Put/Get/Delete/ListProvisionedConcurrencyConfigs."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.api.render import provisioned_config

table = OperationTable()


@table.operation("PutProvisionedConcurrencyConfig")
def put_provisioned_concurrency_config(call: Call) -> dict[str, Any]:
    config, status = call.services.provisioned.put(
        call.scope,
        call.params["FunctionName"],
        call.params.get("Qualifier"),
        call.params["ProvisionedConcurrentExecutions"],
    )
    return provisioned_config(config, status)


@table.operation("GetProvisionedConcurrencyConfig")
def get_provisioned_concurrency_config(call: Call) -> dict[str, Any]:
    config, status = call.services.provisioned.get(
        call.scope, call.params["FunctionName"], call.params.get("Qualifier")
    )
    return provisioned_config(config, status)


@table.operation("DeleteProvisionedConcurrencyConfig")
def delete_provisioned_concurrency_config(call: Call) -> dict[str, Any]:
    call.services.provisioned.delete(call.scope, call.params["FunctionName"], call.params.get("Qualifier"))
    return {}


@table.operation("ListProvisionedConcurrencyConfigs")
def list_provisioned_concurrency_configs(call: Call) -> dict[str, Any]:
    _, page = call.services.provisioned.list_configs(
        call.scope,
        call.params["FunctionName"],
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
    )
    return {
        "ProvisionedConcurrencyConfigs": [
            provisioned_config(config, status, call.scope) for config, status in page.configs
        ],
        "NextMarker": page.next_marker,
    }
