"""When EventBridge schedule expressions fire, for the local stack's scheduler.

``rate(5 minutes)``, ``cron(min hour dom month dow year)`` with ``?``, ``L``, ``W`` and ``#``
(day of week 1-7 = SUN-SAT), and ``at(yyyy-mm-ddThh:mm:ss)``, evaluated in the schedule's
``ScheduleExpressionTimezone`` with the Scheduler's daylight-saving rules (a skipped local time
is not invoked, a repeated one once). Cron arithmetic is croniter's: an EventBridge cron becomes
croniter's seven fields (seconds 0, years up to croniter's 2099). A rate schedule starts at its
StartDate, or at once.

Not imported from ``dagtrigger.sources.schedules``: a fake must not share the code it tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_DAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class ScheduleExpressionError(ValueError):
    """A schedule expression the services would refuse; the message says which part."""


@dataclass(frozen=True)
class RateExpression:
    interval: timedelta


@dataclass(frozen=True)
class CronExpression:
    croniter_fields: str


@dataclass(frozen=True)
class AtExpression:
    local_time: datetime


Expression = RateExpression | CronExpression | AtExpression


def parse_expression(expression: str) -> Expression:
    """Parse an EventBridge schedule expression."""
    text = expression.strip()
    if match := _RATE.match(text):
        return _rate(int(match.group(1)), match.group(2), text)
    if match := _CRON.match(text):
        return _cron(match.group(1), text)
    if match := _AT.match(text):
        return AtExpression(datetime.fromisoformat(match.group(1)))
    raise ScheduleExpressionError(
        f"{expression!r}: expected rate(N unit), cron(6 fields) or at(yyyy-mm-ddThh:mm:ss)"
    )


def next_fire_times(
    expression: str,
    *,
    after: datetime,
    count: int,
    timezone: str = "UTC",
    anchor: datetime | None = None,
) -> list[datetime]:
    """The next `count` fire times strictly after `after`, as aware UTC datetimes.

    `anchor` is when a rate schedule starts counting (its StartDate, or its creation).
    """
    zone = _zone(timezone)
    parsed = parse_expression(expression)
    after = after.astimezone(UTC)
    if isinstance(parsed, AtExpression):
        at = parsed.local_time.replace(tzinfo=zone).astimezone(UTC)
        return [at] if at > after and count > 0 else []
    if isinstance(parsed, RateExpression):
        start = (anchor or after).astimezone(UTC)
        steps = max(0, int((after - start) / parsed.interval) + 1) if after >= start else 0
        return [start + parsed.interval * (steps + index) for index in range(count)]
    return _cron_times(parsed, after.astimezone(zone), count)


def _rate(value: int, unit: str, text: str) -> RateExpression:
    singular = unit.rstrip("s")
    if value < 1:
        raise ScheduleExpressionError(f"{text!r}: the value must be a positive integer")
    if (value == 1) != (unit == singular):
        raise ScheduleExpressionError(
            f"{text!r}: use the singular unit for 1 and the plural otherwise (rate(1 hour))"
        )
    return RateExpression(timedelta(seconds=value * _UNIT_SECONDS[singular]))


def _cron(body: str, text: str) -> CronExpression:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"{text!r}: cron needs 6 fields (minutes hours day-of-month month day-of-week year)"
        )
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleExpressionError(
            f"{text!r}: exactly one of day-of-month and day-of-week must be '?'"
        )
    if "LW" in day_of_month.upper():
        raise ScheduleExpressionError(f"{text!r}: 'LW' is not supported by the local stack")
    seconds = "0"
    converted = " ".join(
        [
            minutes,
            hours,
            "*" if day_of_month == "?" else day_of_month,
            month,
            "*" if day_of_week == "?" else _day_of_week(day_of_week, text),
            seconds,
            year,
        ]
    )
    try:
        croniter(converted)
    except (ValueError, KeyError) as error:
        raise ScheduleExpressionError(f"{text!r}: {error}") from error
    return CronExpression(converted)


def _day_of_week(field_text: str, text: str) -> str:
    """EventBridge numbers days 1-7 from Sunday; croniter 0-6. Names and L/# are translated."""

    def number(token: str) -> str:
        if token.upper() in _DAY_NAMES or token in ("*", "?"):
            return token
        if not token.isdigit() or not 1 <= int(token) <= 7:
            raise ScheduleExpressionError(f"{text!r}: day-of-week {token!r} is not 1-7 or SUN-SAT")
        return str(int(token) - 1)

    def convert(part: str) -> str:
        if part.upper().endswith("L") and len(part) > 1:
            return "L" + number(part[:-1])
        if "#" in part:
            day, nth = part.split("#", 1)
            return f"{number(day)}#{nth}"
        step = ""
        if "/" in part:
            part, increment = part.split("/", 1)
            step = f"/{increment}"
        return "-".join(number(token) for token in part.split("-")) + step

    return ",".join(convert(part) for part in field_text.split(","))


def _cron_times(parsed: CronExpression, after_local: datetime, count: int) -> list[datetime]:
    """Cron times on the local wall clock, with EventBridge Scheduler's daylight-saving rules.

    The iteration runs on naive wall-clock times, so each local time comes up once: a time the
    clocks skip (spring) is not invoked, a time the clocks repeat (autumn) is invoked once, at
    its first occurrence.
    """
    zone = after_local.tzinfo
    assert isinstance(zone, ZoneInfo)
    iterator = croniter(parsed.croniter_fields, after_local.replace(tzinfo=None))
    times: list[datetime] = []
    while len(times) < count:
        try:
            wall: datetime = iterator.get_next(datetime)
        except CroniterBadDateError:  # no later time: its last year has passed
            break
        moment = wall.replace(tzinfo=zone, fold=0)
        if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
            continue  # skipped by the clocks going forward
        times.append(moment.astimezone(UTC))
    return times


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleExpressionError(f"unknown time zone {name!r}") from None
