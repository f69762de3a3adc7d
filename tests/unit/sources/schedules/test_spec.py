"""ScheduleSpec validation and the target Input it becomes (and that the function reads back)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dagtrigger.sources.schedules.parse import (
    CONTEXT_ATTRIBUTES,
    ScheduleTarget,
    build_target_input,
    read_target_input,
)
from dagtrigger.sources.schedules.service import parse_schedule_input
from dagtrigger.sources.schedules.spec import ScheduleSpec
from devstack.runner.cfn_yaml import load_template

SNIPPET = Path(__file__).resolve().parents[4] / "template.yaml"


def spec(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "nightly-sales",
        "expression": "cron(0 2 * * ? *)",
        "timezone": "Europe/Paris",
        "route": "nightly-sales",
    }
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not None}


def errors_of(fields: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        ScheduleSpec.model_validate(fields)
    return str(raised.value)


def test_a_minimal_spec_gets_safe_defaults() -> None:
    parsed = ScheduleSpec.model_validate(spec())
    assert parsed.state == "ENABLED"
    assert parsed.flexible_window_minutes is None
    assert parsed.conf == {}
    assert (
        parsed.retry_policy.maximum_retry_attempts,
        parsed.retry_policy.maximum_event_age_seconds,
    ) == (10, 3600)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": "nightly sales"}, "name", "String should match pattern"),
        ({"name": "x" * 65}, "name", "String should match pattern"),
        ({"expression": "cron(0 25 * * ? *)"}, "expression", "field 2 (hours) '25'"),
        ({"expression": "rate(5 minute)"}, "expression", "write rate(5 minutes)"),
        ({"timezone": "Europe/Pari"}, "timezone", "did you mean 'Europe/Paris'"),
        ({"flexible_window_minutes": 0}, "flexible_window_minutes", "greater than or equal to 1"),
        (
            {"flexible_window_minutes": 1441},
            "flexible_window_minutes",
            "less than or equal to 1440",
        ),
        ({"state": "PAUSED"}, "state", "'ENABLED' or 'DISABLED'"),
        ({"description": "d" * 513}, "description", "at most 512 characters"),
        ({"retry_policy": {"maximum_retry_attempts": 186}}, "maximum_retry_attempts", "185"),
        ({"retry_policy": {"maximum_event_age_seconds": 59}}, "maximum_event_age_seconds", "60"),
        ({"start_date": "2026-11-21T02:00:00"}, "start_date", "timezone info"),
        ({"route": None}, "", "give a route, or both environment and dag_id"),
        ({"environment": "prod", "dag_id": "x"}, "", "not both"),
        ({"route": None, "environment": "prod", "dag_id": "-x"}, "dag_id", "pattern"),
        ({"conf": {"big": "x" * 40000}}, "conf", "over the limit of 32768 bytes"),
        ({"conf": {"when": datetime(2026, 1, 1)}}, "conf", "must be a JSON object"),
        ({"conf": {"rows": [1, float("nan")]}}, "conf", "conf.rows[1] is nan"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        (
            {"start_date": "2026-12-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"},
            "",
            "start_date (2026-12-01T00:00:00+00:00) must be before end_date",
        ),
        ({"delete_after_completion": True}, "", "delete_after_completion is for one-time"),
    ],
)
def test_invalid_specs_name_the_field_and_the_problem(
    changes: dict[str, Any], field: str, message: str
) -> None:
    errors = errors_of(spec(**changes))
    assert field in errors
    assert message in errors


def test_direct_target_and_one_time_schedule_are_valid() -> None:
    parsed = ScheduleSpec.model_validate(
        spec(
            route=None,
            environment="prod",
            dag_id="refresh_dimensions",
            expression="at(2026-12-24T18:00:00)",
            delete_after_completion=True,
            start_date=datetime(2026, 12, 1, tzinfo=UTC),
        )
    )
    assert parsed.target_label == "prod/refresh_dimensions"


def test_target_input_carries_the_target_and_every_context_keyword() -> None:
    # Given a spec with a conf
    parsed = ScheduleSpec.model_validate(spec(conf={"region": "emea"}))

    # When its target Input is built
    document = json.loads(build_target_input(parsed))

    # Then it names the route and conf, and each Scheduler keyword under the key the function reads
    assert document == {
        "route": "nightly-sales",
        "conf": {"region": "emea"},
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "schedule_arn": "<aws.scheduler.schedule-arn>",
        "execution_id": "<aws.scheduler.execution-id>",
        "attempt": "<aws.scheduler.attempt-number>",
    }


def test_what_the_scheduler_delivers_from_a_built_input_is_what_the_function_accepts() -> None:
    # Given a direct target's Input, and the values Scheduler puts in place of its keywords
    target = ScheduleTarget(environment="prod", dag_id="refresh_dimensions", conf={"n": 1})
    text = build_target_input(target)
    values = {
        "<aws.scheduler.scheduled-time>": "2026-11-21T06:30:00Z",
        "<aws.scheduler.schedule-arn>": "arn:aws:scheduler:us-east-1:111122223333:schedule/g/s",
        "<aws.scheduler.execution-id>": "d32c5kddcf5bb8c3",
        "<aws.scheduler.attempt-number>": "1",
    }
    for keyword, value in values.items():
        text = text.replace(keyword, value)

    # When the function parses the delivered event
    fire = parse_schedule_input(json.loads(text))

    # Then it sees the same target and the context
    assert (fire.environment, fire.dag_id, fire.conf) == ("prod", "refresh_dimensions", {"n": 1})
    assert fire.scheduled_time == datetime(2026, 11, 21, 6, 30, tzinfo=UTC)
    assert (fire.schedule_group, fire.schedule_name, fire.attempt) == ("g", "s", 1)


def test_reading_an_input_back_gives_the_target_and_refuses_foreign_inputs() -> None:
    target = ScheduleTarget(route="nightly-sales", conf={"region": "emea"})
    assert read_target_input(build_target_input(target)) == target
    assert read_target_input('{"route": "nightly-sales"}') is None  # no keywords: not ours
    assert read_target_input("not json") is None
    assert read_target_input(None) is None


def test_the_template_snippet_example_uses_the_one_input_format() -> None:
    # Given the ScheduleV2 example in the template snippet the lead merges into template.yaml
    template = load_template(SNIPPET)
    function = template["Resources"]["SchedulesFunction"]["Properties"]
    (event,) = function["Events"].values()

    # Then its Input is what build_target_input writes for the same target
    written = json.loads(event["Properties"]["Input"])
    target = read_target_input(event["Properties"]["Input"])
    assert target is not None
    assert written == json.loads(build_target_input(target))
    assert set(CONTEXT_ATTRIBUTES) <= set(written)
