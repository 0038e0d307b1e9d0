"""Function operations: create, read, list, update, delete."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.api.render import function_configuration
from lambdad.services.resolution import resolve

table = OperationTable()


@table.operation("CreateFunction")
def create_function(call: Call) -> dict[str, Any]:
    version = call.services.functions.create(call.scope, call.params, call.params.get("Tags"))
    # With Publish, AWS answers version 1's configuration under the unqualified ARN.
    return function_configuration(version, call.scope, arn=call.scope.function_arn(version.name))


@table.operation("GetFunction")
def get_function(call: Call) -> dict[str, Any]:
    services = call.services
    version = services.functions.get(call.scope, call.params["FunctionName"], call.params.get("Qualifier"))
    result: dict[str, Any] = {
        "Configuration": function_configuration(version, call.scope, arn=_asked_arn(call)),
        "Code": {
            "RepositoryType": "S3",
            "Location": services.code_links.url(call.base_url, version.code.sha256_hex),
        },
    }
    tags = services.tags.get(call.scope, call.scope.function_arn(version.name))
    if tags:
        result["Tags"] = tags
    reserved = services.concurrency.get(call.scope, version.name)
    if reserved is not None:
        result["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
    return result


@table.operation("GetFunctionConfiguration")
def get_function_configuration(call: Call) -> dict[str, Any]:
    version = call.services.functions.get(
        call.scope, call.params["FunctionName"], call.params.get("Qualifier")
    )
    return function_configuration(version, call.scope, arn=_asked_arn(call))


@table.operation("ListFunctions")
def list_functions(call: Call) -> dict[str, Any]:
    all_versions = call.params.get("FunctionVersion") == "ALL"
    page = call.services.functions.list(
        call.scope,
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
        all_versions=all_versions,
    )
    return {
        "Functions": [
            # Listing every version, AWS qualifies $LATEST's ARN too.
            function_configuration(
                v,
                call.scope,
                arn=call.scope.function_arn(v.name, v.version) if all_versions else None,
                listed=True,
            )
            for v in page.versions
        ],
        "NextMarker": page.next_marker,
    }


@table.operation("UpdateFunctionConfiguration")
def update_function_configuration(call: Call) -> dict[str, Any]:
    return function_configuration(
        call.services.functions.update_configuration(call.scope, call.params), call.scope
    )


@table.operation("UpdateFunctionCode")
def update_function_code(call: Call) -> dict[str, Any]:
    return function_configuration(call.services.functions.update_code(call.scope, call.params), call.scope)


@table.operation("DeleteFunction")
def delete_function(call: Call) -> dict[str, Any]:
    call.services.functions.delete(call.scope, call.params["FunctionName"], call.params.get("Qualifier"))
    return {}


def _asked_arn(call: Call) -> str:
    """The FunctionArn AWS reports for a read: qualified exactly as asked (``:$LATEST`` included)."""
    name, qualifier = resolve(call.scope, call.params["FunctionName"], call.params.get("Qualifier"))
    return call.scope.function_arn(name, qualifier)
