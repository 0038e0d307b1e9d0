"""Account operations."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable

table = OperationTable()


@table.operation("GetAccountSettings")
def get_account_settings(call: Call) -> dict[str, Any]:
    settings = call.services.account.settings(call.scope)
    return {
        "AccountLimit": {
            "TotalCodeSize": settings.total_code_size_limit,
            "CodeSizeUnzipped": settings.code_size_unzipped,
            "CodeSizeZipped": settings.code_size_zipped,
            "ConcurrentExecutions": settings.concurrent_executions,
            "UnreservedConcurrentExecutions": settings.unreserved_concurrent_executions,
        },
        "AccountUsage": {"TotalCodeSize": settings.total_code_size, "FunctionCount": settings.function_count},
    }
