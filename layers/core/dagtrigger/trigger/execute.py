"""One trigger, whatever its source: claim it in the ledger, start the DAG run, record the outcome.

The ledger claim makes redelivered events find their record instead of starting work again;
the deterministic ``dag_run_id`` makes Airflow itself refuse a second run if the ledger write
was lost. See the design brief, "Idempotency, in two layers". An asset route's trigger creates
an asset event instead, and since Airflow has no key that refuses a second one, whoever may
follow an attempt of unknown outcome looks for that attempt's event first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import RejectedError, TriggerFailedError
from dagtrigger.ledger import ClaimOutcome, NewTrigger, TriggerStatus
from dagtrigger.observability import MetricName, count, logger
from dagtrigger.transports.asset_events import AssetEvent, AssetEventRequest, asset_events_of
from dagtrigger.transports.base import EnvironmentRef, TriggerRequest
from dagtrigger.transports.retry import RetryOutcome, call_with_retries, trigger_with_retries
from dagtrigger.trigger.paused_dags import paused_dag_warnings

Result = TypeVar("Result")


class TriggerDisposition(StrEnum):
    TRIGGERED = "triggered"
    ALREADY_TRIGGERED = "already_triggered"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    IGNORED = "ignored"
    #: the object joined a file set (the set's run is its run)
    JOINED_SET = "joined_set"
    #: the object arrived after its file set completed
    LATE = "late"


@dataclass(frozen=True)
class TriggerOutcome:
    trigger_id: str
    disposition: TriggerDisposition
    record: dict[str, Any]


def execute_trigger(
    new: NewTrigger, environment: EnvironmentRef, deps: Dependencies
) -> TriggerOutcome:
    """Claim ``new`` and start its DAG run (an asset route: create its asset event) unless
    another delivery already did.

    A delivery that finds the trigger claimed by a live attempt is a duplicate; if that attempt
    dies, the reconciler takes the claim over once its lease ends (``resume_trigger``).
    Raises ``TriggerFailedError`` when transient failures outlast the retry budget: the record
    then says TRIGGER_FAILED and the caller lets its queue deliver the event again.
    """
    starts_run = new.dag_id is not None and new.dag_run_id is not None
    if new.conf is None or not (starts_run or new.asset_uri is not None):
        raise ValueError(
            f"trigger {new.trigger_id} needs a conf and a dag_id with a dag_run_id, or an asset"
        )
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
    conf = recorded_conf if isinstance(recorded_conf, dict) else new.conf
    if new.asset_uri is not None:
        event = AssetEventRequest(
            environment=environment,
            uri=str(recorded.get("asset_uri") or new.asset_uri),
            extra=conf,
            trigger_id=new.trigger_id,
        )
        # A retry's earlier attempt may have created the event before it failed or died.
        earlier_attempt = claim.outcome is ClaimOutcome.RETRY
        return _create_event_and_record(event, deps, look_first=earlier_attempt)
    request = TriggerRequest(
        environment=environment,
        dag_id=str(new.dag_id),
        # A retry keeps what the first attempt recorded, even when this delivery computes
        # another run id (a backfill's event is not the original one): Airflow then refuses a
        # second run if the first attempt did start one.
        dag_run_id=str(recorded.get("dag_run_id") or new.dag_run_id),
        conf=conf,
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
    so and the record says TRIGGERED: a takeover or a replay never starts a second run. An
    asset route's trigger first looks for the event an earlier attempt may have created, and
    records that one if Airflow has it. Raises ``TriggerFailedError`` (recorded
    TRIGGER_FAILED) as ``execute_trigger`` does.
    """
    trigger_id = str(record["trigger_id"])
    logger.set_correlation_id(trigger_id)
    conf = record.get("conf")
    if not isinstance(conf, dict):
        message = "the abandoned claim kept no conf (too large to store): replay it"
        deps.ledger.mark_trigger_failed(trigger_id, message=message, attempts=0)
        raise TriggerFailedError(message, attempts=0)
    if replayed_by is None:
        logger.warning("taking over a claim whose holder stopped before recording an outcome")
    else:
        logger.info(
            "replaying the trigger in place: its recorded run id (or asset) and conf",
            extra={
                "replayed_by": replayed_by,
                "dag_run_id": record.get("dag_run_id"),
                "asset": record.get("asset_uri"),
            },
        )
    if record.get("asset_uri"):
        event = AssetEventRequest(
            environment=environment,
            uri=str(record["asset_uri"]),
            extra=conf,
            trigger_id=trigger_id,
        )
        return _create_event_and_record(event, deps, look_first=True)
    requested = record.get("requested_logical_date")
    request = TriggerRequest(
        environment=environment,
        dag_id=str(record["dag_id"]),
        dag_run_id=str(record["dag_run_id"]),
        conf=conf,
        note=record.get("note"),
        logical_date=datetime.fromisoformat(requested) if requested else None,
    )
    return _start_and_record(trigger_id, request, deps)


def _start_and_record(
    trigger_id: str, request: TriggerRequest, deps: Dependencies
) -> TriggerOutcome:
    """Start the run through the environment's transport and record what became of it."""
    transport = deps.transport_for(request.environment)
    done = _with_outcome_recorded(
        trigger_id,
        deps,
        lambda: trigger_with_retries(
            transport,
            request,
            budget_seconds=deps.settings.trigger_budget_seconds,
            limiter=deps.limiter,
        ),
    )
    if isinstance(done, TriggerOutcome):
        return done
    outcome = done
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


def _create_event_and_record(
    request: AssetEventRequest, deps: Dependencies, *, look_first: bool
) -> TriggerOutcome:
    """Create the asset event (unless Airflow already has the one an earlier attempt created)
    and record it: EVENT_CREATED with Airflow's event id.

    Airflow takes no idempotency key for asset events, so every attempt that may follow one
    whose outcome is unknown (a retry after a timeout, a takeover, a replay) first looks for
    the event by the trigger id it carries in its extra.
    """
    events = asset_events_of(deps.transport_for(request.environment), request.environment)

    def create(attempt: int) -> AssetEvent:
        if look_first or attempt > 1:
            found = events.find(request.uri, request.trigger_id)
            if found is not None:
                return found
        return events.post(request)

    done = _with_outcome_recorded(
        request.trigger_id,
        deps,
        lambda: call_with_retries(
            create,
            environment=request.environment,
            about={"asset": request.uri},
            budget_seconds=deps.settings.trigger_budget_seconds,
            limiter=deps.limiter,
        ),
    )
    if isinstance(done, TriggerOutcome):
        return done
    event = done.result
    record = deps.ledger.mark_event_created(request.trigger_id, event=event, attempts=done.attempts)
    if event.already_existed:
        count(MetricName.ALREADY_TRIGGERED)
        logger.info("Airflow already had this asset event: recorded, not created again")
        disposition = TriggerDisposition.ALREADY_TRIGGERED
    else:
        count(MetricName.ASSET_EVENT_CREATED)
        disposition = TriggerDisposition.TRIGGERED
    logger.info(
        "asset event created",
        extra={"asset": request.uri, "asset_event_id": event.event_id, "attempts": done.attempts},
    )
    return TriggerOutcome(request.trigger_id, disposition, record)


def _with_outcome_recorded(
    trigger_id: str, deps: Dependencies, attempt: Callable[[], RetryOutcome[Result]]
) -> RetryOutcome[Result] | TriggerOutcome:
    """``attempt()``'s outcome; a rejection recorded REJECTED (its outcome returned), a failure
    recorded TRIGGER_FAILED (and raised again, for the event's queue to deliver it later)."""
    try:
        return attempt()
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
