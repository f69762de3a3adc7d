"""Schedule management against moto's EventBridge Scheduler: create, read, list, replace, delete."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dagtrigger.errors import ConflictError, NotFoundError
from dagtrigger.sources.schedules.management import (
    SchedulePlacement,
    create_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    update_schedule,
)
from dagtrigger.sources.schedules.parse import CONTEXT_ATTRIBUTES, ScheduleTarget
from dagtrigger.sources.schedules.spec import RetryPolicy, ScheduleSpec

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:dagtrigger-schedules"
ROLE_ARN = "arn:aws:iam::123456789012:role/dagtrigger-scheduler-invoke"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:dagtrigger-schedules-dlq"


def nightly(**changes: Any) -> ScheduleSpec:
    fields: dict[str, Any] = {
        "name": "nightly-sales",
        "expression": "cron(0 2 * * ? *)",
        "timezone": "Europe/Paris",
        "flexible_window_minutes": 15,
        "route": "nightly-sales",
        "conf": {"region": "emea"},
        "description": "sales of the day before, at 02:00 Paris time",
        "retry_policy": RetryPolicy(maximum_retry_attempts=3, maximum_event_age_seconds=900),
    }
    fields.update(changes)
    return ScheduleSpec.model_validate(fields)


def placement(group: str, dlq_arn: str | None = DLQ_ARN) -> SchedulePlacement:
    return SchedulePlacement(group, FUNCTION_ARN, ROLE_ARN, dlq_arn)


def create(scheduler: Any, group: str, spec: ScheduleSpec) -> Any:
    return create_schedule(scheduler, spec, placement(group))


def test_created_schedule_targets_the_function_with_the_input_retry_policy_and_dlq(
    scheduler: Any, schedule_group: str
) -> None:
    # When a schedule is created in the stack's group
    info = create(scheduler, schedule_group, nightly())

    # Then the Scheduler holds it as asked: time zone, window, state, retry policy, DLQ, role
    raw = scheduler.get_schedule(Name="nightly-sales", GroupName=schedule_group)
    assert raw["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert raw["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert raw["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert raw["State"] == "ENABLED"
    target = raw["Target"]
    assert (target["Arn"], target["RoleArn"]) == (FUNCTION_ARN, ROLE_ARN)
    assert target["DeadLetterConfig"] == {"Arn": DLQ_ARN}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 900}
    document = json.loads(target["Input"])
    assert (document["route"], document["conf"]) == ("nightly-sales", {"region": "emea"})
    assert {key: document[key] for key in CONTEXT_ATTRIBUTES} == dict(CONTEXT_ATTRIBUTES)

    # And the returned info reads it back as the same spec
    assert info.arn == raw["Arn"]
    assert info.arn.endswith(f":schedule/{schedule_group}/nightly-sales")
    assert info.managed
    assert info.to_spec() == nightly()


def test_a_schedule_without_window_is_exactly_on_time(scheduler: Any, schedule_group: str) -> None:
    info = create(scheduler, schedule_group, nightly(flexible_window_minutes=None))
    raw = scheduler.get_schedule(Name="nightly-sales", GroupName=schedule_group)
    assert raw["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert info.flexible_window_minutes is None


def test_creating_a_name_twice_is_a_conflict(scheduler: Any, schedule_group: str) -> None:
    create(scheduler, schedule_group, nightly())
    with pytest.raises(ConflictError) as raised:
        create(scheduler, schedule_group, nightly(expression="rate(1 hour)"))
    assert raised.value.code == "ConflictException"
    assert f"creating schedule {schedule_group}/nightly-sales" in str(raised.value)


def test_update_replaces_the_schedule(scheduler: Any, schedule_group: str) -> None:
    # Given a schedule
    created = create(scheduler, schedule_group, nightly())

    # When it is read, changed and written back (a partial update)
    fields = created.to_spec().model_dump()
    fields.update(
        expression="cron(30 3 ? * MON-FRI *)",
        state="DISABLED",
        route=None,
        environment="prod",
        dag_id="weekday_sales",
    )
    changed = ScheduleSpec.model_validate(fields)
    updated = update_schedule(scheduler, changed, placement(schedule_group))

    # Then the Scheduler holds the new expression, state and target
    assert updated.expression == "cron(30 3 ? * MON-FRI *)"
    assert updated.state == "DISABLED"
    assert updated.target == ScheduleTarget(
        environment="prod", dag_id="weekday_sales", conf={"region": "emea"}
    )
    assert get_schedule(scheduler, "nightly-sales", group=schedule_group) == updated


def test_updating_a_missing_schedule_is_not_found(scheduler: Any, schedule_group: str) -> None:
    with pytest.raises(NotFoundError) as raised:
        update_schedule(scheduler, nightly(name="nobody"), placement(schedule_group, None))
    assert raised.value.code == "ResourceNotFoundException"


def test_list_pages_through_the_group_only(scheduler: Any, schedule_group: str) -> None:
    # Given five schedules in the stack's group and one in the default group
    names = [f"report-{index}" for index in range(5)]
    for name in names:
        create(scheduler, schedule_group, nightly(name=name))
    create(scheduler, "default", nightly(name="someone-elses"))

    # When the group is listed two at a time
    seen: list[str] = []
    page = list_schedules(scheduler, schedule_group, max_results=2)
    pages = 1
    seen.extend(item.name for item in page.items)
    while page.next_token:
        page = list_schedules(scheduler, schedule_group, page.next_token, max_results=2)
        pages += 1
        seen.extend(item.name for item in page.items)

    # Then every schedule of the group appears once, in three pages, and no other
    assert sorted(seen) == names
    assert pages == 3
    assert all(item.target_arn == FUNCTION_ARN for item in page.items)
    delete_schedule(scheduler, "someone-elses", group="default")


def test_list_refuses_a_page_size_the_api_refuses(scheduler: Any, schedule_group: str) -> None:
    with pytest.raises(ValueError, match="max_results must be between 1 and 100"):
        list_schedules(scheduler, schedule_group, max_results=101)


def test_delete_removes_it_and_a_second_delete_is_not_found(
    scheduler: Any, schedule_group: str
) -> None:
    # Given a schedule
    create(scheduler, schedule_group, nightly())

    # When it is deleted
    delete_schedule(scheduler, "nightly-sales", group=schedule_group)

    # Then it is gone: reading or deleting it again says so
    with pytest.raises(NotFoundError):
        get_schedule(scheduler, "nightly-sales", group=schedule_group)
    with pytest.raises(NotFoundError):
        delete_schedule(scheduler, "nightly-sales", group=schedule_group)
    assert list_schedules(scheduler, schedule_group).items == []


def test_one_time_schedule_with_dates_and_deletion_after_completion(
    scheduler: Any, schedule_group: str
) -> None:
    # Given a one-time schedule that deletes itself once it has fired
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    spec = nightly(
        name="year-end",
        expression="at(2030-12-31T23:00:00)",
        start_date=start,
        end_date=start + timedelta(days=30),
        delete_after_completion=True,
        state="DISABLED",
    )

    # When it is created
    info = create(scheduler, schedule_group, spec)

    # Then the dates and the completion action are kept
    assert (info.start_date, info.end_date) == (start, start + timedelta(days=30))
    assert info.delete_after_completion
    assert info.state == "DISABLED"


def test_a_hand_edited_input_is_reported_as_unmanaged(scheduler: Any, schedule_group: str) -> None:
    # Given a schedule in the group whose Input someone wrote by hand
    scheduler.create_schedule(
        Name="hand-made",
        GroupName=schedule_group,
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": FUNCTION_ARN, "RoleArn": ROLE_ARN, "Input": '{"dag": "x"}'},
    )

    # When it is read
    info = get_schedule(scheduler, "hand-made", group=schedule_group)

    # Then it shows, without a target, and cannot be turned into a spec
    assert not info.managed
    with pytest.raises(ValueError, match="target Input dagtrigger did not write"):
        info.to_spec()
