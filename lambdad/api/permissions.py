"""Resource-based policy operations: AddPermission, RemovePermission, GetPolicy, and the whole-document
PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy (on a function, version or alias ARN)."""

from __future__ import annotations

import json
from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.services.permissions import PermissionGrant

table = OperationTable()


@table.operation("AddPermission")
def add_permission(call: Call) -> dict[str, Any]:
    params = call.params
    grant = PermissionGrant(
        statement_id=params["StatementId"],
        action=params["Action"],
        principal=params["Principal"],
        source_arn=params.get("SourceArn"),
        source_account=params.get("SourceAccount"),
        event_source_token=params.get("EventSourceToken"),
        principal_org_id=params.get("PrincipalOrgID"),
        function_url_auth_type=params.get("FunctionUrlAuthType"),
        invoked_via_function_url=params.get("InvokedViaFunctionUrl"),
    )
    statement = call.services.permissions.add(
        call.scope,
        params["FunctionName"],
        grant,
        qualifier=params.get("Qualifier"),
        revision_id=params.get("RevisionId"),
    )
    return {"Statement": json.dumps(statement, separators=(",", ":"))}


@table.operation("RemovePermission")
def remove_permission(call: Call) -> dict[str, Any]:
    params = call.params
    call.services.permissions.remove(
        call.scope,
        params["FunctionName"],
        params["StatementId"],
        qualifier=params.get("Qualifier"),
        revision_id=params.get("RevisionId"),
    )
    return {}


@table.operation("GetPolicy")
def get_policy(call: Call) -> dict[str, Any]:
    policy, revision_id = call.services.permissions.get(
        call.scope, call.params["FunctionName"], call.params.get("Qualifier")
    )
    return {"Policy": policy, "RevisionId": revision_id}


@table.operation("PutResourcePolicy")
def put_resource_policy(call: Call) -> dict[str, Any]:
    policy, revision_id = call.services.permissions.put_document(
        call.scope, call.params["ResourceArn"], call.params["Policy"], call.params.get("RevisionId")
    )
    return {"Policy": policy, "RevisionId": revision_id}


@table.operation("GetResourcePolicy")
def get_resource_policy(call: Call) -> dict[str, Any]:
    policy, revision_id = call.services.permissions.get(call.scope, call.params["ResourceArn"])
    return {"Policy": policy, "RevisionId": revision_id}


@table.operation("DeleteResourcePolicy")
def delete_resource_policy(call: Call) -> dict[str, Any]:
    call.services.permissions.delete_document(
        call.scope, call.params["ResourceArn"], call.params.get("RevisionId")
    )
    return {}
