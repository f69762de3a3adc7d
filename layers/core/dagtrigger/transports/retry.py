"""Retries of one trigger inside a time budget: exponential backoff with full jitter (tenacity).

Only ``TransientTriggerError`` is retried. ``RejectedError`` propagates at once, carrying the
number of attempts made (``exc.attempts``). Refused access (``AccessRefusedError``) fails the
trigger at once as ``TriggerFailedError``, so the event is kept. When the next wait plus an
attempt as long as the last one would not fit in the budget, ``TriggerFailedError`` reports the
last failure and the attempt count; the event's queue then delivers it again later (a replay is
safe: the ``dag_run_id`` is deterministic). ``call_with_retries`` is the same loop around any
call (an asset event's lookup and post).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_random_exponential

from dagtrigger.errors import (
    AccessRefusedError,
    RejectedError,
    TransientTriggerError,
    TriggerFailedError,
)
from dagtrigger.observability import MetricName, count, logger, record_latency
from dagtrigger.transports.base import (
    AirflowTransport,
    EnvironmentRef,
    TriggerRequest,
    TriggerResult,
)
from dagtrigger.transports.ratelimit import RateLimiter

Result = TypeVar("Result")

#: the first backoff is drawn from [0, 0.5] s, doubling per retry up to [0, 8] s
INITIAL_WAIT_SECONDS = 0.5
MAX_WAIT_SECONDS = 8.0


@dataclass(frozen=True)
class RetryOutcome(Generic[Result]):
    result: Result
    attempts: int


def trigger_with_retries(
    transport: AirflowTransport,
    request: TriggerRequest,
    *,
    budget_seconds: float,
    limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RetryOutcome[TriggerResult]:
    """Trigger ``request`` through ``transport``, retrying transient failures within the budget."""
    return call_with_retries(
        lambda attempt: transport.trigger(request),
        environment=request.environment,
        about={"dag_id": request.dag_id, "dag_run_id": request.dag_run_id},
        budget_seconds=budget_seconds,
        limiter=limiter,
        sleep=sleep,
        clock=clock,
    )


def call_with_retries(
    call: Callable[[int], Result],
    *,
    environment: EnvironmentRef,
    about: Mapping[str, Any],
    budget_seconds: float,
    limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RetryOutcome[Result]:
    """``call(attempt_number)`` (from 1), retried on transient failures within the budget, each
    attempt after a slot of ``environment``'s rate limit; ``about`` names the work in logs."""
    started = clock()
    attempts = 0
    last_attempt_seconds = 0.0

    def remaining() -> float:
        return budget_seconds - (clock() - started)

    def attempt() -> Result:
        nonlocal attempts, last_attempt_seconds
        if limiter is not None and not limiter.acquire(
            environment.alias, timeout=max(0.0, remaining())
        ):
            raise TriggerFailedError(
                f"rate limit of environment {environment.alias!r} left no slot within "
                f"the {budget_seconds:g} s budget",
                attempts=attempts,
            )
        attempts += 1
        attempt_started = clock()
        try:
            return call(attempts)
        finally:
            last_attempt_seconds = clock() - attempt_started
            record_latency(last_attempt_seconds * 1000)

    def next_attempt_exceeds_budget(state: RetryCallState) -> bool:
        # The wait and an attempt as long as the last one must both fit in what is left.
        return (state.upcoming_sleep or 0.0) + last_attempt_seconds > remaining()

    retrying = Retrying(
        retry=retry_if_exception_type(TransientTriggerError),
        wait=wait_random_exponential(multiplier=INITIAL_WAIT_SECONDS, max=MAX_WAIT_SECONDS),
        stop=next_attempt_exceeds_budget,
        sleep=sleep,
        before_sleep=lambda state: _note_retry(environment, about, state),
        reraise=True,
    )
    try:
        result = retrying(attempt)
    except TransientTriggerError as last:
        raise TriggerFailedError(last.message, attempts=attempts) from last
    except AccessRefusedError as refused:
        # A retry within seconds cannot fix a role or a secret: fail now, keep the event.
        raise TriggerFailedError(refused.message, attempts=attempts, access_refused=True) from None
    except RejectedError as rejected:
        rejected.attempts = attempts
        rejected.add_note(f"rejected after {attempts} attempt(s)")
        raise
    return RetryOutcome(result=result, attempts=attempts)


def _note_retry(
    environment: EnvironmentRef, about: Mapping[str, Any], state: RetryCallState
) -> None:
    count(MetricName.TRIGGER_RETRY)
    failure = state.outcome.exception() if state.outcome is not None else None
    logger.warning(
        "transient trigger failure, retrying",
        extra={
            "environment": environment.alias,
            **about,
            "attempt": state.attempt_number,
            "wait_seconds": round(state.upcoming_sleep, 3),
            "reason": str(failure) if failure is not None else None,
        },
    )
