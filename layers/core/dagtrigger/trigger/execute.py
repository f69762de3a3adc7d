"""One trigger, whatever its source: claim it in the ledger, start the DAG run, record the outcome.

The ledger claim makes redelivered events find their record instead of starting work again;
the deterministic ``dag_run_id`` makes Airflow itself refuse a second run if the ledger write
was lost. See the design brief, "Idempotency, in two layers".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import RejectedError, TriggerFailedError
from dagtrigger.ledger import ClaimOutcome, NewTrigger, TriggerStatus
from dagtrigger.observability import MetricName, count, logger
from dagtrigger.transports.base import EnvironmentRef, TriggerRequest
from dagtrigger.transports.retry import trigger_with_retries
from dagtrigger.trigger.paused_dags import paused_dag_warnings


class TriggerDisposition(StrEnum):
    TRIGGERED = "triggered"
    ALREADY_TRIGGERED = "already_triggered"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    IGNORED = "ignored"


@dataclass(frozen=True)
class TriggerOutcome:
    trigger_id: str
    disposition: TriggerDisposition
    record: dict[str, Any]


def execute_trigger(
    new: NewTrigger, environment: EnvironmentRef, deps: Dependencies
) -> TriggerOutcome:
    """Claim ``new`` and start its DAG run unless another delivery already did.

    A delivery that finds the trigger claimed by a live attempt is a duplicate; if that attempt
    dies, the reconciler takes the claim over once its lease ends (``resume_trigger``).
    Raises ``TriggerFailedError`` when transient failures outlast the retry budget: the record
    then says TRIGGER_FAILED and the caller lets its queue deliver the event again.
    """
    if new.dag_id is None or new.dag_run_id is None or new.conf is None:
        raise ValueError(f"trigger {new.trigger_id} needs a dag_id, a dag_run_id and a conf")
    logger.set_correlation_id(new.trigger_id)
    claim = deps.ledger.claim(new)
    if claim.outcome is ClaimOutcome.DUPLICATE:
        count(MetricName.DUPLICATE)
        logger.info(
            "duplicate delivery, nothing started",
            extra={
                "status": claim.record.get("status"),
                "deliveries": claim.record.get("deliveries"),
            },
        )
        return TriggerOutcome(new.trigger_id, TriggerDisposition.DUPLICATE, claim.record)
    recorded: dict[str, Any] = claim.record if claim.outcome is ClaimOutcome.RETRY else {}
    recorded_conf = recorded.get("conf")
    request = TriggerRequest(
        environment=environment,
        dag_id=new.dag_id,
        # A retry keeps what the first attempt recorded, even when this delivery computes
        # another run id (a backfill's event is not the original one): Airflow then refuses a
        # second run if the first attempt did start one.
        dag_run_id=str(recorded.get("dag_run_id") or new.dag_run_id),
        conf=recorded_conf if isinstance(recorded_conf, dict) else new.conf,
        note=new.note,
        logical_date=new.logical_date,
    )
    return _start_and_record(new.trigger_id, request, deps)


def resume_trigger(
    record: dict[str, Any],
    environment: EnvironmentRef,
    deps: Dependencies,
    *,
    replayed_by: str | None = None,
) -> TriggerOutcome:
    """Start the run of a claim this caller has taken over (``take_over_abandoned``), or
    reopened for ``replayed_by`` (``reopen_for_replay``).

    The run id is the one recorded, so if an earlier attempt had started the run, Airflow says
    so and the record says TRIGGERED: a takeover or a replay never starts a second run. Raises
    ``TriggerFailedError`` (recorded TRIGGER_FAILED) as ``execute_trigger`` does.
    """
    trigger_id = str(record["trigger_id"])
    logger.set_correlation_id(trigger_id)
    conf = record.get("conf")
    if not isinstance(conf, dict):
        message = "the abandoned claim kept no conf (too large to store): replay it"
        deps.ledger.mark_trigger_failed(trigger_id, message=message, attempts=0)
        raise TriggerFailedError(message, attempts=0)
    requested = record.get("requested_logical_date")
    request = TriggerRequest(
        environment=environment,
        dag_id=str(record["dag_id"]),
        dag_run_id=str(record["dag_run_id"]),
        conf=conf,
        note=record.get("note"),
        logical_date=datetime.fromisoformat(requested) if requested else None,
    )
    if replayed_by is None:
        logger.warning("taking over a claim whose holder stopped before recording an outcome")
    else:
        logger.info(
            "replaying the trigger in place: its recorded run id and conf",
            extra={"replayed_by": replayed_by, "dag_run_id": request.dag_run_id},
        )
    return _start_and_record(trigger_id, request, deps)


def _start_and_record(
    trigger_id: str, request: TriggerRequest, deps: Dependencies
) -> TriggerOutcome:
    """Start the run through the environment's transport and record what became of it."""
    transport = deps.transport_for(request.environment)
    try:
        outcome = trigger_with_retries(
            transport,
            request,
            budget_seconds=deps.settings.trigger_budget_seconds,
            limiter=deps.limiter,
        )
    except RejectedError as rejected:
        record = deps.ledger.mark_rejected(
            trigger_id, code=rejected.code, message=rejected.message, attempts=rejected.attempts
        )
        count(MetricName.REJECTED)
        logger.warning(
            "trigger rejected", extra={"code": rejected.code, "reason": rejected.message}
        )
        return TriggerOutcome(trigger_id, TriggerDisposition.REJECTED, record)
    except TriggerFailedError as failed:
        deps.ledger.mark_trigger_failed(
            trigger_id, message=failed.message, attempts=failed.attempts
        )
        count(MetricName.TRIGGER_FAILED)
        if failed.access_refused:
            count(MetricName.ACCESS_REFUSED)
            logger.error(
                "Airflow or MWAA refused our access: the event is kept for a retry",
                extra={"reason": failed.message},
            )
        else:
            logger.error("trigger failed after retries", extra={"attempts": failed.attempts})
        raise

    record = deps.ledger.mark_triggered(
        trigger_id, result=outcome.result, attempts=outcome.attempts
    )
    if outcome.result.already_existed:
        count(MetricName.ALREADY_TRIGGERED)
        logger.info("Airflow already had this run: recorded as triggered")
        disposition = TriggerDisposition.ALREADY_TRIGGERED
    else:
        count(MetricName.TRIGGERED)
        disposition = TriggerDisposition.TRIGGERED
    if outcome.result.dag_paused and paused_dag_warnings.first(
        (request.environment.name, request.dag_id)
    ):
        minutes = paused_dag_warnings.interval_seconds / 60
        logger.warning(
            "DAG is paused: its runs stay queued until it is unpaused (said once per DAG every "
            f"{minutes:.0f} minutes; every trigger record has dag_paused)",
            extra={"dag_id": request.dag_id, "environment": request.environment.name},
        )
    logger.info(
        "DAG run triggered",
        extra={
            "dag_id": request.dag_id,
            "dag_run_id": request.dag_run_id,
            "attempts": outcome.attempts,
        },
    )
    return TriggerOutcome(trigger_id, disposition, record)


def record_without_trigger(
    new: NewTrigger, deps: Dependencies, *, status: TriggerStatus, code: str, message: str
) -> TriggerOutcome:
    """Record an event that starts nothing (REJECTED or IGNORED), once per source identity."""
    logger.set_correlation_id(new.trigger_id)
    claim = deps.ledger.record_final(new, status=status, code=code, message=message)
    if claim.outcome is ClaimOutcome.DUPLICATE:
        count(MetricName.DUPLICATE)
        return TriggerOutcome(new.trigger_id, TriggerDisposition.DUPLICATE, claim.record)
    if status is TriggerStatus.REJECTED:
        count(MetricName.REJECTED)
        logger.warning("event rejected", extra={"code": code, "reason": message})
        return TriggerOutcome(new.trigger_id, TriggerDisposition.REJECTED, claim.record)
    count(MetricName.IGNORED)
    logger.info("event ignored", extra={"code": code, "reason": message})
    return TriggerOutcome(new.trigger_id, TriggerDisposition.IGNORED, claim.record)


def rejection_of(record: dict[str, Any]) -> RejectedError:
    """A REJECTED record as the error that rejected it, to answer the caller with."""
    return RejectedError(
        str(record.get("reject_code") or ""),
        str(record.get("reason") or "rejected"),
        trigger_id=record.get("trigger_id"),
    )
