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
    new: NewTrigger,
    environment: EnvironmentRef,
    deps: Dependencies,
    *,
    logical_date: datetime | None = None,
) -> TriggerOutcome:
    """Claim ``new`` and start its DAG run unless another delivery already did.

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

    request = TriggerRequest(
        environment=environment,
        dag_id=new.dag_id,
        dag_run_id=new.dag_run_id,
        conf=new.conf,
        note=new.note,
        logical_date=logical_date,
    )
    transport = deps.transport_for(environment)
    try:
        outcome = trigger_with_retries(
            transport,
            request,
            budget_seconds=deps.settings.trigger_budget_seconds,
            limiter=deps.limiter,
        )
    except RejectedError as rejected:
        record = deps.ledger.mark_rejected(
            new.trigger_id, code=rejected.code, message=rejected.message, attempts=rejected.attempts
        )
        count(MetricName.REJECTED)
        logger.warning(
            "trigger rejected", extra={"code": rejected.code, "reason": rejected.message}
        )
        return TriggerOutcome(new.trigger_id, TriggerDisposition.REJECTED, record)
    except TriggerFailedError as failed:
        deps.ledger.mark_trigger_failed(
            new.trigger_id, message=failed.message, attempts=failed.attempts
        )
        count(MetricName.TRIGGER_FAILED)
        logger.error("trigger failed after retries", extra={"attempts": failed.attempts})
        raise

    record = deps.ledger.mark_triggered(
        new.trigger_id, result=outcome.result, attempts=outcome.attempts
    )
    if outcome.result.already_existed:
        count(MetricName.ALREADY_TRIGGERED)
        logger.info("Airflow already had this run: recorded as triggered")
        disposition = TriggerDisposition.ALREADY_TRIGGERED
    else:
        count(MetricName.TRIGGERED)
        disposition = TriggerDisposition.TRIGGERED
    if outcome.result.dag_paused:
        logger.warning("DAG is paused: the run stays queued until it is unpaused")
    logger.info(
        "DAG run triggered",
        extra={"dag_id": new.dag_id, "dag_run_id": new.dag_run_id, "attempts": outcome.attempts},
    )
    return TriggerOutcome(new.trigger_id, disposition, record)


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
