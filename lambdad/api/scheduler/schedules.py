"""CreateSchedule, GetSchedule, ListSchedules, UpdateSchedule, DeleteSchedule."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.services.schedules import parse_timestamp

table = OperationTable()


def _with_dates(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters with StartDate/EndDate as datetimes (the wire carries epoch seconds)."""
    parsed = dict(params)
    for member in ("StartDate", "EndDate"):
        if parsed.get(member) is not None:
            parsed[member] = parse_timestamp(parsed[member], member)
    return parsed


@table.operation("CreateSchedule")
def create_schedule(call: Call) -> dict[str, Any]:
    arn = call.services.schedules.create(call.scope, call.params["Name"], _with_dates(call.params))
    return {"ScheduleArn": arn}


@table.operation("UpdateSchedule")
def update_schedule(call: Call) -> dict[str, Any]:
    arn = call.services.schedules.update(call.scope, call.params["Name"], _with_dates(call.params))
    return {"ScheduleArn": arn}


@table.operation("GetSchedule")
def get_schedule(call: Call) -> dict[str, Any]:
    return call.services.schedules.get(call.scope, call.params["Name"], call.params.get("GroupName"))


@table.operation("ListSchedules")
def list_schedules(call: Call) -> dict[str, Any]:
    summaries, next_token = call.services.schedules.list(call.scope, call.params)
    return {"Schedules": summaries, "NextToken": next_token}


@table.operation("DeleteSchedule")
def delete_schedule(call: Call) -> dict[str, Any]:
    call.services.schedules.delete(call.scope, call.params["Name"], call.params.get("GroupName"))
    return {}
