"""A marker's folder listing joins its set in chunks: thousands of objects in one invocation
cost a hundredth of the transactions, objects already recorded cost no write, and the set's
limit and concurrent joins hold as they do for one object at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from dagtrigger import ids
from dagtrigger.ledger.file_sets import FileSetLedger, FileSetRef, JoinOutcome, SetMember
from tests.unit.ledger.conftest import FakeClock

FOLDER = "exports/2026-12-03"


def file_set(limit: int = 1000) -> FileSetRef:
    return FileSetRef(
        set_id=ids.file_set_id("exports", FOLDER),
        route="exports",
        group=FOLDER,
        environment="prod",
        dag_id="load_export",
        limit=limit,
    )


def members(count: int) -> list[SetMember]:
    return [
        SetMember(
            trigger_id=ids.trigger_id(ids.set_member_identity("landing", key, "e1"), "exports"),
            source_key=f"s3://landing/{key}",
            source_identity=ids.set_member_identity("landing", key, "e1"),
            source_ref={"bucket": "landing", "key": key, "size": 10, "etag": "e1"},
            size=10,
        )
        for key in (f"{FOLDER}/part-{number:05d}.csv" for number in range(count))
    ]


@pytest.fixture
def file_sets(table: Any, clock: FakeClock) -> FileSetLedger:
    return FileSetLedger(table, clock=clock, sleep=lambda seconds: None)


@pytest.fixture
def dynamodb_calls(table: Any) -> Iterator[list[str]]:
    """The DynamoDB operations the table's client makes, in order."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    events = table.meta.client.meta.events
    events.register("before-call.dynamodb", record)
    yield calls
    events.unregister("before-call.dynamodb", record)


def test_a_listing_of_250_objects_joins_in_three_transactions(
    file_sets: FileSetLedger, dynamodb_calls: list[str]
) -> None:
    # Given a marker's listing of 250 objects, none recorded yet
    listed = members(250)

    # When they join the set
    joined = file_sets.join_listed(file_set(), listed)

    # Then all joined, with 3 reads of which are recorded and 3 transactions of up to 99
    assert joined == 250
    assert dynamodb_calls.count("TransactWriteItems") == 3
    assert dynamodb_calls.count("BatchGetItem") == 3
    record = file_sets.get(file_set().set_id)
    assert record is not None
    assert (record["member_count"], record["total_size"]) == (250, 2500)
    # And their records count no delivery: their events have not come yet
    assert {member["deliveries"] for member in file_sets.members(file_set().set_id)} == {0}


def test_a_listing_after_its_objects_joined_writes_nothing_and_counts_no_delivery(
    file_sets: FileSetLedger, dynamodb_calls: list[str]
) -> None:
    # Given 120 objects that joined by their own events
    listed = members(120)
    for member in listed:
        assert file_sets.join(file_set(), member).outcome is JoinOutcome.JOINED
    dynamodb_calls.clear()

    # When the marker's listing finds them
    joined = file_sets.join_listed(file_set(), listed)

    # Then nothing joined again and nothing was written: a listing is not a delivery
    assert joined == 0
    assert set(dynamodb_calls) == {"BatchGetItem"}
    record = file_sets.get(file_set().set_id)
    assert record is not None
    assert record["member_count"] == 120
    assert {member["deliveries"] for member in file_sets.members(file_set().set_id)} == {1}


def test_an_object_recorded_between_the_read_and_the_transaction_is_left_out_of_it(
    file_sets: FileSetLedger, table: Any, clock: FakeClock, dynamodb_calls: list[str]
) -> None:
    # Given a listing of 50 objects, one of which joins by its own event just after the
    # listing read which are recorded (another instance, its own client)
    listed = members(50)
    racing = FileSetLedger(
        boto3.resource("dynamodb", region_name="us-east-1").Table(table.name), clock=clock
    )

    def join_meanwhile(model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems" and dynamodb_calls.count("TransactWriteItems") == 1:
            racing.join(file_set(), listed[17])

    events = table.meta.client.meta.events
    events.register("before-call.dynamodb", join_meanwhile)
    try:
        # When the listing joins
        joined = file_sets.join_listed(file_set(), listed)
    finally:
        events.unregister("before-call.dynamodb", join_meanwhile)

    # Then the first transaction was refused for that one object, the second joined the other
    # 49, and the set counts 50 members, each once
    assert joined == 49
    assert dynamodb_calls.count("TransactWriteItems") == 2
    record = file_sets.get(file_set().set_id)
    assert record is not None
    assert record["member_count"] == 50
    assert len(file_sets.members(file_set().set_id)) == 50


def test_a_listing_over_the_sets_limit_fills_it_and_leaves_the_rest_out(
    file_sets: FileSetLedger,
) -> None:
    # Given a set that takes 30 objects, 20 of which joined by their own events
    listed = members(45)
    for member in listed[:20]:
        file_sets.join(file_set(limit=30), member)

    # When a listing of 45 joins
    joined = file_sets.join_listed(file_set(limit=30), listed)

    # Then 10 more joined, up to the limit, and the 15 others are not members
    assert joined == 10
    record = file_sets.get(file_set().set_id)
    assert record is not None
    assert record["member_count"] == 30
    assert len(file_sets.members(file_set().set_id)) == 30
