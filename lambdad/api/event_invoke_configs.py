"""Asynchronous invocation settings: Put/Get/Update/Delete/ListFunctionEventInvokeConfigs."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.api.render import event_invoke_config
from lambdad.services.event_invoke_configs import EventInvokeSettings

table = OperationTable()


def _settings(params: dict[str, Any]) -> EventInvokeSettings:
    return EventInvokeSettings(
        maximum_retry_attempts=params.get("MaximumRetryAttempts"),
        maximum_event_age=params.get("MaximumEventAgeInSeconds"),
        destination_config=params.get("DestinationConfig"),
    )


@table.operation("PutFunctionEventInvokeConfig")
def put_function_event_invoke_config(call: Call) -> dict[str, Any]:
    name, config = call.services.event_invoke_configs.put(
        call.scope, call.params["FunctionName"], _settings(call.params), call.params.get("Qualifier")
    )
    return event_invoke_config(config, call.scope, name)


@table.operation("UpdateFunctionEventInvokeConfig")
def update_function_event_invoke_config(call: Call) -> dict[str, Any]:
    name, config = call.services.event_invoke_configs.update(
        call.scope, call.params["FunctionName"], _settings(call.params), call.params.get("Qualifier")
    )
    return event_invoke_config(config, call.scope, name)


@table.operation("GetFunctionEventInvokeConfig")
def get_function_event_invoke_config(call: Call) -> dict[str, Any]:
    name, config = call.services.event_invoke_configs.get(
        call.scope, call.params["FunctionName"], call.params.get("Qualifier")
    )
    return event_invoke_config(config, call.scope, name)


@table.operation("DeleteFunctionEventInvokeConfig")
def delete_function_event_invoke_config(call: Call) -> dict[str, Any]:
    call.services.event_invoke_configs.delete(
        call.scope, call.params["FunctionName"], call.params.get("Qualifier")
    )
    return {}


@table.operation("ListFunctionEventInvokeConfigs")
def list_function_event_invoke_configs(call: Call) -> dict[str, Any]:
    name, page = call.services.event_invoke_configs.list(
        call.scope,
        call.params["FunctionName"],
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
    )
    return {
        "FunctionEventInvokeConfigs": [
            event_invoke_config(config, call.scope, name) for config in page.configs
        ],
        "NextMarker": page.next_marker,
    }
