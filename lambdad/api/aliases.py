"""Alias operations: CreateAlias, GetAlias, ListAliases, UpdateAlias, DeleteAlias."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.api.render import alias_configuration

table = OperationTable()


@table.operation("CreateAlias")
def create_alias(call: Call) -> dict[str, Any]:
    params = call.params
    alias = call.services.aliases.create(
        call.scope,
        params["FunctionName"],
        params["Name"],
        params["FunctionVersion"],
        params.get("Description") or "",
        params.get("RoutingConfig"),
    )
    return alias_configuration(alias, call.scope)


@table.operation("GetAlias")
def get_alias(call: Call) -> dict[str, Any]:
    alias = call.services.aliases.get(call.scope, call.params["FunctionName"], call.params["Name"])
    return alias_configuration(alias, call.scope)


@table.operation("ListAliases")
def list_aliases(call: Call) -> dict[str, Any]:
    page = call.services.aliases.list(
        call.scope,
        call.params["FunctionName"],
        function_version=call.params.get("FunctionVersion"),
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
    )
    return {
        "Aliases": [alias_configuration(alias, call.scope) for alias in page.aliases],
        "NextMarker": page.next_marker,
    }


@table.operation("UpdateAlias")
def update_alias(call: Call) -> dict[str, Any]:
    params = call.params
    alias = call.services.aliases.update(
        call.scope,
        params["FunctionName"],
        params["Name"],
        function_version=params.get("FunctionVersion"),
        description=params.get("Description"),
        routing=params.get("RoutingConfig"),
        revision_id=params.get("RevisionId"),
    )
    return alias_configuration(alias, call.scope)


@table.operation("DeleteAlias")
def delete_alias(call: Call) -> dict[str, Any]:
    call.services.aliases.delete(call.scope, call.params["FunctionName"], call.params["Name"])
    return {}
