"""The per-environment budget of MWAA calls shared by every function, against moto in-process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from dagtrigger.transports.rate_budget import (
    CallPriority,
    RateBudgetExhausted,
    SharedRateBudget,
    rate_budget_key,
)


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name="us-east-1")
        yield resource.create_table(
            TableName="dagtrigger-history",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def budget(table: Any, clock: Any, *, per_second: int = 10, background: int = 3, wait: float = 5):
    return SharedRateBudget(
        lambda: table,
        calls_per_second=per_second,
        background_calls_per_second=background,
        max_wait_seconds=wait,
        clock=clock,
        sleep=clock.sleep,
    )


def test_instances_share_one_count_per_environment_and_second(table: Any, clock: Any) -> None:
    # Given two function instances with their own budget objects over one table
    clock.now = 1000.25
    first, second = budget(table, clock, wait=0), budget(table, clock, wait=0)

    # When they take 6 and 4 trigger calls in the same second
    for _ in range(6):
        first.acquire("prod-mwaa", CallPriority.TRIGGER)
    for _ in range(4):
        second.acquire("prod-mwaa", CallPriority.TRIGGER)

    # Then the 11th call of that second is refused to either, and the count is in the table
    with pytest.raises(RateBudgetExhausted, match="budget of 10 trigger"):
        first.acquire("prod-mwaa", CallPriority.TRIGGER)
    item = table.get_item(Key={"pk": rate_budget_key("prod-mwaa", 1000)})["Item"]
    assert item["calls"] == 10
    assert item["expires_at"] == 1060
    # And another environment has its own budget
    second.acquire("other-mwaa", CallPriority.TRIGGER)


def test_a_trigger_waits_for_the_next_second_within_its_wait(table: Any, clock: Any) -> None:
    # Given a second whose budget is used up
    clock.now = 1000.75
    shared = budget(table, clock, per_second=2, background=1)
    shared.acquire("prod-mwaa", CallPriority.TRIGGER)
    shared.acquire("prod-mwaa", CallPriority.TRIGGER)

    # When a third trigger call comes
    shared.acquire("prod-mwaa", CallPriority.TRIGGER)

    # Then it slept to the start of the next second and took a slot there
    assert clock.sleeps == [pytest.approx(0.25)]
    assert table.get_item(Key={"pk": rate_budget_key("prod-mwaa", 1001)})["Item"]["calls"] == 1


def test_background_work_gets_only_what_triggers_leave_and_waits_one_second_at_most(
    table: Any, clock: Any
) -> None:
    # Given triggers have made 3 calls this second and 3 in the next
    clock.now = 2000.0
    shared = budget(table, clock, per_second=10, background=3)
    for second in (2000, 2001):
        clock.now = second
        for _ in range(3):
            shared.acquire("prod-mwaa", CallPriority.TRIGGER)
    clock.now = 2000.0

    # When the reconciler asks for a slot
    with pytest.raises(RateBudgetExhausted, match="3 background"):
        shared.acquire("prod-mwaa", CallPriority.BACKGROUND)

    # Then it tried the next second, no more, and triggers still have the rest of each second
    assert clock.sleeps == [1.0]
    for _ in range(7):
        shared.acquire("prod-mwaa", CallPriority.TRIGGER)


def test_a_budget_that_cannot_be_read_lets_the_call_through(clock: Any) -> None:
    # Given a table that answers every write with an error other than the condition
    class Unavailable:
        def update_item(self, **_: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "UpdateItem",
            )

    shared = SharedRateBudget(
        Unavailable,
        calls_per_second=1,
        background_calls_per_second=1,
        max_wait_seconds=0,
        clock=clock,
        sleep=clock.sleep,
    )

    # When a trigger asks for a slot, then it is not held back by our own bookkeeping
    shared.acquire("prod-mwaa", CallPriority.TRIGGER)
    shared.acquire("prod-mwaa", CallPriority.TRIGGER)
    assert clock.sleeps == []


def test_background_limit_above_the_total_is_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and calls_per_second"):
        SharedRateBudget(
            dict, calls_per_second=2, background_calls_per_second=3, max_wait_seconds=0
        )
