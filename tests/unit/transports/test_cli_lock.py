"""The DynamoDB lease lock around CLI requests, against moto in-process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dagtrigger.transports.cli_lock import DynamoDbLeaseLock, LockNotAcquiredError, cli_lock_key

KEY = cli_lock_key("prod-mwaa")


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name="us-east-1")
        created = resource.create_table(
            TableName="dagtrigger-history",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield created


def make_lock(
    table: Any, clock=time.time, sleep=time.sleep, wait: float = 0.0
) -> DynamoDbLeaseLock:
    return DynamoDbLeaseLock(
        table, lease_seconds=30, wait_seconds=wait, poll_seconds=0.01, clock=clock, sleep=sleep
    )


def test_the_lock_item_names_the_environment_owner_and_lease_end(table, clock):
    # Given a free lock
    lock = make_lock(table, clock=clock)

    # When it is taken
    owner = lock.acquire(KEY)

    # Then one item records the holder and when its lease ends (epoch seconds)
    item = table.get_item(Key={"pk": "lock#cli#prod-mwaa"})["Item"]
    assert item["owner"] == owner
    assert int(item["expires_at"]) >= clock.now + 30


def test_a_held_lock_is_refused_until_released(table):
    first, second = make_lock(table), make_lock(table)
    owner = first.acquire(KEY)

    with pytest.raises(LockNotAcquiredError, match="lock#cli#prod-mwaa"):
        second.acquire(KEY)

    assert first.release(KEY, owner) is True
    assert second.acquire(KEY)


def test_an_expired_lease_can_be_taken_over_and_the_old_owner_cannot_release_it(table, clock):
    # Given a lease whose holder vanished
    crashed = make_lock(table, clock=clock)
    stale_owner = crashed.acquire(KEY)

    # When its lease has run out and another caller asks
    clock.advance(31)
    successor = make_lock(table, clock=clock)
    new_owner = successor.acquire(KEY)

    # Then the successor holds it, and the old holder's late release leaves it alone
    assert crashed.release(KEY, stale_owner) is False
    assert table.get_item(Key={"pk": KEY})["Item"]["owner"] == new_owner


def test_acquire_waits_for_the_holder_within_its_deadline(table, clock):
    # Given a holder that releases the lock while the other caller polls
    holder = make_lock(table, clock=clock)
    owner = holder.acquire(KEY)
    polls: list[float] = []

    def sleep_and_release_on_third_poll(seconds: float) -> None:
        polls.append(seconds)
        clock.sleep(seconds)
        if len(polls) == 3:
            holder.release(KEY, owner)

    waiter = make_lock(table, clock=clock, sleep=sleep_and_release_on_third_poll, wait=5)

    # When the waiter asks, Then it gets the lock after a few polls
    assert waiter.acquire(KEY)
    assert len(polls) == 3


class AtomicRequests:
    """Applies each table request atomically, as DynamoDB does with conditional writes.

    moto's in-process backend checks a condition and writes without a lock of its own, so two
    threads can both pass one condition there. Only single requests are serialised here: the
    lock's own sequence (put, poll, delete) still interleaves freely between threads.
    """

    _one_request_at_a_time = threading.Lock()

    def __init__(self, table: Any) -> None:
        self._table = table

    def put_item(self, **kwargs: Any) -> Any:
        with self._one_request_at_a_time:
            return self._table.put_item(**kwargs)

    def delete_item(self, **kwargs: Any) -> Any:
        with self._one_request_at_a_time:
            return self._table.delete_item(**kwargs)


def test_concurrent_threads_never_hold_the_lock_together(table):
    # Given 4 threads, each running 4 "CLI requests" under the lock
    inside = 0
    most_inside = 0
    completed = 0
    counter_lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        nonlocal inside, most_inside, completed
        # boto3 resources are not thread-safe: each thread has its own session and table
        own_table = (
            boto3.session.Session().resource("dynamodb", region_name="us-east-1").Table(table.name)
        )
        lock = DynamoDbLeaseLock(
            AtomicRequests(own_table), lease_seconds=30, wait_seconds=30, poll_seconds=0.02
        )
        try:
            for _ in range(4):
                with lock.held(KEY):
                    with counter_lock:
                        inside += 1
                        most_inside = max(most_inside, inside)
                    time.sleep(0.001)
                    with counter_lock:
                        inside -= 1
                        completed += 1
        except BaseException as exc:  # surface failures from the thread
            errors.append(exc)

    # When they all run at once
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every request ran, never two at the same time, and the lock is free at the end
    assert errors == []
    assert completed == 16
    assert most_inside == 1
    assert "Item" not in table.get_item(Key={"pk": KEY})
