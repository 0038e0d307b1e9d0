"""EventBridge Scheduler's control plane: schedule groups, schedules and group tags.

AWS's rules: the ``default`` group always exists and cannot be deleted; deleting a group deletes its
schedules; a schedule is named within its group; CreateSchedule with a ClientToken already used for the
same schedule answers the same ARN (idempotent retry) instead of a conflict. Times are UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdad.errors import (
    ConflictException,
    InvalidParameterValueException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
    ValidationException,
)
from lambdad.models import Scope, utcnow
from lambdad.services.markers import decode_marker, encode_marker
from lambdad.store import Database
from lambdad.store import schedules as records
from lambdad.store import tags as tag_records
from lambdad.store.schedules import DEFAULT_GROUP, GroupRecord, ScheduleRecord

# AWS's default quotas (Service Quotas for EventBridge Scheduler, per account and region).
MAX_SCHEDULES = 1_000_000
MAX_GROUPS = 500
DEFAULT_RETRY_POLICY = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
# AWS refuses a StartDate further in the past than this.
START_DATE_TOLERANCE = timedelta(minutes=5)
# The members of CreateSchedule/UpdateSchedule kept in a schedule's config.
CONFIG_MEMBERS = (
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "StartDate",
    "EndDate",
    "Description",
    "KmsKeyArn",
    "Target",
    "FlexibleTimeWindow",
    "ActionAfterCompletion",
)


def group_arn(scope: Scope, region: str, name: str) -> str:
    """A schedule group's ARN."""
    return f"arn:aws:scheduler:{region}:{scope.account}:schedule-group/{name}"


def schedule_arn(scope: Scope, region: str, group: str, name: str) -> str:
    """A schedule's ARN."""
    return f"arn:aws:scheduler:{region}:{scope.account}:schedule/{group}/{name}"


class ScheduleService:
    """Schedules and schedule groups, per region.

    ``check_expression`` validates ScheduleExpression with its zone (``events.schedule_expressions``
    lives above this layer, so the composition root passes it in); it raises ValidationException.
    """

    def __init__(
        self,
        database: Database,
        check_expression: Callable[[str, str | None], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._check_expression = check_expression
        # What "now" is when a schedule is created or updated (its rate anchor); tests pass their own.
        self._clock = clock

    # --- groups ----------------------------------------------------------------------------------------

    def create_group(self, scope: Scope, name: str, tags: list[dict[str, str]] | None) -> str:
        """CreateScheduleGroup; the new group's ARN."""
        now = self._clock()
        with self._database.write() as connection:
            records.ensure_default_group(connection, scope, now)
            if records.get_group(connection, scope, name) is not None:
                raise ConflictException(f"Schedule group {name} already exists.")
            if len(records.list_groups(connection, scope)) >= MAX_GROUPS:
                raise ServiceQuotaExceededException("Maximum number of schedule groups reached.")
            records.insert_group(connection, GroupRecord(scope, name, now, now))
            arn = group_arn(scope, scope.region, name)
            tag_records.put_tags(connection, arn, {tag["Key"]: tag["Value"] for tag in tags or []})
        return arn

    def get_group(self, scope: Scope, name: str) -> dict[str, Any]:
        """GetScheduleGroup's members."""
        with self._database.write() as connection:
            records.ensure_default_group(connection, scope, self._clock())
            group = records.get_group(connection, scope, name)
        if group is None:
            raise ResourceNotFoundException(f"Schedule group {name} does not exist.")
        return self._group_view(scope, group)

    def list_groups(
        self, scope: Scope, prefix: str | None, token: str | None, limit: int | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """ListScheduleGroups: one page and the next page's token."""
        with self._database.write() as connection:
            records.ensure_default_group(connection, scope, self._clock())
            groups = records.list_groups(connection, scope, prefix)
        page, next_token = _page([(g.name,) for g in groups], groups, token, limit)
        return [self._group_view(scope, g) for g in page], next_token

    def delete_group(self, scope: Scope, name: str) -> None:
        """DeleteScheduleGroup: the group, its schedules and its tags."""
        if name == DEFAULT_GROUP:
            raise ValidationException("Cannot delete the default schedule group.")
        with self._database.write() as connection:
            if records.get_group(connection, scope, name) is None:
                raise ResourceNotFoundException(f"Schedule group {name} does not exist.")
            records.delete_group(connection, scope, name)
            tag_records.remove_tags(connection, group_arn(scope, scope.region, name))

    def _group_view(self, scope: Scope, group: GroupRecord) -> dict[str, Any]:
        return {
            "Arn": group_arn(group.scope, group.scope.region, group.name),
            "Name": group.name,
            "State": "ACTIVE",
            "CreationDate": group.created_at,
            "LastModificationDate": group.last_modified,
        }

    # --- tags ------------------------------------------------------------------------------------------

    def tags(self, scope: Scope, arn: str) -> list[dict[str, str]]:
        """ListTagsForResource."""
        with self._database.read() as connection:
            self._existing_group_arn(connection, scope, arn)
            return [{"Key": k, "Value": v} for k, v in sorted(tag_records.get_tags(connection, arn).items())]

    def tag(self, scope: Scope, arn: str, tags: list[dict[str, str]]) -> None:
        """TagResource."""
        with self._database.write() as connection:
            self._existing_group_arn(connection, scope, arn)
            tag_records.put_tags(connection, arn, {tag["Key"]: tag["Value"] for tag in tags})

    def untag(self, scope: Scope, arn: str, keys: list[str]) -> None:
        """UntagResource."""
        with self._database.write() as connection:
            self._existing_group_arn(connection, scope, arn)
            tag_records.remove_tags(connection, arn, keys)

    def _existing_group_arn(self, connection: Any, scope: Scope, arn: str) -> None:
        parts = arn.split(":", 5)
        region, account, resource = parts[3], parts[4], parts[5]
        name = resource.partition("/")[2]
        if account != scope.account:
            raise ResourceNotFoundException(f"Schedule group {name} does not exist.")
        if name == DEFAULT_GROUP:
            records.ensure_default_group(connection, Scope(account, region), self._clock())
        if records.get_group(connection, Scope(account, region), name) is None:
            raise ResourceNotFoundException(f"Schedule group {name} does not exist.")

    # --- schedules -------------------------------------------------------------------------------------

    def create(self, scope: Scope, name: str, params: dict[str, Any]) -> str:
        """CreateSchedule; the new schedule's ARN."""
        group = params.get("GroupName") or DEFAULT_GROUP
        config = self._config(params)
        token = params.get("ClientToken")
        now = self._clock()
        with self._database.write() as connection:
            records.ensure_default_group(connection, scope, now)
            if records.get_group(connection, scope, group) is None:
                raise ResourceNotFoundException(f"Schedule group {group} does not exist.")
            existing = records.get_schedule(connection, scope, group, name)
            if existing is not None:
                if token is not None and existing.client_token == token:
                    return schedule_arn(scope, scope.region, group, name)
                raise ConflictException(f"Schedule {name} already exists.")
            if records.count_schedules(connection, scope) >= MAX_SCHEDULES:
                raise ServiceQuotaExceededException("Maximum number of schedules reached.")
            records.insert_schedule(
                connection,
                ScheduleRecord(
                    scope=scope,
                    group_name=group,
                    name=name,
                    state=params.get("State") or "ENABLED",
                    config={**config, "Anchor": now.replace(microsecond=0).isoformat()},
                    created_at=now,
                    last_modified=now,
                    client_token=token,
                ),
            )
        return schedule_arn(scope, scope.region, group, name)

    def update(self, scope: Scope, name: str, params: dict[str, Any]) -> str:
        """UpdateSchedule: every member is replaced (AWS: omitted optional members are reset)."""
        group = params.get("GroupName") or DEFAULT_GROUP
        config = self._config(params)
        now = self._clock()
        with self._database.write() as connection:
            existing = self._existing(connection, scope, group, name)
            records.replace_schedule(
                connection,
                replace(
                    existing,
                    state=params.get("State") or "ENABLED",
                    config={**config, "Anchor": now.replace(microsecond=0).isoformat()},
                    last_modified=now,
                ),
            )
        return schedule_arn(scope, scope.region, group, name)

    def get(self, scope: Scope, name: str, group: str | None) -> dict[str, Any]:
        """GetSchedule's members."""
        with self._database.write() as connection:
            record = self._existing(connection, scope, group or DEFAULT_GROUP, name)
        return schedule_view(scope.account, record)

    def list(self, scope: Scope, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        """ListSchedules: one page of summaries and the next page's token."""
        group = params.get("GroupName")
        with self._database.write() as connection:
            records.ensure_default_group(connection, scope, self._clock())
            if group is not None and records.get_group(connection, scope, group) is None:
                raise ResourceNotFoundException(f"Schedule group {group} does not exist.")
            found = records.list_schedules(
                connection, scope, group, params.get("NamePrefix"), params.get("State")
            )
        page, next_token = _page(
            [(r.group_name, r.name) for r in found], found, params.get("NextToken"), params.get("MaxResults")
        )
        summaries = [
            {
                "Arn": schedule_arn(scope, r.region, r.group_name, r.name),
                "Name": r.name,
                "GroupName": r.group_name,
                "State": r.state,
                "CreationDate": r.created_at,
                "LastModificationDate": r.last_modified,
                "Target": {"Arn": r.config["Target"]["Arn"]},
            }
            for r in page
        ]
        return summaries, next_token

    def delete(self, scope: Scope, name: str, group: str | None) -> None:
        """DeleteSchedule."""
        group = group or DEFAULT_GROUP
        with self._database.write() as connection:
            self._existing(connection, scope, group, name)
            records.delete_schedule(connection, scope, group, name)

    def _existing(self, connection: Any, scope: Scope, group: str, name: str) -> ScheduleRecord:
        records.ensure_default_group(connection, scope, self._clock())
        if records.get_group(connection, scope, group) is None:
            raise ResourceNotFoundException(f"Schedule group {group} does not exist.")
        record = records.get_schedule(connection, scope, group, name)
        if record is None:
            raise ResourceNotFoundException(f"Schedule {name} does not exist.")
        return record

    def _config(self, params: dict[str, Any]) -> dict[str, Any]:
        """The schedule's members as stored, after AWS's checks beyond the model's constraints."""
        if self._check_expression is not None:
            self._check_expression(params["ScheduleExpression"], params.get("ScheduleExpressionTimezone"))
        window = params["FlexibleTimeWindow"]
        if window["Mode"] == "FLEXIBLE" and "MaximumWindowInMinutes" not in window:
            raise ValidationException("MaximumWindowInMinutes must be provided when Mode is FLEXIBLE.")
        if window["Mode"] == "OFF" and "MaximumWindowInMinutes" in window:
            raise ValidationException("MaximumWindowInMinutes must not be provided when Mode is OFF.")
        start, end = params.get("StartDate"), params.get("EndDate")
        one_time = params["ScheduleExpression"].strip().startswith("at(")  # AWS ignores its dates
        if start is not None and not one_time and start < self._clock() - START_DATE_TOLERANCE:
            raise ValidationException("The StartDate you specify cannot be earlier than 5 minutes ago.")
        if start is not None and end is not None and end <= start:
            raise ValidationException("The EndDate you specify must be after the StartDate.")
        if end is not None and end <= self._clock():
            raise ValidationException("The EndDate you specify cannot be earlier than the current time.")
        config = {member: params[member] for member in CONFIG_MEMBERS if params.get(member) is not None}
        for member in ("StartDate", "EndDate"):
            if member in config:
                config[member] = config[member].isoformat()
        target = dict(config["Target"])
        target["RetryPolicy"] = {**DEFAULT_RETRY_POLICY, **target.get("RetryPolicy", {})}
        config["Target"] = target
        config.setdefault("ActionAfterCompletion", "NONE")
        config.setdefault("ScheduleExpressionTimezone", "UTC")
        return config


def schedule_view(account: str, record: ScheduleRecord) -> dict[str, Any]:
    """A schedule as GetSchedule answers it."""
    config = {k: v for k, v in record.config.items() if k in CONFIG_MEMBERS}
    for member in ("StartDate", "EndDate"):
        if member in config:
            config[member] = datetime.fromisoformat(config[member])
    return {
        "Arn": f"arn:aws:scheduler:{record.region}:{account}:schedule/{record.group_name}/{record.name}",
        "GroupName": record.group_name,
        "Name": record.name,
        "State": record.state,
        "CreationDate": record.created_at,
        "LastModificationDate": record.last_modified,
        **config,
    }


def parse_timestamp(value: Any, member: str) -> datetime:
    """A request's timestamp member (botocore sends epoch seconds) as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationException(f"Value at '{member[:1].lower() + member[1:]}' is not a valid timestamp.")
    return datetime.fromtimestamp(value, UTC)


def _page(
    keys: list[tuple[str, ...]], items: list[Any], token: str | None, limit: int | None
) -> tuple[list[Any], str | None]:
    """One page of ``items`` (sorted by ``keys``) after ``token``, and the token of the next."""
    start = 0
    if token:
        try:
            after = decode_marker(token, len(keys[0]) if keys else 1)
        except InvalidParameterValueException:
            raise ValidationException("Invalid NextToken.") from None
        start = next((i for i, key in enumerate(keys) if key > after), len(keys))
    size = limit or 100
    page = items[start : start + size]
    more = start + size < len(items)
    return page, encode_marker(*keys[start + size - 1]) if more else None
