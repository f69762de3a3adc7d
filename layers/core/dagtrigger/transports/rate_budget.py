"""One budget of calls per second per MWAA environment, shared by every caller, in DynamoDB.

MWAA allows about 10 InvokeRestApi requests a second per environment, whatever calls them:
every instance of the S3 function, the API, the schedules and the reconciler. A token bucket in
one instance cannot see the others, so the budget lives in the table every function already
uses: one item per environment and second, ``pk = "rate#<environment>#<epoch second>"``, whose
``calls`` counter is raised by one atomic conditional update per call. The update succeeds only
while the second's count is under the caller's limit, so the environment never gets more than
``calls_per_second`` from us, however many instances run.

Triggering comes first: a trigger may use the whole second; background work (the reconciler's
run reads) may only start while the second's count is under ``background_calls_per_second``, and
never waits for a slot: it gives up for this pass, so a burst of triggers is never slowed by it.

Cost: one DynamoDB write per MWAA call (items expire a minute later). When DynamoDB itself cannot
answer, calls go ahead unbudgeted, logged: MWAA's own throttling still answers, and retries
handle it; an outage of the budget must not become an outage of triggering.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dagtrigger.errors import TransientTriggerError
from dagtrigger.observability import logger
from dagtrigger.transports.factory import TransportParts

#: how long a second's counter item is kept before DynamoDB's TTL deletes it
_ITEM_LIFETIME_SECONDS = 60
#: background work may try the next second too, in case triggers only passed through this one
_BACKGROUND_WAIT = 1.0


class CallPriority(StrEnum):
    TRIGGER = "trigger"  # starting a run: may use the whole budget, waits for a slot
    BACKGROUND = "background"  # following runs: only spare capacity, never waits


class RateBudgetExhausted(TransientTriggerError):
    """No slot in the environment's shared budget within the wait."""


def rate_budget_key(environment_name: str, second: int) -> str:
    return f"rate#{environment_name}#{second}"


class SharedRateBudget:
    """Per-second call counters on a table whose key attribute is ``pk`` (string).

    ``table`` is a factory: the table resource is created on the first call.
    """

    def __init__(
        self,
        table: Callable[[], Any],
        *,
        calls_per_second: int,
        background_calls_per_second: int,
        max_wait_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= background_calls_per_second <= calls_per_second:
            raise ValueError(
                "background_calls_per_second must be between 1 and calls_per_second "
                f"(got {background_calls_per_second} and {calls_per_second})"
            )
        self._table = table
        self._limits = {
            CallPriority.TRIGGER: calls_per_second,
            CallPriority.BACKGROUND: background_calls_per_second,
        }
        self._max_wait_seconds = max_wait_seconds
        self._clock = clock
        self._sleep = sleep

    def acquire(self, environment_name: str, priority: CallPriority) -> None:
        """Take one call of this second's budget, or raise ``RateBudgetExhausted``.

        A trigger waits for the next seconds, up to ``max_wait_seconds``; background work tries
        this second and the next, no more.
        """
        wait = self._max_wait_seconds if priority is CallPriority.TRIGGER else _BACKGROUND_WAIT
        deadline = self._clock() + wait
        while True:
            now = self._clock()
            if self._take(environment_name, math.floor(now), self._limits[priority]):
                return
            next_second = math.floor(now) + 1
            if next_second > deadline:
                raise RateBudgetExhausted(
                    f"environment {environment_name!r} used its shared budget of "
                    f"{self._limits[priority]} {priority} call(s) a second"
                )
            self._sleep(next_second - now)

    def _take(self, environment_name: str, second: int, limit: int) -> bool:
        try:
            self._table().update_item(
                Key={"pk": rate_budget_key(environment_name, second)},
                UpdateExpression="ADD calls :one SET expires_at = if_not_exists(expires_at, :ttl)",
                ConditionExpression="attribute_not_exists(calls) OR calls < :limit",
                ExpressionAttributeValues={
                    ":one": 1,
                    ":limit": limit,
                    ":ttl": second + _ITEM_LIFETIME_SECONDS,
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            logger.warning(
                "the shared rate budget could not be read; calling unbudgeted",
                extra={"environment": environment_name, "reason": str(error)},
            )
        except BotoCoreError as error:
            logger.warning(
                "the shared rate budget could not be read; calling unbudgeted",
                extra={"environment": environment_name, "reason": str(error)},
            )
        return True


def rate_budget_from(parts: TransportParts) -> SharedRateBudget:
    settings = parts.settings
    return SharedRateBudget(
        parts.table,
        calls_per_second=settings.mwaa_calls_per_second,
        background_calls_per_second=min(
            settings.background_calls_per_second, settings.mwaa_calls_per_second
        ),
        max_wait_seconds=settings.rate_budget_wait_seconds,
    )
