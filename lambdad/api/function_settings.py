"""Recursion and runtime management configs: Put/GetFunctionRecursionConfig,
Put/GetRuntimeManagementConfig."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.services.function_settings import RuntimeManagement

table = OperationTable()


@table.operation("PutFunctionRecursionConfig")
def put_function_recursion_config(call: Call) -> dict[str, Any]:
    value = call.services.function_settings.put_recursion(
        call.scope, call.params["FunctionName"], call.params["RecursiveLoop"]
    )
    return {"RecursiveLoop": value}


@table.operation("GetFunctionRecursionConfig")
def get_function_recursion_config(call: Call) -> dict[str, Any]:
    return {
        "RecursiveLoop": call.services.function_settings.get_recursion(
            call.scope, call.params["FunctionName"]
        )
    }


def _runtime_management(config: RuntimeManagement) -> dict[str, Any]:
    answer = {"UpdateRuntimeOn": config.update_runtime_on, "FunctionArn": config.function_arn}
    if config.runtime_version_arn:
        answer["RuntimeVersionArn"] = config.runtime_version_arn
    return answer


@table.operation("PutRuntimeManagementConfig")
def put_runtime_management_config(call: Call) -> dict[str, Any]:
    params = call.params
    config = call.services.function_settings.put_runtime_management(
        call.scope,
        params["FunctionName"],
        params["UpdateRuntimeOn"],
        params.get("RuntimeVersionArn"),
        params.get("Qualifier"),
    )
    return _runtime_management(config)


@table.operation("GetRuntimeManagementConfig")
def get_runtime_management_config(call: Call) -> dict[str, Any]:
    config = call.services.function_settings.get_runtime_management(
        call.scope, call.params["FunctionName"], call.params.get("Qualifier")
    )
    return _runtime_management(config)
