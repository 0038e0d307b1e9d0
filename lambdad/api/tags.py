"""Tag operations."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable

table = OperationTable()


@table.operation("TagResource")
def tag_resource(call: Call) -> dict[str, Any]:
    call.services.tags.tag(call.scope, call.params["Resource"], call.params["Tags"])
    return {}


@table.operation("UntagResource")
def untag_resource(call: Call) -> dict[str, Any]:
    call.services.tags.untag(call.scope, call.params["Resource"], call.params["TagKeys"])
    return {}


@table.operation("ListTags")
def list_tags(call: Call) -> dict[str, Any]:
    return {"Tags": call.services.tags.get(call.scope, call.params["Resource"])}
