"""TagResource, UntagResource, ListTagsForResource (schedule groups are the taggable resource)."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable

table = OperationTable()


@table.operation("TagResource")
def tag_resource(call: Call) -> dict[str, Any]:
    call.services.schedules.tag(call.scope, call.params["ResourceArn"], call.params["Tags"])
    return {}


@table.operation("UntagResource")
def untag_resource(call: Call) -> dict[str, Any]:
    call.services.schedules.untag(call.scope, call.params["ResourceArn"], call.params["TagKeys"])
    return {}


@table.operation("ListTagsForResource")
def list_tags_for_resource(call: Call) -> dict[str, Any]:
    return {"Tags": call.services.schedules.tags(call.scope, call.params["ResourceArn"])}
