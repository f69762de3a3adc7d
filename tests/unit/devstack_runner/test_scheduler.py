"""Schedule expressions, the Scheduler's input substitutions, and Lambda's async retries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.runner.invoke import InvocationResult
from devstack.runner.schedule_expressions import ScheduleExpressionError, next_fire_times
from devstack.runner.scheduler import (
    ScheduledTarget,
    ScheduleRunner,
    rule_scheduled_event,
    scheduler_input,
)
from devstack.runner.template import ScheduleSpec

ARN = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_cron_fires_at_local_time_across_a_dst_change() -> None:
    # Given 02:30 every day in Paris, around the end of summer time (25 October 2026)
    times = next_fire_times(
        "cron(30 2 * * ? *)", after=utc(2026, 10, 23, 12), count=3, timezone="Europe/Paris"
    )
    # Then each fire is 02:30 Paris time: 00:30 UTC in summer time (on the night the clocks go
    # back, the first of the two 02:30s, once), 01:30 UTC after it
    assert times == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 9 ? * 2 *)", utc(2026, 11, 23, 9)),  # 2 is Monday in EventBridge
        ("cron(0 9 ? * MON-FRI *)", utc(2026, 11, 23, 9)),
        ("cron(0 9 ? * 6#3 *)", utc(2026, 12, 18, 9)),  # third Friday
        ("cron(0 9 ? * 6L *)", utc(2026, 11, 27, 9)),  # last Friday
        ("cron(0 9 L * ? *)", utc(2026, 11, 30, 9)),
        ("cron(0 9 15W * ? *)", utc(2026, 12, 15, 9)),
        ("cron(0/15 * * * ? *)", utc(2026, 11, 21, 12, 15)),
        ("cron(0 0 1 1 ? 2028)", utc(2028, 1, 1)),
    ],
)
def test_cron_expressions_use_eventbridge_fields(expression: str, expected: datetime) -> None:
    (first,) = next_fire_times(expression, after=utc(2026, 11, 21, 12, 1), count=1)
    assert first == expected


def test_a_time_the_clocks_skip_is_not_invoked() -> None:
    # Given 02:30 in Paris on the night summer time starts (29 March 2026: 02:00 -> 03:00)
    times = next_fire_times(
        "cron(30 2 * * ? *)", after=utc(2026, 3, 27, 12), count=3, timezone="Europe/Paris"
    )
    # Then that night has no 02:30 and is skipped
    assert times == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)]


def test_a_year_that_has_passed_never_fires() -> None:
    assert next_fire_times("cron(0 0 1 1 ? 2020)", after=utc(2026, 1, 1), count=1) == []


def test_the_year_field_takes_ranges_with_steps_and_ends() -> None:
    times = next_fire_times("cron(0 0 1 1 ? 2027-2031/2)", after=utc(2026, 1, 1), count=4)
    assert times == [utc(2027, 1, 1), utc(2029, 1, 1), utc(2031, 1, 1)]


def test_rate_counts_from_its_anchor() -> None:
    anchor = utc(2026, 11, 21, 10, 0)
    times = next_fire_times(
        "rate(15 minutes)", after=utc(2026, 11, 21, 10, 20), count=2, anchor=anchor
    )
    assert times == [utc(2026, 11, 21, 10, 30), utc(2026, 11, 21, 10, 45)]


def test_at_fires_once_in_its_time_zone() -> None:
    expression = "at(2026-12-01T08:00:00)"
    assert next_fire_times(
        expression, after=utc(2026, 11, 21), count=3, timezone="America/New_York"
    ) == [utc(2026, 12, 1, 13)]
    assert next_fire_times(expression, after=utc(2026, 12, 2), count=1) == []


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(1 minutes)", "singular unit for 1"),
        ("rate(5 minute)", "singular unit for 1"),
        ("rate(0 hours)", "positive integer"),
        ("cron(0 9 * * *)", "6 fields"),
        ("cron(0 9 * * MON *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 9 ? * 8 *)", "day-of-week '8'"),
        ("every day", "expected rate"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ScheduleExpressionError, match=message):
        next_fire_times(expression, after=utc(2026, 1, 1), count=1)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ScheduleExpressionError, match="unknown time zone 'Mars/Olympus'"):
        next_fire_times("rate(1 hour)", after=utc(2026, 1, 1), count=1, timezone="Mars/Olympus")


def schedule(input_text: str | None, kind: str = "ScheduleV2") -> ScheduleSpec:
    return ScheduleSpec(
        "Nightly", kind, "nightly", "default", ARN, "cron(0 2 * * ? *)", input=input_text
    )


def test_scheduler_input_substitutes_the_context_attributes() -> None:
    spec = schedule(
        '{"arn": "<aws.scheduler.schedule-arn>", "at": "<aws.scheduler.scheduled-time>", '
        '"run": "<aws.scheduler.execution-id>", "try": "<aws.scheduler.attempt-number>"}'
    )
    event = scheduler_input(
        spec, scheduled_time=utc(2026, 11, 22, 1), execution_id="exec-1", attempt=1
    )
    assert event == {"arn": ARN, "at": "2026-11-22T01:00:00Z", "run": "exec-1", "try": "1"}


def test_a_rule_schedule_without_input_sends_a_scheduled_event() -> None:
    event = rule_scheduled_event(
        schedule(None, kind="Schedule"),
        scheduled_time=utc(2026, 11, 22, 1),
        account_id="1",
        region="eu-west-1",
    )
    assert (event["detail-type"], event["source"], event["time"]) == (
        "Scheduled Event",
        "aws.events",
        "2026-11-22T01:00:00Z",
    )
    assert event["resources"] == [ARN]


class Recorder:
    """A fake invoke that fails the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.events: list[Any] = []
        self.dead_letters: list[tuple[str, Any]] = []

    def invoke(self, function: str, event: Any) -> InvocationResult:
        self.events.append(event)
        if len(self.events) <= self.failures:
            return InvocationResult(
                function, f"r{len(self.events)}", error={"errorMessage": "boom"}
            )
        return InvocationResult(function, f"r{len(self.events)}", payload="ok")

    def dead_letter(self, queue_url: str, event: Any, result: InvocationResult) -> None:
        self.dead_letters.append((queue_url, event))


def runner_for(recorder: Recorder, retries: int) -> ScheduleRunner:
    target = ScheduledTarget(
        schedule('{"at": "<aws.scheduler.scheduled-time>", "run": "<aws.scheduler.execution-id>"}'),
        "Fn",
        retries,
        "http://dlq",
    )
    return ScheduleRunner(
        targets=[target],
        invoke=recorder.invoke,
        send_dead_letter=recorder.dead_letter,
        account_id="123456789012",
        region="us-east-1",
        retry_delays=(0.0,),
    )


def test_a_failed_invocation_is_retried_with_the_same_event() -> None:
    recorder = Recorder(failures=1)
    firing = runner_for(recorder, retries=2).fire("nightly", utc(2026, 11, 22, 1))
    assert firing.succeeded
    assert len(firing.attempts) == 2
    assert recorder.events[0] == recorder.events[1]
    assert recorder.events[0]["at"] == "2026-11-22T01:00:00Z"
    assert recorder.dead_letters == []


def test_an_event_that_keeps_failing_goes_to_the_dead_letter_queue() -> None:
    recorder = Recorder(failures=10)
    firing = runner_for(recorder, retries=2).fire("nightly", utc(2026, 11, 22, 1))
    assert not firing.succeeded
    assert len(firing.attempts) == 3
    assert firing.dead_lettered
    assert recorder.dead_letters == [("http://dlq", recorder.events[0])]


def test_each_firing_gets_its_own_execution_id() -> None:
    recorder = Recorder(failures=0)
    runner = runner_for(recorder, retries=0)
    runner.fire("nightly", utc(2026, 11, 22, 1))
    runner.fire("nightly", utc(2026, 11, 22, 1) + timedelta(days=1))
    assert recorder.events[0]["run"] != recorder.events[1]["run"]
    assert json.dumps(recorder.events[1]["at"]) == '"2026-11-23T01:00:00Z"'


def test_firing_an_unknown_schedule_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="schedules: nightly"):
        runner_for(Recorder(0), retries=0).fire("weekly")
