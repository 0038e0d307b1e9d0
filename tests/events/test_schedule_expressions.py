"""Schedule expressions: AWS's documented examples, its day wildcards, time zones and DST transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lambdad.errors import ValidationException
from lambdad.events.schedule_expressions import (
    At,
    Cron,
    InvalidScheduleExpression,
    Rate,
    check,
    next_fire,
    parse,
    time_zone,
)

UTC_ZONE = ZoneInfo("UTC")
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(expression: str, after: str, count: int = 1, zone: str = "UTC") -> list[str]:
    """The next ``count`` fire times after ``after`` (UTC), as 'YYYY-MM-DDTHH:MM' in UTC."""
    parsed = parse(expression)
    moment = utc(after)
    found = []
    for _ in range(count):
        fired = next_fire(parsed, moment, ZoneInfo(zone), EPOCH)
        assert fired is not None
        found.append(fired.strftime("%Y-%m-%dT%H:%M"))
        moment = fired
    return found


# AWS's documented cron examples (EventBridge Scheduler user guide, "Cron-based schedules").
@pytest.mark.parametrize(
    ("expression", "after", "wanted"),
    [
        # 10:15 AM (UTC) every day
        ("cron(15 10 * * ? *)", "2026-03-01T11:00", ["2026-03-02T10:15", "2026-03-03T10:15"]),
        # 6:00 PM Monday through Friday
        ("cron(0 18 ? * MON-FRI *)", "2026-03-06T19:00", ["2026-03-09T18:00", "2026-03-10T18:00"]),
        # 8:00 AM on the first day of the month
        ("cron(0 8 1 * ? *)", "2026-03-01T09:00", ["2026-04-01T08:00", "2026-05-01T08:00"]),
        # every 10 minutes on weekdays
        ("cron(0/10 * ? * MON-FRI *)", "2026-03-06T23:45", ["2026-03-06T23:50", "2026-03-09T00:00"]),
        # every 5 minutes between 8:00 AM and 5:55 PM weekdays
        ("cron(0/5 8-17 ? * MON-FRI *)", "2026-03-06T17:55", ["2026-03-09T08:00", "2026-03-09T08:05"]),
        # 9:00 AM on the first Monday of each month
        ("cron(0 9 ? * 2#1 *)", "2026-03-01T00:00", ["2026-03-02T09:00", "2026-04-06T09:00"]),
    ],
)
def test_documented_cron_examples(expression: str, after: str, wanted: list[str]) -> None:
    assert fires(expression, after, len(wanted)) == wanted


@pytest.mark.parametrize(
    ("expression", "after", "wanted"),
    [
        ("cron(0 12 L * ? *)", "2026-02-01T00:00", ["2026-02-28T12:00", "2026-03-31T12:00"]),
        ("cron(0 12 L * ? 2028)", "2028-02-01T00:00", ["2028-02-29T12:00"]),  # leap year
        # the last Friday of the month
        ("cron(0 0 ? * 6L *)", "2026-03-01T00:00", ["2026-03-27T00:00", "2026-04-24T00:00"]),
        # 15W: the 15th of Aug 2026 is a Saturday -> Friday 14th; Nov 15 2026 is a Sunday -> Monday 16th
        ("cron(0 0 15W 8 ? *)", "2026-01-01T00:00", ["2026-08-14T00:00"]),
        ("cron(0 0 15W 11 ? *)", "2026-01-01T00:00", ["2026-11-16T00:00"]),
        # 1W on a Saturday (Aug 1 2026) does not leave the month: Monday the 3rd
        ("cron(0 0 1W 8 ? *)", "2026-01-01T00:00", ["2026-08-03T00:00"]),
        # LW: the last weekday (May 31 2026 is a Sunday -> Friday 29th)
        ("cron(0 0 LW 5 ? *)", "2026-01-01T00:00", ["2026-05-29T00:00"]),
        # 3#2: the second Tuesday
        ("cron(0 0 ? * 3#2 *)", "2026-03-01T00:00", ["2026-03-10T00:00", "2026-04-14T00:00"]),
        # L alone in day-of-week: Saturday
        ("cron(0 0 ? * L *)", "2026-03-01T00:00", ["2026-03-07T00:00"]),
        # names, lists, ranges and steps
        ("cron(0 0 1 JAN,JUL ? *)", "2026-02-01T00:00", ["2026-07-01T00:00", "2027-01-01T00:00"]),
        ("cron(0 0 ? * SUN *)", "2026-03-01T00:00", ["2026-03-08T00:00"]),
        ("cron(0 0 ? * 1 *)", "2026-03-01T00:00", ["2026-03-08T00:00"]),  # 1 = SUN
        ("cron(0 0 1-31/10 * ? *)", "2026-03-01T00:00", ["2026-03-11T00:00", "2026-03-21T00:00"]),
        ("cron(*/20 3 * * ? *)", "2026-03-01T00:00", ["2026-03-01T03:00", "2026-03-01T03:20"]),
        # the year field
        ("cron(0 0 1 1 ? 2030-2031)", "2026-01-01T00:00", ["2030-01-01T00:00", "2031-01-01T00:00"]),
        ("cron(0 0 1 1 ? */100)", "2026-01-01T00:00", ["2070-01-01T00:00"]),
    ],
)
def test_day_wildcards_names_and_years(expression: str, after: str, wanted: list[str]) -> None:
    assert fires(expression, after, len(wanted)) == wanted


def test_a_cron_past_its_last_year_never_fires_again() -> None:
    assert next_fire(parse("cron(0 0 1 1 ? 2025)"), utc("2026-01-01T00:00"), UTC_ZONE, EPOCH) is None


def test_fire_times_are_strictly_after() -> None:
    assert fires("cron(15 10 * * ? *)", "2026-03-02T10:15") == ["2026-03-03T10:15"]


@pytest.mark.parametrize(
    "text",
    [
        "cron(0 0 * * * *)",  # neither day field is ?
        "cron(0 0 ? * ? *)",  # both are
        "cron(0 0 * * ?)",  # five fields
        "cron(60 0 * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 0 32 * ? *)",
        "cron(0 0 * 13 ? *)",
        "cron(0 0 ? * 8 *)",
        "cron(0 0 * * ? 1969)",
        "cron(0 0 ? * 3#6 *)",
        "cron(0 0 ? * FOO *)",
        "cron(0/0 0 * * ? *)",
        "cron(5-1 0 * * ? *)",
        "rate(0 minutes)",
        "rate(1 minutes)",  # AWS: singular with 1
        "rate(5 minute)",
        "rate(5 weeks)",
        "rate(five minutes)",
        "at(2026-02-30T00:00:00)",
        "at(2026-02-01 00:00:00)",
        "every 5 minutes",
        "",
    ],
)
def test_invalid_expressions_are_refused_with_aws_wording(text: str) -> None:
    with pytest.raises(InvalidScheduleExpression) as refused:
        parse(text)
    assert str(refused.value) == f"Invalid Schedule Expression {text}."


def test_parsed_shapes() -> None:
    assert parse("rate(1 minute)") == Rate(1, "minute")
    assert parse("rate(2 hours)").minutes == 120  # type: ignore[union-attr]
    assert parse("rate(3 days)").minutes == 3 * 1440  # type: ignore[union-attr]
    assert parse("at(2026-05-01T10:30:00)") == At(datetime(2026, 5, 1, 10, 30))
    assert isinstance(parse("cron(0 0 * * ? *)"), Cron)


def test_rates_count_from_the_anchor() -> None:
    anchor = utc("2026-03-01T10:00:30")
    rate = parse("rate(5 minutes)")
    assert next_fire(rate, anchor - timedelta(hours=1), UTC_ZONE, anchor) == anchor
    assert next_fire(rate, anchor, UTC_ZONE, anchor) == anchor + timedelta(minutes=5)
    assert next_fire(rate, anchor + timedelta(minutes=7), UTC_ZONE, anchor) == anchor + timedelta(minutes=10)


def test_a_shorter_minute_speeds_rates_up_for_tests() -> None:
    anchor = utc("2026-03-01T10:00:00")
    fired = next_fire(parse("rate(2 minutes)"), anchor, UTC_ZONE, anchor, minute_seconds=0.5)
    assert fired == anchor + timedelta(seconds=1)


def test_rate_days_are_24_hours_across_dst() -> None:
    # New York springs forward on 2026-03-08: a daily rate keeps 24 h of elapsed time.
    anchor = utc("2026-03-07T14:00")  # 09:00 EST
    fired = next_fire(parse("rate(1 day)"), anchor, ZoneInfo("America/New_York"), anchor)
    assert fired == utc("2026-03-08T14:00")  # 10:00 EDT on the wall clock


def test_cron_follows_the_wall_clock_of_its_zone() -> None:
    # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
    assert fires("cron(0 9 * * ? *)", "2026-03-06T15:00", 3, "America/New_York") == [
        "2026-03-07T14:00",
        "2026-03-08T13:00",
        "2026-03-09T13:00",
    ]


def test_a_time_skipped_by_spring_forward_does_not_fire() -> None:
    # 02:30 does not exist in New York on 2026-03-08.
    assert fires("cron(30 2 * * ? *)", "2026-03-07T08:00", 2, "America/New_York") == [
        "2026-03-09T06:30",
        "2026-03-10T06:30",
    ]


def test_a_time_repeated_by_fall_back_fires_once() -> None:
    # 01:30 happens twice in New York on 2026-11-01 (EDT 05:30 UTC, then EST 06:30 UTC).
    assert fires("cron(30 1 * * ? *)", "2026-10-31T12:00", 2, "America/New_York") == [
        "2026-11-01T05:30",
        "2026-11-02T06:30",
    ]
    assert fires("cron(30 * * * ? *)", "2026-11-01T04:00", 4, "America/New_York") == [
        "2026-11-01T04:30",  # 00:30 EDT
        "2026-11-01T05:30",  # 01:30 EDT (the repeated 01:30 EST is not fired again)
        "2026-11-01T07:30",  # 02:30 EST
        "2026-11-01T08:30",
    ]


def test_southern_hemisphere_and_half_hour_zones() -> None:
    # Sydney falls back on 2026-04-05 (AEDT +11 -> AEST +10); India is +05:30 all year.
    assert fires("cron(0 12 * * ? *)", "2026-04-03T12:00", 3, "Australia/Sydney") == [
        "2026-04-04T01:00",
        "2026-04-05T02:00",
        "2026-04-06T02:00",
    ]
    assert fires("cron(0 9 * * ? *)", "2026-04-03T12:00", 1, "Asia/Kolkata") == ["2026-04-04T03:30"]


def test_at_fires_once_on_its_zone_wall_clock() -> None:
    at = parse("at(2026-07-01T09:00:00)")
    zone = ZoneInfo("Europe/Paris")  # +02:00 in summer
    assert next_fire(at, utc("2026-06-01T00:00"), zone, EPOCH) == utc("2026-07-01T07:00")
    assert next_fire(at, utc("2026-07-01T07:00"), zone, EPOCH) is None


def test_at_inside_a_dst_gap_never_fires() -> None:
    at = parse("at(2026-03-08T02:30:00)")
    assert next_fire(at, utc("2026-03-01T00:00"), ZoneInfo("America/New_York"), EPOCH) is None


def test_time_zones_are_iana_names() -> None:
    assert time_zone(None) == ZoneInfo("UTC")
    assert time_zone("America/Los_Angeles") == ZoneInfo("America/Los_Angeles")
    with pytest.raises(InvalidScheduleExpression):
        time_zone("Mars/Olympus")


def test_check_answers_the_apis_validation_exception() -> None:
    check("rate(5 minutes)", "Europe/Berlin")
    with pytest.raises(ValidationException) as refused:
        check("rate(5 fortnights)", None)
    assert refused.value.message == "Invalid Schedule Expression rate(5 fortnights)."
    with pytest.raises(ValidationException) as refused:
        check("rate(5 minutes)", "Nowhere/Special")
    assert refused.value.message == "Invalid Time Zone Nowhere/Special."
