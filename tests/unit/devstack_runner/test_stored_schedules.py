"""Schedules created at run time in the Scheduler API (moto, in process) fire on time, with the
Scheduler's Input contract, and stop firing once deleted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.runner.invoke import InvocationResult
from devstack.runner.scheduler import (
    ScheduledTarget,
    ScheduleRunner,
    StoredSchedules,
    stored_schedule_spec,
)

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:schedules"
ROLE_ARN = "arn:aws:iam::123456789012:role/scheduler"
INPUT = (
    '{"route": "nightly-sales", "schedule_arn": "<aws.scheduler.schedule-arn>", '
    '"scheduled_time": "<aws.scheduler.scheduled-time>", '
    '"execution_id": "<aws.scheduler.execution-id>", '
    '"attempt": "<aws.scheduler.attempt-number>"}'
)
WAIT_SECONDS = 5.0
#: how long to watch for a firing that must not happen (many refreshes of 0.05 s)
QUIET_SECONDS = 0.5


class MovableClock:
    """The runner's clock, moved by the test (moto stamps creation with the real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def move_past(self, moment: datetime) -> None:
        self.now = max(self.now, moment.astimezone(UTC) + timedelta(seconds=1))


@pytest.fixture
def scheduler() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client(
            "scheduler",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def target_of(stored: Mapping[str, Any]) -> ScheduledTarget | None:
    """The schedules function's target, as the Lambda runner builds it from a stored schedule."""
    if stored["Target"]["Arn"] != FUNCTION_ARN:
        return None
    return ScheduledTarget(
        stored_schedule_spec(stored), "SchedulesFunction", 0, created_at=stored["CreationDate"]
    )


def create(scheduler: Any, name: str, *, arn: str = FUNCTION_ARN) -> None:
    scheduler.create_schedule(
        Name=name,
        GroupName="default",
        ScheduleExpression="rate(1 minute)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": arn, "RoleArn": ROLE_ARN, "Input": INPUT},
    )


def wait_until(condition: Callable[[], bool], seconds: float = WAIT_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def invoked() -> list[Any]:
    return []


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def schedule_runner(
    scheduler: Any, invoked: list[Any], clock: MovableClock
) -> Iterator[ScheduleRunner]:
    def invoke(function: str, event: Any) -> InvocationResult:
        invoked.append(event)
        return InvocationResult(function, f"r{len(invoked)}", payload="ok")

    runner = ScheduleRunner(
        targets=[],
        invoke=invoke,
        send_dead_letter=lambda queue_url, event, result: None,
        account_id="123456789012",
        region="us-east-1",
        clock=clock,
        stored=StoredSchedules(lambda: scheduler, target_of),
        refresh_seconds=0.05,
    )
    runner.start()
    yield runner
    runner.stop()


def test_a_schedule_created_at_run_time_fires_on_time_until_it_is_deleted(
    scheduler: Any, schedule_runner: ScheduleRunner, invoked: list[Any], clock: MovableClock
) -> None:
    # Given a running scheduler that knew no schedule when it started
    assert invoked == []

    # When a rate schedule is created in the Scheduler API
    create(scheduler, "made-at-run-time")
    created = scheduler.get_schedule(Name="made-at-run-time")["CreationDate"]
    clock.move_past(created)

    # Then it fires at once, as AWS fires a rate schedule without StartDate, with its Input filled
    assert wait_until(lambda: len(invoked) == 1)
    first = invoked[0]
    assert first["route"] == "nightly-sales"
    assert first["schedule_arn"].endswith(":schedule/default/made-at-run-time")
    assert first["scheduled_time"] == created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["attempt"] == "1"

    # And again a minute later, with a new execution id
    clock.advance(60)
    assert wait_until(lambda: len(invoked) == 2)
    assert invoked[1]["execution_id"] != first["execution_id"]

    # When it is deleted, Then it fires no more
    scheduler.delete_schedule(Name="made-at-run-time")
    time.sleep(0.2)  # a few refreshes
    clock.advance(180)
    assert not wait_until(lambda: len(invoked) > 2, QUIET_SECONDS)


def test_a_schedule_that_invokes_no_function_of_the_template_is_left_alone(
    scheduler: Any, schedule_runner: ScheduleRunner, invoked: list[Any], clock: MovableClock
) -> None:
    # Given a schedule aimed at a function the template does not have
    create(scheduler, "elsewhere", arn="arn:aws:lambda:us-east-1:123456789012:function:other")
    clock.move_past(scheduler.get_schedule(Name="elsewhere")["CreationDate"])

    # Then the runner never invokes anything for it
    assert not wait_until(lambda: len(invoked) > 0, QUIET_SECONDS)
