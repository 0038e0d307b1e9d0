"""EventBridge Scheduler's schedule expressions: parsing and the next time each one fires.

Three kinds, as AWS documents them ("Schedule types in EventBridge Scheduler"):

- ``rate(value unit)``: every ``value`` minutes, hours or days of *elapsed* time from the schedule's
  start (a day is 24 hours even across a daylight-saving change, as AWS says).
- ``cron(minutes hours day-of-month month day-of-week year)``: AWS's six-field dialect, evaluated on the
  wall clock of the schedule's time zone. Wildcards ``, - * /`` everywhere; ``?`` in one of the two day
  fields (exactly one of them must be ``?``); ``L`` (last day of the month; ``6L`` = the month's last
  Friday), ``W`` (``15W`` = the weekday nearest the 15th, within the month; ``LW`` = the month's last
  weekday), ``#`` (``3#2`` = the second Tuesday); month and weekday names (``JAN``, ``MON``); days of the
  week 1-7 = SUN-SAT; years 1970-2199.
- ``at(yyyy-mm-ddThh:mm:ss)``: once, at that wall-clock time of the schedule's time zone.

Daylight saving time (AWS: "When the time shifts forward in Spring, your schedule invocation gets
skipped if the cron expression falls on a non-existent date and time. When the time shifts back in the
Fall, your schedule runs only once"): a wall-clock time inside a gap is skipped; one inside a repeated
hour fires at its first occurrence only.

Why hand-written: croniter reads Unix cron (Sunday = 0, no year field, no ``W``), and the AWS-specific
parsers on PyPI (pyawscron, aws-croniter) evaluate in UTC only, so neither gives the wall-clock and DST
rules above; the dialect itself is small. Everything here is pure: no clock, no I/O.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lambdad.errors import ValidationException

MONTH_NAMES = {
    "JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
    "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12,
}  # fmt: skip
DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
YEARS = (1970, 2199)
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_CRON = re.compile(r"cron\((.*)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class InvalidScheduleExpression(ValueError):
    """An expression (or time zone) AWS would refuse; the message is the API's answer."""


@dataclass(frozen=True)
class Rate:
    """``rate(value unit)``."""

    value: int
    unit: str  # minute | hour | day (singular)

    @property
    def minutes(self) -> int:
        """The period in minutes."""
        return self.value * _UNIT_SECONDS[self.unit] // 60


@dataclass(frozen=True)
class At:
    """``at(...)``: one wall-clock moment (naive; the schedule's zone gives it meaning)."""

    moment: datetime


@dataclass(frozen=True)
class DaySpec:
    """What the day-of-month and day-of-week fields select: a test on one date."""

    days_of_month: frozenset[int] | None = None  # None: the field is ?
    last_day_of_month: bool = False  # L (with an offset of 0 only)
    nearest_weekday: int | None = None  # nW
    last_weekday_of_month: bool = False  # LW
    days_of_week: frozenset[int] | None = None  # 1-7 = SUN-SAT; None: the field is ?
    last_of_week_in_month: int | None = None  # 6L
    nth_of_week_in_month: tuple[int, int] | None = None  # (weekday, n) from 3#2

    def matches(self, day: date) -> bool:
        """Whether ``day`` is selected."""
        last = calendar.monthrange(day.year, day.month)[1]
        weekday = (day.isoweekday() % 7) + 1  # Monday 1 -> 2, Sunday 7 -> 1
        if self.last_day_of_month and day.day == last:
            return True
        if self.days_of_month is not None and day.day in self.days_of_month:
            return True
        if self.nearest_weekday is not None and day.day == _nearest_weekday(day, self.nearest_weekday):
            return True
        if self.last_weekday_of_month and day.day == _nearest_weekday(day, last):
            return True
        if self.days_of_week is not None and weekday in self.days_of_week:
            return True
        if weekday == self.last_of_week_in_month and day.day + 7 > last:
            return True
        if self.nth_of_week_in_month is not None:
            wanted, n = self.nth_of_week_in_month
            if weekday == wanted and (day.day - 1) // 7 + 1 == n:
                return True
        return False


def _nearest_weekday(day: date, target: int) -> int:
    """The day of ``day``'s month that is the weekday nearest ``target`` without leaving the month."""
    last = calendar.monthrange(day.year, day.month)[1]
    target = min(target, last)
    weekday = date(day.year, day.month, target).weekday()  # Monday 0 ... Sunday 6
    if weekday == 5:  # Saturday: the Friday before, or the Monday after on the 1st
        return target - 1 if target > 1 else target + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before on the last day
        return target + 1 if target < last else target - 2
    return target


@dataclass(frozen=True)
class Cron:
    """``cron(...)``, each field expanded to the values it selects."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: DaySpec
    months: frozenset[int]
    years: frozenset[int]


Expression = Rate | Cron | At


@cache
def parse(text: str) -> Expression:
    """The expression ``text`` names, or InvalidScheduleExpression (parsed once per text)."""
    stripped = text.strip()
    if match := _RATE.fullmatch(stripped):
        value, unit = int(match.group(1)), match.group(2).rstrip("s")
        if value < 1:
            raise InvalidScheduleExpression(f"Invalid Schedule Expression {text}.")
        # AWS's wording: "rate(1 minute)" but "rate(5 minutes)".
        if (value == 1) != (match.group(2) == unit):
            raise InvalidScheduleExpression(f"Invalid Schedule Expression {text}.")
        return Rate(value, unit)
    if match := _AT.fullmatch(stripped):
        try:
            return At(datetime.fromisoformat(match.group(1)))
        except ValueError:
            raise InvalidScheduleExpression(f"Invalid Schedule Expression {text}.") from None
    if match := _CRON.fullmatch(stripped):
        try:
            return _parse_cron(match.group(1))
        except ValueError:
            raise InvalidScheduleExpression(f"Invalid Schedule Expression {text}.") from None
    raise InvalidScheduleExpression(f"Invalid Schedule Expression {text}.")


def time_zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (UTC when None), or InvalidScheduleExpression."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidScheduleExpression(f"Invalid Time Zone {name}.") from None


def _parse_cron(body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ValueError("six fields")
    minutes, hours, day_of_month, month, day_of_week, year = (field.upper() for field in fields)
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError("exactly one day field must be ?")
    return Cron(
        minutes=_values(minutes, 0, 59),
        hours=_values(hours, 0, 23),
        days=_day_spec(day_of_month, day_of_week),
        months=_values(month, 1, 12, MONTH_NAMES),
        years=_values(year, *YEARS),
    )


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """The values a field of ``, - * /`` selects within [low, high]."""
    selected: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1 or (step_text and not step_text.isdigit()):
            raise ValueError(part)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = _number(start, names), _number(end, names)
        else:
            first = _number(span, names)
            last = high if step_text else first
        if not (low <= first <= high and low <= last <= high) or first > last:
            raise ValueError(part)
        selected.update(range(first, last + 1, step))
    return frozenset(selected)


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text in names:
        return names[text]
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def _day_spec(day_of_month: str, day_of_week: str) -> DaySpec:
    if day_of_week == "?":
        if day_of_month == "L":
            return DaySpec(last_day_of_month=True)
        if day_of_month == "LW":
            return DaySpec(last_weekday_of_month=True)
        if day_of_month.endswith("W"):
            day = int(day_of_month[:-1]) if day_of_month[:-1].isdigit() else 0
            if not 1 <= day <= 31:
                raise ValueError(day_of_month)
            return DaySpec(nearest_weekday=day)
        return DaySpec(days_of_month=_values(day_of_month, 1, 31))
    if day_of_week == "L":
        return DaySpec(days_of_week=frozenset({7}))  # the last day of the week: Saturday
    if day_of_week.endswith("L"):
        return DaySpec(last_of_week_in_month=_weekday(day_of_week[:-1]))
    if "#" in day_of_week:
        weekday, _, n = day_of_week.partition("#")
        if not n.isdigit() or not 1 <= int(n) <= 5:
            raise ValueError(day_of_week)
        return DaySpec(nth_of_week_in_month=(_weekday(weekday), int(n)))
    return DaySpec(days_of_week=_values(day_of_week, 1, 7, DAY_NAMES))


def _weekday(text: str) -> int:
    value = _number(text, DAY_NAMES)
    if not 1 <= value <= 7:
        raise ValueError(text)
    return value


# --- when --------------------------------------------------------------------------------------------


def next_fire(
    expression: Expression,
    after: datetime,
    zone: ZoneInfo,
    anchor: datetime,
    minute_seconds: float = 60.0,
) -> datetime | None:
    """The first time strictly after ``after`` (aware) at which ``expression`` fires, in UTC; None when
    it never fires again.

    ``anchor`` is where a rate's intervals are counted from (the schedule's StartDate, or when the
    schedule was created). ``minute_seconds`` is the length of a rate's minute (60 on AWS; shorter only
    for tests, through a lambdad setting).
    """
    after = after.astimezone(UTC)
    if isinstance(expression, Rate):
        period = timedelta(seconds=expression.minutes * minute_seconds)
        anchor = anchor.astimezone(UTC)
        if after < anchor:
            return anchor
        steps = (after - anchor) // period + 1
        return anchor + steps * period
    if isinstance(expression, At):
        moment = _resolve(expression.moment, zone)
        return moment if moment is not None and moment > after else None
    return _next_cron(expression, after, zone)


def _resolve(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """A wall-clock time of ``zone`` in UTC: its first occurrence in a repeated hour, None in a gap."""
    local = wall.replace(tzinfo=zone, fold=0)
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != wall:
        return None  # skipped by a shift forward
    return moment


def _next_cron(cron: Cron, after: datetime, zone: ZoneInfo) -> datetime | None:
    # Start from the wall-clock day of ``after`` minus one: a repeated hour can put the UTC moment we
    # want on the previous local date's clock.
    day = (after.astimezone(zone) - timedelta(days=1)).date()
    hours, minutes = sorted(cron.hours), sorted(cron.minutes)
    last_year = max(cron.years)
    while day.year <= last_year:
        if day.year not in cron.years:
            day = date(day.year + 1, 1, 1)
            continue
        if day.month not in cron.months:
            day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
            continue
        if cron.days.matches(day):
            for hour in hours:
                for minute in minutes:
                    moment = _resolve(datetime(day.year, day.month, day.day, hour, minute), zone)
                    if moment is not None and moment > after:
                        return moment
        day += timedelta(days=1)
    return None


def check(text: str, zone_name: str | None) -> None:
    """Refuse an expression or zone AWS would refuse, with its ValidationException."""
    try:
        parse(text)
        time_zone(zone_name)
    except InvalidScheduleExpression as error:
        raise ValidationException(str(error)) from None
