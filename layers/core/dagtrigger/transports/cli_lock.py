"""A lease lock in DynamoDB, so that only one CLI request runs per MWAA environment at a time.

MWAA asks callers not to run CLI requests concurrently, and concurrent Lambda instances share
nothing but the table. The lock is one item, ``pk = "lock#cli#<environment name>"``, with the
holder (``owner``) and the lease's end (``expires_at``, epoch seconds). Taking it is a
conditional put that succeeds when the item is absent or its lease has run out (a holder that
crashed never blocks others for longer than one lease); releasing is a delete conditional on
still being the owner, so a holder whose lease ran out cannot remove its successor's lock.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from dagtrigger.errors import DagTriggerError

#: seconds between attempts while another holder has the lease
DEFAULT_POLL_SECONDS = 0.25


class LockNotAcquiredError(DagTriggerError):
    """Another holder kept the lease for the whole wait."""


def cli_lock_key(environment_name: str) -> str:
    return f"lock#cli#{environment_name}"


class DynamoDbLeaseLock:
    """Leases on items of a table whose only key attribute is ``pk`` (string)."""

    def __init__(
        self,
        table: Any,
        *,
        lease_seconds: float,
        wait_seconds: float,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if lease_seconds <= 0 or wait_seconds < 0 or poll_seconds <= 0:
            raise ValueError("lease_seconds and poll_seconds must be positive, wait_seconds >= 0")
        self._table = table
        self._lease_seconds = lease_seconds
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._sleep = sleep

    @contextmanager
    def held(self, key: str) -> Iterator[str]:
        """Hold the lease on ``key`` for the ``with`` block; yields this holder's owner id."""
        owner = self.acquire(key)
        try:
            yield owner
        finally:
            self.release(key, owner)

    def acquire(self, key: str) -> str:
        """Take the lease, polling until the wait runs out; returns the owner id to release with."""
        owner = uuid.uuid4().hex
        deadline = self._clock() + self._wait_seconds
        while True:
            if self._try_take(key, owner):
                return owner
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise LockNotAcquiredError(
                    f"lock {key!r} stayed held by another caller for {self._wait_seconds:g} s"
                )
            self._sleep(min(self._poll_seconds, remaining))

    def release(self, key: str, owner: str) -> bool:
        """Give the lease back; False when it had already passed to someone else."""
        try:
            self._table.delete_item(
                Key={"pk": key},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": owner},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def _try_take(self, key: str, owner: str) -> bool:
        now = self._clock()
        try:
            self._table.put_item(
                Item={"pk": key, "owner": owner, "expires_at": int(now + self._lease_seconds) + 1},
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": int(now)},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
