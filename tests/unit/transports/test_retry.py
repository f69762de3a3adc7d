"""Retries inside a time budget, with a fake clock: no real sleeping, no timed assertions."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from dagtrigger.errors import RejectedError, TransientTriggerError, TriggerFailedError
from dagtrigger.transports.base import EnvironmentRef, TransportKind, TriggerRequest, TriggerResult
from dagtrigger.transports.ratelimit import RateLimiter
from dagtrigger.transports.retry import MAX_WAIT_SECONDS, trigger_with_retries

ENV = EnvironmentRef(
    alias="prod", name="prod-mwaa", transport=TransportKind.INVOKE_REST_API, airflow_major=3
)


class ScriptedTransport:
    """Raises or returns the scripted outcomes in order, one per attempt."""

    def __init__(
        self, *outcomes: Exception | TriggerResult, clock=None, attempt_seconds: float = 0.0
    ) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.clock = clock
        self.attempt_seconds = attempt_seconds

    def trigger(self, request: TriggerRequest) -> TriggerResult:
        self.calls += 1
        if self.clock is not None:
            self.clock.advance(self.attempt_seconds)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def get_dag_run_state(
        self, dag_id: str, dag_run_id: str, *, triggered_after: datetime | None = None
    ) -> str | None:
        return None


@pytest.fixture
def request_() -> TriggerRequest:
    return TriggerRequest(environment=ENV, dag_id="etl", dag_run_id="r1", conf={})


OK = TriggerResult(dag_run_id="r1", logical_date=None, state="queued")


def test_throttling_then_success_counts_the_attempts(request_, clock, caplog):
    # Given a transport throttled twice, then successful
    transport = ScriptedTransport(
        TransientTriggerError("throttled", http_status=429),
        TransientTriggerError("throttled", http_status=429),
        OK,
    )
    caplog.set_level(logging.WARNING)

    # When the trigger runs with a generous budget
    outcome = trigger_with_retries(
        transport, request_, budget_seconds=20, sleep=clock.sleep, clock=clock
    )

    # Then it succeeded on the third attempt, after two backoff sleeps, each retry logged
    assert outcome.result == OK
    assert outcome.attempts == 3
    assert len(clock.sleeps) == 2
    assert all(0 <= wait <= MAX_WAIT_SECONDS for wait in clock.sleeps)
    assert [r.message for r in caplog.records].count("transient trigger failure, retrying") == 2


def test_server_errors_past_the_budget_raise_trigger_failed_with_attempts(request_, clock):
    # Given a transport that always answers 503 and takes 1 s per attempt
    transport = ScriptedTransport(
        TransientTriggerError("HTTP 503: unavailable", http_status=503),
        clock=clock,
        attempt_seconds=1.0,
    )

    # When the trigger runs with a 10 s budget
    with pytest.raises(TriggerFailedError) as failed:
        trigger_with_retries(transport, request_, budget_seconds=10, sleep=clock.sleep, clock=clock)

    # Then it gave up within the budget, reporting the last error and every attempt made
    assert failed.value.attempts == transport.calls
    assert failed.value.attempts >= 2
    assert "HTTP 503" in failed.value.message
    assert clock.now - 1000.0 <= 10


def test_a_rejection_propagates_at_once_with_its_attempt_count(request_, clock):
    # Given a transient failure, then a permanent one
    transport = ScriptedTransport(
        TransientTriggerError("timeout"),
        RejectedError("dag_not_found", "DAG with dag_id: 'etl' not found"),
    )

    # When the trigger runs
    with pytest.raises(RejectedError) as rejected:
        trigger_with_retries(transport, request_, budget_seconds=20, sleep=clock.sleep, clock=clock)

    # Then the rejection is not retried and says how many attempts were made
    assert rejected.value.code == "dag_not_found"
    assert rejected.value.attempts == 2  # type: ignore[attr-defined]
    assert transport.calls == 2


def test_each_attempt_waits_for_the_environments_rate_limit(request_, clock):
    # Given a limiter of 1 call per second with no burst, already spent
    limiter = RateLimiter(rate_per_second=1, burst=1, clock=clock, sleep=clock.sleep)
    assert limiter.acquire(ENV.alias, timeout=0)
    transport = ScriptedTransport(OK)

    # When a trigger runs
    outcome = trigger_with_retries(
        transport, request_, budget_seconds=5, limiter=limiter, sleep=clock.sleep, clock=clock
    )

    # Then it waited about a second for a token before its one attempt
    assert outcome.attempts == 1
    assert sum(clock.sleeps) == pytest.approx(1.0)


def test_rate_limit_beyond_the_budget_fails_the_trigger_without_calling_airflow(request_, clock):
    limiter = RateLimiter(rate_per_second=0.01, burst=1, clock=clock, sleep=clock.sleep)
    assert limiter.acquire(ENV.alias, timeout=0)
    transport = ScriptedTransport(OK)

    with pytest.raises(TriggerFailedError) as failed:
        trigger_with_retries(
            transport, request_, budget_seconds=5, limiter=limiter, sleep=clock.sleep, clock=clock
        )

    assert failed.value.attempts == 0
    assert transport.calls == 0
