"""EventBridge Scheduler schedule expressions, checked before a schedule is created.

Three forms, as the Scheduler defines them:

``rate(N unit)``
    N a positive integer; unit ``minute``/``hour``/``day`` when N is 1, else the plural.
``cron(minutes hours day-of-month month day-of-week year)``
    Six fields. Values: minutes 0-59, hours 0-23, day-of-month 1-31, month 1-12 or JAN-DEC,
    day-of-week 1-7 or SUN-SAT (1 is Sunday), year 1970-2199. Wildcards: ``,`` ``-`` ``*`` ``/``
    everywhere; ``?`` ``L`` ``W`` in day-of-month; ``?`` ``L`` ``#`` in day-of-week. Exactly one
    of day-of-month and day-of-week is ``?``. A ``#`` stands alone in its field.
``at(yyyy-mm-ddThh:mm:ss)``
    One time, read in the schedule's time zone.

Every error names the expression, the field (by number and name) and the part at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

_RATE = re.compile(r"^rate\((?P<body>.*)\)$", re.DOTALL)
_RATE_BODY = re.compile(r"^(?P<value>\d+) (?P<unit>minutes?|hours?|days?)$")
_CRON = re.compile(r"^cron\((?P<body>.*)\)$", re.DOTALL)
_AT = re.compile(r"^at\((?P<body>.*)\)$", re.DOTALL)
_AT_BODY = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_NUMBER = re.compile(r"^\d+$")

MONTH_NAMES: Final = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
DAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class ScheduleExpressionError(ValueError):
    """An expression EventBridge Scheduler would refuse; the message says which part and why."""


@dataclass(frozen=True)
class ScheduleExpression:
    """A valid expression and its kind (``rate``, ``cron`` or ``at``)."""

    text: str
    kind: Literal["rate", "cron", "at"]

    @property
    def is_one_time(self) -> bool:
        return self.kind == "at"


@dataclass(frozen=True)
class _Field:
    position: int
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # symbolic values, the first standing for ``low``
    any_allowed: bool = False  # "?"
    last_allowed: bool = False  # "L"
    weekday_allowed: bool = False  # "W"
    nth_allowed: bool = False  # "#"

    @property
    def label(self) -> str:
        return f"field {self.position} ({self.name})"

    @property
    def value_range(self) -> str:
        text = f"{self.low}-{self.high}"
        return f"{text} or {self.names[0]}-{self.names[-1]}" if self.names else text


_MINUTES = _Field(1, "minutes", 0, 59)
_HOURS = _Field(2, "hours", 0, 23)
_DAY_OF_MONTH = _Field(
    3, "day-of-month", 1, 31, any_allowed=True, last_allowed=True, weekday_allowed=True
)
_MONTH = _Field(4, "month", 1, 12, names=MONTH_NAMES)
_DAY_OF_WEEK = _Field(
    5, "day-of-week", 1, 7, names=DAY_NAMES, any_allowed=True, last_allowed=True, nth_allowed=True
)
_YEAR = _Field(6, "year", 1970, 2199)
_CRON_FIELDS: Final = (_MINUTES, _HOURS, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK, _YEAR)
_MAX_NTH = 5  # a weekday occurs at most five times in a month


def parse_schedule_expression(expression: str) -> ScheduleExpression:
    """Check ``expression`` and say its kind; ``ScheduleExpressionError`` says what is wrong."""
    if not isinstance(expression, str) or not expression:
        raise ScheduleExpressionError("the schedule expression is empty")
    if expression != expression.strip():
        raise ScheduleExpressionError(
            f"{expression!r}: remove the spaces before or after the expression"
        )
    if len(expression) > 256:
        raise ScheduleExpressionError(
            f"the schedule expression is {len(expression)} characters long; the limit is 256"
        )
    if match := _RATE.match(expression):
        _check_rate(expression, match.group("body"))
        return ScheduleExpression(expression, "rate")
    if match := _CRON.match(expression):
        _check_cron(expression, match.group("body"))
        return ScheduleExpression(expression, "cron")
    if match := _AT.match(expression):
        _check_at(expression, match.group("body"))
        return ScheduleExpression(expression, "at")
    raise ScheduleExpressionError(
        f"{expression!r}: expected rate(N unit), cron(minutes hours day-of-month month "
        "day-of-week year) or at(yyyy-mm-ddThh:mm:ss)"
    )


# ------------------------------------------------------------------------------------- rate


def _check_rate(expression: str, body: str) -> None:
    match = _RATE_BODY.match(body)
    if match is None:
        raise ScheduleExpressionError(
            f"{expression}: expected rate(N unit) with N a positive whole number, one space, "
            "and unit minute(s), hour(s) or day(s), as in rate(5 minutes)"
        )
    value, unit = int(match.group("value")), match.group("unit")
    if value == 0:
        raise ScheduleExpressionError(f"{expression}: the rate must be at least 1")
    singular = unit.rstrip("s")
    if value == 1 and unit != singular:
        raise ScheduleExpressionError(f"{expression}: write rate(1 {singular}) (singular for 1)")
    if value > 1 and unit == singular:
        raise ScheduleExpressionError(
            f"{expression}: write rate({value} {singular}s) (plural for more than 1)"
        )


# --------------------------------------------------------------------------------------- at


def _check_at(expression: str, body: str) -> None:
    if not _AT_BODY.match(body):
        raise ScheduleExpressionError(
            f"{expression}: expected at(yyyy-mm-ddThh:mm:ss), as in at(2026-11-21T02:00:00), "
            "with no time zone or fraction (the time zone is the schedule's)"
        )
    try:
        datetime.fromisoformat(body)
    except ValueError as exc:
        raise ScheduleExpressionError(f"{expression}: {body} is not a real time: {exc}") from None


# ------------------------------------------------------------------------------------- cron


def _check_cron(expression: str, body: str) -> None:
    parts = body.split()
    if len(parts) != len(_CRON_FIELDS):
        raise ScheduleExpressionError(
            f"{expression}: a cron expression has 6 fields (minutes hours day-of-month month "
            f"day-of-week year), this one has {len(parts)}"
        )
    for spec, text in zip(_CRON_FIELDS, parts, strict=True):
        _check_field(expression, spec, text)
    day_of_month, day_of_week = parts[2], parts[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleExpressionError(
            f"{expression}: exactly one of day-of-month (field 3, {day_of_month!r}) and "
            f"day-of-week (field 5, {day_of_week!r}) must be '?', as in cron(0 2 * * ? *) "
            "or cron(0 2 ? * MON-FRI *)"
        )


def _check_field(expression: str, spec: _Field, text: str) -> None:
    where = f"{expression}: {spec.label} {text!r}"
    items = text.split(",")
    if spec.any_allowed and "?" in items and text != "?":
        raise ScheduleExpressionError(f"{where}: '?' must stand alone in its field")
    if len(items) > 1:
        residue = _without_names(spec, text)
        for char in "#LW":
            if char in residue:
                raise ScheduleExpressionError(
                    f"{where}: a '{char}' expression must stand alone in its field (no ',')"
                )
    for item in items:
        _check_item(where, spec, item)


def _check_item(where: str, spec: _Field, item: str) -> None:
    if item == "":
        raise ScheduleExpressionError(f"{where}: empty value between commas")
    if item == "?":
        if not spec.any_allowed:
            raise ScheduleExpressionError(
                f"{where}: '?' is only allowed in day-of-month and day-of-week"
            )
        return
    if spec.last_allowed and _is_last(spec, item, where):
        return
    if spec.weekday_allowed and item.endswith("W"):
        _check_weekday_item(where, spec, item)
        return
    if spec.nth_allowed and "#" in item:
        _check_nth_item(where, spec, item)
        return
    _check_special_characters(where, spec, item)
    base, slash, step = item.partition("/")
    if slash:
        _check_step(where, spec, step)
    if base == "*":
        return
    start, dash, end = base.partition("-")
    low = _value(where, spec, start)
    if dash:
        high = _value(where, spec, end)
        if low > high:
            raise ScheduleExpressionError(
                f"{where}: the range {base} starts after it ends ({low} > {high})"
            )


def _is_last(spec: _Field, item: str, where: str) -> bool:
    """``L`` (last day), day-of-month ``LW`` (last weekday), day-of-week ``<day>L``."""
    if item == "L":
        return True
    if spec is _DAY_OF_MONTH and item == "LW":
        return True
    if spec is _DAY_OF_WEEK and item.endswith("L"):
        _value(where, spec, item[:-1])
        return True
    return False


def _check_weekday_item(where: str, spec: _Field, item: str) -> None:
    day = item[:-1]
    if not _NUMBER.match(day):
        raise ScheduleExpressionError(
            f"{where}: 'W' follows one day of the month, as in 15W (weekday nearest the 15th)"
        )
    _value(where, spec, day)


def _check_nth_item(where: str, spec: _Field, item: str) -> None:
    day, _, nth = item.partition("#")
    _value(where, spec, day)
    if not _NUMBER.match(nth) or not 1 <= int(nth) <= _MAX_NTH:
        raise ScheduleExpressionError(
            f"{where}: after '#' comes the occurrence in the month, 1-{_MAX_NTH} "
            "(3#2 is the second Tuesday)"
        )


def _check_special_characters(where: str, spec: _Field, item: str) -> None:
    """A special character left over after the allowed forms were recognised is misplaced."""
    residue = _without_names(spec, item)
    for char, usage in _SPECIAL_USAGE.items():
        if char in residue:
            raise ScheduleExpressionError(f"{where}: misplaced '{char}' ({usage})")
    if spec is _DAY_OF_WEEK and "/" in item:
        raise ScheduleExpressionError(f"{where}: '/' is not allowed in day-of-week")


def _without_names(spec: _Field, text: str) -> str:
    """``text`` without month and day names: "JUL" and "WED" hold an L and a W, not wildcards."""
    residue = text.upper()
    for name in spec.names:
        residue = residue.replace(name, "")
    return residue


_SPECIAL_USAGE: Final = {
    "?": "'?' stands alone, in day-of-month or day-of-week",
    "L": "L alone in day-of-month or day-of-week, LW in day-of-month, <day>L in day-of-week",
    "W": "<day>W in day-of-month, as in 15W",
    "#": "<day>#<n> in day-of-week, as in 3#2",
}


def _check_step(where: str, spec: _Field, step: str) -> None:
    if not _NUMBER.match(step):
        raise ScheduleExpressionError(
            f"{where}: after '/' comes a whole number, the increment (*/15, 0/10)"
        )
    size = int(step)
    if not 1 <= size <= spec.high:
        raise ScheduleExpressionError(
            f"{where}: the increment {size} must be between 1 and {spec.high}"
        )


def _value(where: str, spec: _Field, text: str) -> int:
    """One value of the field (number or name), checked against the field's range."""
    upper = text.upper()
    if spec.names and upper in spec.names:
        return spec.low + spec.names.index(upper)
    if not _NUMBER.match(text):
        expected = f"a number {spec.low}-{spec.high}"
        if spec.names:
            expected += f" or one of {', '.join(spec.names)}"
        shown = text or "nothing"
        raise ScheduleExpressionError(f"{where}: {shown!r} is not {expected}")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise ScheduleExpressionError(
            f"{where}: {value} is out of range ({spec.name} takes {spec.value_range})"
        )
    return value
