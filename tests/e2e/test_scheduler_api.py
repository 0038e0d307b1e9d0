"""The EventBridge Scheduler API on lambdad's port, driven by boto3's ``scheduler`` client: schedules,
groups, tags, pagination, idempotency, and validation errors as botocore's exception classes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.invoke_support import unique
from tests.support import CREDENTIALS, Server

pytestmark = pytest.mark.e2e
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/scheduler-role"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:nowhere"
OFF = {"Mode": "OFF"}


def scheduler(server: Server, **config: Any) -> Any:
    return boto3.client(
        "scheduler",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, **config),
        **CREDENTIALS,
    )


@pytest.fixture
def client(server: Server) -> Any:
    return scheduler(server)


@pytest.fixture
def raw_client(server: Server) -> Any:
    """Sends what it is given, so that lambdad's own validation answers."""
    return scheduler(server, parameter_validation=False)


def target(**extra: Any) -> dict[str, Any]:
    return {"Arn": FUNCTION, "RoleArn": ROLE, **extra}


def create(client: Any, name: str, expression: str = "rate(1 hour)", **params: Any) -> str:
    params.setdefault("FlexibleTimeWindow", OFF)
    params.setdefault("Target", target())
    return str(client.create_schedule(Name=name, ScheduleExpression=expression, **params)["ScheduleArn"])


def test_schedule_round_trip(client: Any) -> None:
    name = unique("sched")
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    end = start + timedelta(days=30)
    arn = create(
        client,
        name,
        "cron(0 9 ? * MON-FRI *)",
        ScheduleExpressionTimezone="Europe/Paris",
        StartDate=start,
        EndDate=end,
        Description="weekday mornings",
        State="DISABLED",
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
        Target=target(
            Input='{"hello": "world"}',
            RetryPolicy={"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 120},
        ),
        ActionAfterCompletion="DELETE",
    )
    assert arn == f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/{name}"
    got = client.get_schedule(Name=name)
    assert got["Arn"] == arn
    assert got["GroupName"] == "default"
    assert got["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    assert got["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert got["StartDate"] == start and got["EndDate"] == end
    assert got["Description"] == "weekday mornings"
    assert got["State"] == "DISABLED"
    assert got["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert got["Target"] == target(
        Input='{"hello": "world"}', RetryPolicy={"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 120}
    )
    assert got["ActionAfterCompletion"] == "DELETE"
    assert isinstance(got["CreationDate"], datetime)

    time.sleep(0.01)
    client.update_schedule(
        Name=name, ScheduleExpression="rate(5 minutes)", FlexibleTimeWindow=OFF, Target=target()
    )
    updated = client.get_schedule(Name=name)
    # UpdateSchedule replaces the whole schedule: omitted members go back to their defaults.
    assert updated["ScheduleExpression"] == "rate(5 minutes)"
    assert updated["ScheduleExpressionTimezone"] == "UTC"
    assert updated["State"] == "ENABLED"
    assert "Description" not in updated and "StartDate" not in updated
    assert updated["Target"]["RetryPolicy"] == {
        "MaximumEventAgeInSeconds": 86400,
        "MaximumRetryAttempts": 185,
    }
    assert updated["ActionAfterCompletion"] == "NONE"
    assert updated["CreationDate"] == got["CreationDate"]
    assert updated["LastModificationDate"] > got["LastModificationDate"]

    client.delete_schedule(Name=name)
    with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
        client.get_schedule(Name=name)
    assert missing.value.response["Error"]["Message"] == f"Schedule {name} does not exist."
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_second_schedule_of_the_same_name_conflicts_unless_it_is_a_retry(client: Any) -> None:
    name = unique("dup")
    token = unique("token")
    first = create(client, name, ClientToken=token)
    assert create(client, name, ClientToken=token) == first  # an SDK retry of the same request
    with pytest.raises(client.exceptions.ConflictException) as conflict:
        create(client, name)
    assert conflict.value.response["Error"]["Message"] == f"Schedule {name} already exists."
    assert conflict.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    client.delete_schedule(Name=name)


def test_groups_hold_schedules_and_deleting_one_deletes_them(client: Any) -> None:
    group = unique("group")
    group_arn = client.create_schedule_group(Name=group, Tags=[{"Key": "team", "Value": "ops"}])[
        "ScheduleGroupArn"
    ]
    assert group_arn == f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule-group/{group}"
    got = client.get_schedule_group(Name=group)
    assert (got["Arn"], got["Name"], got["State"]) == (group_arn, group, "ACTIVE")
    arn = create(client, "in-group", GroupName=group)
    assert arn.endswith(f":schedule/{group}/in-group")
    assert client.get_schedule(Name="in-group", GroupName=group)["GroupName"] == group
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_schedule(Name="in-group")  # not in the default group
    listed = client.list_schedules(GroupName=group)["Schedules"]
    assert [(s["Name"], s["GroupName"], s["Target"]) for s in listed] == [
        ("in-group", group, {"Arn": FUNCTION})
    ]
    with pytest.raises(client.exceptions.ConflictException):
        client.create_schedule_group(Name=group)

    client.delete_schedule_group(Name=group)
    with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
        client.get_schedule_group(Name=group)
    assert missing.value.response["Error"]["Message"] == f"Schedule group {group} does not exist."
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_schedules(GroupName=group)
    client.create_schedule_group(Name=group)  # the name is free again, and the schedule is gone
    assert client.list_schedules(GroupName=group)["Schedules"] == []
    client.delete_schedule_group(Name=group)


def test_the_default_group_always_exists_and_cannot_be_deleted(client: Any) -> None:
    names = [g["Name"] for g in client.list_schedule_groups()["ScheduleGroups"]]
    assert "default" in names
    assert client.get_schedule_group(Name="default")["State"] == "ACTIVE"
    with pytest.raises(client.exceptions.ValidationException):
        client.delete_schedule_group(Name="default")


def test_a_schedule_in_a_missing_group_is_refused(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
        create(client, unique("orphan"), GroupName="no-such-group")
    assert missing.value.response["Error"]["Message"] == "Schedule group no-such-group does not exist."


def test_group_tags(client: Any) -> None:
    group = unique("tagged")
    arn = client.create_schedule_group(Name=group, Tags=[{"Key": "a", "Value": "1"}])["ScheduleGroupArn"]
    client.tag_resource(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "a", "Value": "3"},
        {"Key": "b", "Value": "2"},
    ]
    client.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    client.delete_schedule_group(Name=group)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_tags_for_resource(ResourceArn=arn)


def test_listing_pages_filters_and_prefixes(client: Any) -> None:
    group = unique("paged")
    client.create_schedule_group(Name=group)
    for index in range(5):
        create(client, f"job-{index}", GroupName=group, State="DISABLED" if index % 2 else "ENABLED")
    create(client, "other", GroupName=group)
    seen, token = [], None
    while True:
        page = client.list_schedules(GroupName=group, MaxResults=2, **({"NextToken": token} if token else {}))
        assert len(page["Schedules"]) <= 2
        seen += [s["Name"] for s in page["Schedules"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ["job-0", "job-1", "job-2", "job-3", "job-4", "other"]
    paginated = client.get_paginator("list_schedules").paginate(GroupName=group, NamePrefix="job-")
    assert [s["Name"] for page in paginated for s in page["Schedules"]] == [f"job-{i}" for i in range(5)]
    disabled = client.list_schedules(GroupName=group, State="DISABLED")["Schedules"]
    assert [s["Name"] for s in disabled] == ["job-1", "job-3"]
    groups = client.list_schedule_groups(NamePrefix=group)["ScheduleGroups"]
    assert [g["Name"] for g in groups] == [group]
    client.delete_schedule_group(Name=group)


@pytest.mark.parametrize(
    ("expression", "zone"),
    [
        ("cron(0 9 * * * *)", None),  # a day field must be ?
        ("rate(0 minutes)", None),
        ("rate(1 week)", None),
        ("at(2026-13-01T00:00:00)", None),
        ("every day", None),
    ],
)
def test_invalid_expressions_are_validation_errors(client: Any, expression: str, zone: str | None) -> None:
    with pytest.raises(client.exceptions.ValidationException) as invalid:
        create(client, unique("bad"), expression)
    assert invalid.value.response["Error"]["Message"] == f"Invalid Schedule Expression {expression}."
    assert invalid.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_an_unknown_time_zone_is_a_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException):
        create(client, unique("zone"), ScheduleExpressionTimezone="Mars/Olympus_Mons")


def test_model_constraints_answer_aws_wording(raw_client: Any) -> None:
    with pytest.raises(raw_client.exceptions.ValidationException) as invalid:
        create(raw_client, unique("retry"), Target=target(RetryPolicy={"MaximumRetryAttempts": 200}))
    assert invalid.value.response["Error"]["Message"] == (
        "1 validation error detected: Value '200' at 'target.retryPolicy.maximumRetryAttempts' failed to "
        "satisfy constraint: Member must have value less than or equal to 185"
    )
    with pytest.raises(raw_client.exceptions.ValidationException) as invalid:
        create(raw_client, "bad name!")
    assert (
        "Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+"
        in (invalid.value.response["Error"]["Message"])
    )
    with pytest.raises(raw_client.exceptions.ValidationException) as invalid:
        raw_client.create_schedule(Name=unique("x"), ScheduleExpression="rate(1 hour)", Target=target())
    assert (
        "Value null at 'flexibleTimeWindow' failed to satisfy constraint: Member must not be null"
        in (invalid.value.response["Error"]["Message"])
    )


def test_flexible_window_and_dates_are_checked(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException):
        create(client, unique("flex"), FlexibleTimeWindow={"Mode": "FLEXIBLE"})
    now = datetime.now(UTC)
    with pytest.raises(client.exceptions.ValidationException):
        create(client, unique("dates"), StartDate=now + timedelta(days=2), EndDate=now + timedelta(days=1))
    with pytest.raises(client.exceptions.ValidationException) as invalid:
        create(client, unique("past"), StartDate=now - timedelta(days=1))
    assert invalid.value.response["Error"]["Message"] == (
        "The StartDate you specify cannot be earlier than 5 minutes ago."
    )
    # A one-time schedule ignores its dates, so a past StartDate is no error there.
    name = unique("once")
    moment = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    create(client, name, f"at({moment})", StartDate=now - timedelta(days=1))
    client.delete_schedule(Name=name)


def test_lambda_and_scheduler_share_the_port(server: Server, client: Any) -> None:
    assert "Functions" in server.client().list_functions()
    assert "Schedules" in client.list_schedules()
