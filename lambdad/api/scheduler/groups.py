"""CreateScheduleGroup, GetScheduleGroup, ListScheduleGroups, DeleteScheduleGroup."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable

table = OperationTable()


@table.operation("CreateScheduleGroup")
def create_schedule_group(call: Call) -> dict[str, Any]:
    arn = call.services.schedules.create_group(call.scope, call.params["Name"], call.params.get("Tags"))
    return {"ScheduleGroupArn": arn}


@table.operation("GetScheduleGroup")
def get_schedule_group(call: Call) -> dict[str, Any]:
    return call.services.schedules.get_group(call.scope, call.params["Name"])


@table.operation("ListScheduleGroups")
def list_schedule_groups(call: Call) -> dict[str, Any]:
    groups, next_token = call.services.schedules.list_groups(
        call.scope, call.params.get("NamePrefix"), call.params.get("NextToken"), call.params.get("MaxResults")
    )
    return {"ScheduleGroups": groups, "NextToken": next_token}


@table.operation("DeleteScheduleGroup")
def delete_schedule_group(call: Call) -> dict[str, Any]:
    call.services.schedules.delete_group(call.scope, call.params["Name"])
    return {}
