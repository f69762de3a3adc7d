"""Schedule expressions and time zones: what EventBridge Scheduler accepts, and clear errors."""

from __future__ import annotations

import pytest

from dagtrigger.sources.schedules.expressions import (
    ScheduleExpressionError,
    parse_schedule_expression,
)
from dagtrigger.sources.schedules.timezones import TimezoneError, validate_timezone


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("rate(1 minute)", "rate"),
        ("rate(5 minutes)", "rate"),
        ("rate(1 hour)", "rate"),
        ("rate(12 hours)", "rate"),
        ("rate(1 day)", "rate"),
        ("rate(7 days)", "rate"),
        ("cron(0 2 * * ? *)", "cron"),
        ("cron(0 10 ? * MON-FRI *)", "cron"),
        ("cron(0 9 ? * 2 *)", "cron"),
        ("cron(15 12 * * ? *)", "cron"),
        ("cron(0/15 * * * ? *)", "cron"),
        ("cron(*/5 8-17 ? * mon-fri *)", "cron"),
        ("cron(0 18 ? * 6#3 *)", "cron"),
        ("cron(0 18 ? * FRI#1 *)", "cron"),
        ("cron(0 18 ? * 6L *)", "cron"),
        ("cron(0 9 L * ? *)", "cron"),
        ("cron(0 9 LW * ? *)", "cron"),
        ("cron(0 9 15W * ? *)", "cron"),
        ("cron(0 0 1 JAN,APR,JUL,OCT ? 2026-2030)", "cron"),
        ("cron(0 0 1-15/2 * ? *)", "cron"),
        ("cron(0 0 ? JUL,AUG WED,SAT *)", "cron"),
        ("cron(30 23 ? JUL WED 2199)", "cron"),
        ("at(2026-11-21T02:00:00)", "at"),
        ("at(2028-02-29T23:59:59)", "at"),
    ],
)
def test_expressions_the_scheduler_accepts_are_accepted(expression: str, kind: str) -> None:
    parsed = parse_schedule_expression(expression)
    assert (parsed.text, parsed.kind) == (expression, kind)
    assert parsed.is_one_time is (kind == "at")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        # rate
        ("rate(1 minutes)", "rate(1 minutes): write rate(1 minute) (singular for 1)"),
        ("rate(5 hour)", "rate(5 hour): write rate(5 hours) (plural for more than 1)"),
        ("rate(0 minutes)", "rate(0 minutes): the rate must be at least 1"),
        ("rate(2 weeks)", "unit minute(s), hour(s) or day(s)"),
        ("rate(-5 minutes)", "N a positive whole number"),
        ("rate(5  minutes)", "one space"),
        # cron: shape
        ("cron(0 2 * * ?)", "a cron expression has 6 fields (minutes hours day-of-month month"),
        ("cron(0 2 * * ? * *)", "this one has 7"),
        ("cron(0 2 * * * *)", "exactly one of day-of-month (field 3, '*') and day-of-week"),
        ("cron(0 2 ? * ? *)", "exactly one of day-of-month (field 3, '?')"),
        ("cron(0 2 1 * MON *)", "must be '?'"),
        # cron: values, by field
        ("cron(60 2 * * ? *)", "field 1 (minutes) '60': 60 is out of range (minutes takes 0-59)"),
        ("cron(0 24 * * ? *)", "field 2 (hours) '24': 24 is out of range (hours takes 0-23)"),
        ("cron(0 2 32 * ? *)", "field 3 (day-of-month) '32': 32 is out of range"),
        ("cron(0 2 0 * ? *)", "field 3 (day-of-month) '0': 0 is out of range"),
        ("cron(0 2 * 13 ? *)", "(month takes 1-12 or JAN-DEC)"),
        ("cron(0 2 * JANUARY ? *)", "field 4 (month) 'JANUARY': 'JANUARY' is not a number 1-12"),
        ("cron(0 2 ? * 8 *)", "(day-of-week takes 1-7 or SUN-SAT)"),
        ("cron(0 2 ? * 0 *)", "field 5 (day-of-week) '0': 0 is out of range"),
        ("cron(0 2 ? * MON-FRY *)", "'FRY' is not a number 1-7 or one of SUN, MON, TUE"),
        ("cron(0 2 * * ? 1969)", "field 6 (year) '1969': 1969 is out of range"),
        ("cron(0 2 * * ? 2200)", "(year takes 1970-2199)"),
        # cron: wildcards in the wrong place
        ("cron(0 ? * * ? *)", "field 2 (hours) '?': '?' is only allowed in day-of-month"),
        ("cron(0 2 ? * 2/2 *)", "'/' is not allowed in day-of-week"),
        ("cron(0 2 1W,15 * ? *)", "'1W,15': a 'W' expression must stand alone in its field"),
        ("cron(0 2 L,15 * ? *)", "'L,15': a 'L' expression must stand alone in its field"),
        ("cron(0 2 ? JUL,AUG 5L,6 *)", "'5L,6': a 'L' expression must stand alone"),
        ("cron(0 2 * 1/W ? *)", "field 4 (month) '1/W': misplaced 'W'"),
        ("cron(L 2 * * ? *)", "field 1 (minutes) 'L': misplaced 'L'"),
        ("cron(0 2 3#1 * ? *)", "field 3 (day-of-month) '3#1': misplaced '#'"),
        ("cron(0 2 ? * 3#6 *)", "after '#' comes the occurrence in the month, 1-5"),
        ("cron(0 2 ? * 3#1,6#3 *)", "a '#' expression must stand alone in its field"),
        ("cron(0 2 ?,1 * * *)", "'?' must stand alone in its field"),
        ("cron(0 2 XW * ? *)", "'W' follows one day of the month"),
        # cron: steps and ranges
        (
            "cron(*/0 * * * ? *)",
            "field 1 (minutes) '*/0': the increment 0 must be between 1 and 59",
        ),
        ("cron(*/90 * * * ? *)", "the increment 90 must be between 1 and 59"),
        ("cron(0/x * * * ? *)", "after '/' comes a whole number"),
        ("cron(0 17-9 * * ? *)", "field 2 (hours) '17-9': the range 17-9 starts after it ends"),
        ("cron(0,,5 2 * * ? *)", "field 1 (minutes) '0,,5': empty value between commas"),
        # at
        ("at(2026-11-21 02:00:00)", "expected at(yyyy-mm-ddThh:mm:ss)"),
        ("at(2026-11-21T02:00:00Z)", "with no time zone or fraction"),
        ("at(2026-02-30T02:00:00)", "2026-02-30T02:00:00 is not a real time"),
        ("at(2026-11-21T25:00:00)", "is not a real time"),
        # neither
        ("every day at 2", "expected rate(N unit), cron(minutes hours day-of-month month"),
        ("Cron(0 2 * * ? *)", "expected rate(N unit)"),
        (" rate(5 minutes)", "remove the spaces before or after the expression"),
        ("", "the schedule expression is empty"),
        ("cron(" + "0," * 200 + "0 2 * * ? *)", "the limit is 256"),
    ],
)
def test_invalid_expressions_say_what_is_wrong_and_where(expression: str, message: str) -> None:
    with pytest.raises(ScheduleExpressionError) as raised:
        parse_schedule_expression(expression)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "name", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Etc/GMT+5"]
)
def test_iana_time_zones_are_accepted(name: str) -> None:
    assert validate_timezone(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("europe/paris", "names are case-sensitive: did you mean 'Europe/Paris'?"),
        ("Europe/Pari", "did you mean 'Europe/Paris'"),
        ("Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not an IANA time zone name"),
        ("CEST", "'CEST' is not an IANA time zone name"),
        ("+02:00", "is not an IANA time zone name"),
        ("localtime", "is not an IANA time zone name"),
        ("../../etc/passwd", "is not an IANA time zone name"),
        ("", "the time zone is empty"),
        ("America/" + "x" * 60, "the limit is 50"),
    ],
)
def test_unknown_time_zones_are_refused_with_a_suggestion(name: str, message: str) -> None:
    with pytest.raises(TimezoneError) as raised:
        validate_timezone(name)
    assert message in str(raised.value)
