"""Reserved concurrency operations."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable

table = OperationTable()


@table.operation("PutFunctionConcurrency")
def put_function_concurrency(call: Call) -> dict[str, Any]:
    reserved = call.services.concurrency.put(
        call.scope, call.params["FunctionName"], call.params["ReservedConcurrentExecutions"]
    )
    return {"ReservedConcurrentExecutions": reserved}


@table.operation("GetFunctionConcurrency")
def get_function_concurrency(call: Call) -> dict[str, Any]:
    return {
        "ReservedConcurrentExecutions": call.services.concurrency.get(call.scope, call.params["FunctionName"])
    }


@table.operation("DeleteFunctionConcurrency")
def delete_function_concurrency(call: Call) -> dict[str, Any]:
    call.services.concurrency.delete(call.scope, call.params["FunctionName"])
    return {}
