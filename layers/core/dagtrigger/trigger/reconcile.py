"""Run tracking: finish abandoned claims, then follow open triggers to their runs' final states.

A scheduled function calls ``reconcile_open_triggers``. First it takes over claims whose
holder died between claiming and recording (their lease ran out) and starts their runs with the
recorded run id, so no accepted event waits for a redelivery that may never come (a schedule's
retry that found the claim still leased, a webhook whose sender does not retry). Then it reads
open records by status (a GSI, never a scan), asks the environment's transport for each run's
state and records the change. A failure for one record is logged and left for the next pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import DagTriggerError, InvalidTransitionError, TriggerFailedError
from dagtrigger.ledger import TriggerStatus
from dagtrigger.observability import MetricName, count, logger
from dagtrigger.routes.model import RoutesFile
from dagtrigger.trigger.execute import resume_trigger

#: Airflow run states and the history status each one means
RUN_STATE_STATUS = {
    "queued": TriggerStatus.TRIGGERED,
    "running": TriggerStatus.RUNNING,
    "success": TriggerStatus.SUCCESS,
    "failed": TriggerStatus.FAILED,
}


_RUN_METRICS = {
    TriggerStatus.RUNNING: MetricName.RUN_RUNNING,
    TriggerStatus.SUCCESS: MetricName.RUN_SUCCESS,
    TriggerStatus.FAILED: MetricName.RUN_FAILED,
}


@dataclass
class ReconcileSummary:
    checked: int = 0
    changed: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    errors: int = 0
    #: abandoned claims taken over and started (or found started) in this pass
    resumed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "changed": self.changed,
            "missing": self.missing,
            "errors": self.errors,
            "resumed": self.resumed,
        }


def reconcile_open_triggers(
    deps: Dependencies,
    *,
    budget_seconds: float = 50.0,
    page_size: int = 100,
    clock: Callable[[], float] = time.monotonic,
) -> ReconcileSummary:
    """Finish abandoned claims, then update every TRIGGERED or RUNNING record whose DAG run
    has moved on, oldest first."""
    deadline = clock() + budget_seconds
    summary = ReconcileSummary()
    routes = deps.routes.get()
    _resume_abandoned_claims(routes, deps, summary, page_size, lambda: clock() < deadline)
    for status in (TriggerStatus.TRIGGERED, TriggerStatus.RUNNING):
        cursor: str | None = None
        while clock() < deadline:
            page = deps.ledger.query_by_status(
                status, limit=page_size, cursor=cursor, newest_first=False
            )
            for record in page.items:
                if clock() >= deadline:
                    break
                _reconcile_one(record, status, routes, deps, summary)
            cursor = page.next_cursor
            if cursor is None:
                break
    count(MetricName.RECONCILED, summary.checked)
    logger.info("reconciled open triggers", extra=summary.as_dict())
    return summary


def _resume_abandoned_claims(
    routes: RoutesFile,
    deps: Dependencies,
    summary: ReconcileSummary,
    page_size: int,
    time_left: Callable[[], bool],
) -> None:
    cursor: str | None = None
    while time_left():
        page = deps.ledger.abandoned_claims(limit=page_size, cursor=cursor)
        for record in page.items:
            if not time_left():
                return
            _resume_one(record, routes, deps, summary)
        cursor = page.next_cursor
        if cursor is None:
            return


def _resume_one(
    record: dict[str, Any], routes: RoutesFile, deps: Dependencies, summary: ReconcileSummary
) -> None:
    trigger_id = record["trigger_id"]
    alias = record.get("environment")
    if alias not in routes.environments:
        logger.warning(
            "abandoned claim names no known environment",
            extra={"trigger_id": trigger_id, "environment": alias},
        )
        summary.errors += 1
        return
    try:
        owned = deps.ledger.take_over_abandoned(trigger_id)
    except InvalidTransitionError:
        return  # a redelivery or another pass took it over first
    try:
        resume_trigger(owned, routes.environment_ref(alias), deps)
    except TriggerFailedError:
        summary.errors += 1  # recorded TRIGGER_FAILED: a redelivery or a replay retries it
        return
    summary.resumed += 1
    count(MetricName.CLAIM_RESUMED)


def _reconcile_one(
    record: dict[str, Any],
    status: TriggerStatus,
    routes: RoutesFile,
    deps: Dependencies,
    summary: ReconcileSummary,
) -> None:
    summary.checked += 1
    alias = record.get("environment")
    dag_id, dag_run_id = record.get("dag_id"), record.get("dag_run_id")
    if alias not in routes.environments or not dag_id or not dag_run_id:
        logger.warning(
            "open trigger names no known environment or run",
            extra={"trigger_id": record["trigger_id"], "environment": alias},
        )
        summary.errors += 1
        return
    transport = deps.transport_for(routes.environment_ref(alias))
    try:
        state = transport.get_dag_run_state(
            dag_id, dag_run_id, triggered_after=_triggered_at(record)
        )
    except DagTriggerError as exc:
        logger.warning(
            "could not read the DAG run state; retrying next pass",
            extra={"trigger_id": record["trigger_id"], "error": str(exc)},
        )
        summary.errors += 1
        return
    if state is None:
        summary.missing += 1
        return
    new_status = RUN_STATE_STATUS.get(state)
    if new_status is None or new_status is status:
        return
    try:
        deps.ledger.update_run_state(record["trigger_id"], status=new_status, airflow_state=state)
    except InvalidTransitionError as exc:
        # Another reconciler pass got there first: nothing to do.
        logger.info(
            "status already moved on", extra={"trigger_id": record["trigger_id"], "to": str(exc)}
        )
        return
    summary.changed[new_status.value] = summary.changed.get(new_status.value, 0) + 1
    count(_RUN_METRICS[new_status])


def _triggered_at(record: dict[str, Any]) -> datetime | None:
    """When the ledger says we triggered the run (lets a transport narrow its search)."""
    value = record.get("triggered_at")
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        logger.warning(
            "open trigger has an unreadable triggered_at; searching without it",
            extra={"trigger_id": record.get("trigger_id"), "triggered_at": value[:40]},
        )
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
