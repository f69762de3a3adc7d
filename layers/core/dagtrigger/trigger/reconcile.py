"""Run tracking: finish abandoned claims, then follow open triggers to their runs' final states.

A scheduled function calls ``reconcile_open_triggers`` every ``reconcile_interval_seconds``.

1. It takes over claims whose holder died between claiming and recording (their lease ran
   out) and starts their runs with the recorded run id, so no accepted event waits for a
   redelivery that may never come.
2. It reads the open records (TRIGGERED, RUNNING) by status (a GSI, never a scan) and picks
   those due this pass: a young record every pass, an older one less often (every
   ``age / 10`` passes, at most every 30), spread over passes by its id.
3. It asks Airflow once per DAG with due records (``started_run_states``: one batch list,
   whatever the number of runs), never once per record, DAGs with the oldest due record first,
   and records each change. A run that ended FAILED costs one more call, for its failed task
   ids (``failed_task_ids``), recorded with the status. A DAG whose runs stay queued past a pass
   costs one read of its paused flag (cached by the transport), kept on the queued records as
   ``dag_paused``. MWAA's calls come from the environment's shared budget as background work:
   when triggers use it, the pass leaves the environment (or the failed run) for the next one.
4. A record still open ``reconcile_horizon_hours`` after its trigger gets one last look at its
   run and ends: with the run's final state, or as UNKNOWN with the reason, so nothing is
   followed forever.
5. Each run that ends (SUCCESS, FAILED, UNKNOWN) publishes one "DAG Run Finished" event, and a
   failure notice when a topic is configured, through the record's outbox; a pass first
   delivers what earlier passes left due (``run_outcomes``: what is guaranteed).

A failure for one DAG or record is logged and left for the next pass.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import (
    DagTriggerError,
    InvalidTransitionError,
    TransientTriggerError,
    TriggerFailedError,
)
from dagtrigger.ledger import RUN_ENDINGS, TriggerStatus
from dagtrigger.observability import MetricName, count, logger, record_oldest_open_age
from dagtrigger.routes.model import RoutesFile
from dagtrigger.transports.base import AirflowTransport, FailedTasks, RunTimes
from dagtrigger.transports.rate_budget import RateBudgetExhausted
from dagtrigger.trigger.execute import resume_trigger
from dagtrigger.trigger.run_outcomes import deliver_run_outcome, deliveries_for, redeliver_pending

#: Airflow run states and the history status each one means
RUN_STATE_STATUS = {
    "queued": TriggerStatus.TRIGGERED,
    "running": TriggerStatus.RUNNING,
    "success": TriggerStatus.SUCCESS,
    "failed": TriggerStatus.FAILED,
}
_FINAL_RUN_STATES = frozenset({"success", "failed"})

_RUN_METRICS = {
    TriggerStatus.RUNNING: MetricName.RUN_RUNNING,
    TriggerStatus.SUCCESS: MetricName.RUN_SUCCESS,
    TriggerStatus.FAILED: MetricName.RUN_FAILED,
}

#: how long before our recorded trigger time a run may have started (clock skew with Airflow)
START_MARGIN = timedelta(minutes=5)
#: a record is read every pass while younger than this many passes ...
_YOUNG_PASSES = 10
#: ... and after that every age/10 passes, but at least every this many passes
_MAX_PASSES_BETWEEN_CHECKS = 30
#: open records read from the ledger in one pass (a DynamoDB page each 1,000)
MAX_OPEN_RECORDS_PER_PASS = 20_000
#: records at the horizon given their last look (one Airflow call each) in one pass
MAX_ENDED_PER_PASS = 50
_LEDGER_PAGE = 1000


@dataclass
class ReconcileSummary:
    checked: int = 0
    changed: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    #: abandoned claims taken over and started (or found started) in this pass
    resumed: int = 0
    #: DAGs asked about (one Airflow list read each)
    dags_listed: int = 0
    #: due records left for the next pass because triggers were using the budget
    deferred: int = 0
    #: records ended at the horizon as UNKNOWN
    ended_unknown: int = 0
    #: ended runs whose event (and notice) went out in this pass, and those left due
    told: int = 0
    left_to_tell: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "changed": self.changed,
            "errors": self.errors,
            "resumed": self.resumed,
            "dags_listed": self.dags_listed,
            "deferred": self.deferred,
            "ended_unknown": self.ended_unknown,
            "told": self.told,
            "left_to_tell": self.left_to_tell,
        }


@dataclass
class _OpenRecords:
    #: (environment alias, dag id) -> the records due this pass
    due: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    at_horizon: list[dict[str, Any]] = field(default_factory=list)
    #: age of the oldest open record read (the reconciler's lag, published once a pass)
    oldest_age_seconds: float = 0.0


def reconcile_open_triggers(
    deps: Dependencies,
    *,
    budget_seconds: float = 50.0,
    clock: Callable[[], float] = time.monotonic,
) -> ReconcileSummary:
    """Finish abandoned claims, then update the open records whose runs have moved on."""
    deadline = clock() + budget_seconds

    def time_left() -> bool:
        return clock() < deadline

    summary = ReconcileSummary()
    routes = deps.routes.get()
    _resume_abandoned_claims(routes, deps, summary, 100, time_left)
    summary.told, summary.left_to_tell = redeliver_pending(deps, time_left)
    now = deps.clock()
    open_records = _open_records_due(deps, routes, now, summary, time_left)
    _follow_due_runs(open_records.due, routes, deps, summary, time_left, now)
    _end_at_horizon(open_records.at_horizon[:MAX_ENDED_PER_PASS], routes, deps, summary, time_left)
    count(MetricName.RECONCILED, summary.checked)
    record_oldest_open_age(open_records.oldest_age_seconds)
    logger.info("reconciled open triggers", extra=summary.as_dict())
    return summary


def _open_records_due(
    deps: Dependencies,
    routes: RoutesFile,
    now: datetime,
    summary: ReconcileSummary,
    time_left: Callable[[], bool],
) -> _OpenRecords:
    settings = deps.settings
    horizon = timedelta(hours=settings.reconcile_horizon_hours)
    interval = settings.reconcile_interval_seconds
    found = _OpenRecords()
    for record in _open_records(deps, time_left):
        triggered_at = _triggered_at(record)
        alias, dag_id = record.get("environment"), record.get("dag_id")
        if (
            triggered_at is None
            or alias not in routes.environments
            or not dag_id
            or not record.get("dag_run_id")
        ):
            logger.warning(
                "open trigger names no known environment, run or trigger time",
                extra={"trigger_id": record.get("trigger_id"), "environment": alias},
            )
            summary.errors += 1
            continue
        age = now - triggered_at
        found.oldest_age_seconds = max(found.oldest_age_seconds, age.total_seconds())
        if age >= horizon:
            found.at_horizon.append(record)
        elif is_due(record["trigger_id"], age, now, interval_seconds=interval):
            found.due.setdefault((str(alias), str(dag_id)), []).append(record)
    return found


def _open_records(deps: Dependencies, time_left: Callable[[], bool]) -> Iterator[dict[str, Any]]:
    """Open records, oldest first per status, at most ``MAX_OPEN_RECORDS_PER_PASS``."""
    read = 0
    for status in (TriggerStatus.TRIGGERED, TriggerStatus.RUNNING):
        cursor: str | None = None
        while time_left() and read < MAX_OPEN_RECORDS_PER_PASS:
            page = deps.ledger.query_by_status(
                status, limit=_LEDGER_PAGE, cursor=cursor, newest_first=False
            )
            read += len(page.items)
            yield from page.items
            cursor = page.next_cursor
            if cursor is None:
                break


def is_due(trigger_id: str, age: timedelta, now: datetime, *, interval_seconds: int) -> bool:
    """Whether a record of this age is read in the pass running at ``now``.

    Records younger than ``_YOUNG_PASSES`` passes are read every pass; older ones every
    ``age / 10`` passes (at most ``_MAX_PASSES_BETWEEN_CHECKS``), each on passes chosen by its
    id, so the old records share the passes evenly instead of all coming due together.
    """
    passes_old = int(age.total_seconds() // interval_seconds)
    every = min(max(1, passes_old // _YOUNG_PASSES), _MAX_PASSES_BETWEEN_CHECKS)
    if every == 1:
        return True
    pass_number = int(now.timestamp() // interval_seconds)
    return (pass_number + zlib.crc32(trigger_id.encode())) % every == 0


def _follow_due_runs(
    due: dict[tuple[str, str], list[dict[str, Any]]],
    routes: RoutesFile,
    deps: Dependencies,
    summary: ReconcileSummary,
    time_left: Callable[[], bool],
    now: datetime,
) -> None:
    """One list read per DAG; the DAGs waiting longest first, so none starves behind others."""
    busy_environments: set[str] = set()
    by_oldest = sorted(due.items(), key=lambda item: min(_sort_time(r) for r in item[1]))
    for (alias, dag_id), records in by_oldest:
        if not time_left() or alias in busy_environments:
            summary.deferred += len(records)
            continue
        transport = deps.transport_for(routes.environment_ref(alias))
        since = min(_triggered_at(record) or datetime.now(UTC) for record in records)
        try:
            listing = transport.started_run_states(dag_id, started_since=since - START_MARGIN)
        except RateBudgetExhausted:
            busy_environments.add(alias)  # triggers come first: this environment waits
            summary.deferred += len(records)
            count(MetricName.RECONCILE_DEFERRED)
            continue
        except DagTriggerError as exc:
            logger.warning(
                "could not list the DAG's runs; retrying next pass",
                extra={"environment": alias, "dag_id": dag_id, "error": str(exc)},
            )
            summary.errors += 1
            continue
        summary.dags_listed += 1
        if not listing.complete:
            logger.warning(
                "more started runs than one read lists; the rest are read next passes",
                extra={"environment": alias, "dag_id": dag_id, "listed": len(listing.states)},
            )
        queued: list[dict[str, Any]] = []
        for record in records:
            summary.checked += 1
            run_id = record["dag_run_id"]
            state = listing.states.get(run_id)
            if state is None:
                queued.append(record)
                continue
            try:
                _record_state(
                    record, state, transport, deps, summary, times=listing.times.get(run_id)
                )
            except RateBudgetExhausted:
                summary.deferred += 1  # its failed tasks wait for spare budget
                count(MetricName.RECONCILE_DEFERRED)
            except TransientTriggerError as exc:
                logger.warning(
                    "could not read the failed run's tasks; retrying next pass",
                    extra={"trigger_id": record["trigger_id"], "error": str(exc)},
                )
                summary.errors += 1
        interval = timedelta(seconds=deps.settings.reconcile_interval_seconds)
        waiting = [record for record in queued if now - _sort_time(record) >= interval]
        _keep_paused_flags_current(waiting, dag_id, transport, deps)


def _keep_paused_flags_current(
    waiting: list[dict[str, Any]], dag_id: str, transport: AirflowTransport, deps: Dependencies
) -> None:
    """One read of the DAG's paused flag (the transport reuses it a while), written only on the
    queued records it changes, so a run waiting on a paused DAG says so, and stops saying so
    once the DAG is unpaused."""
    if not waiting:
        return
    paused = transport.dag_paused(dag_id)
    if paused is None:
        return  # the transport cannot tell, or the budget had no room: keep what is recorded
    for record in waiting:
        if bool(record.get("dag_paused")) is not paused:
            deps.ledger.set_dag_paused(record["trigger_id"], paused=paused)


def _end_at_horizon(
    records: list[dict[str, Any]],
    routes: RoutesFile,
    deps: Dependencies,
    summary: ReconcileSummary,
    time_left: Callable[[], bool],
) -> None:
    """A last look at each run; a run that has not finished ends its record as UNKNOWN."""
    hours = deps.settings.reconcile_horizon_hours
    for record in records:
        if not time_left():
            return
        transport = deps.transport_for(routes.environment_ref(record["environment"]))
        try:
            state = transport.get_dag_run_state(
                record["dag_id"], record["dag_run_id"], triggered_after=_triggered_at(record)
            )
        except DagTriggerError as exc:
            logger.warning(
                "could not give the run its last look; retrying next pass",
                extra={"trigger_id": record["trigger_id"], "error": str(exc)},
            )
            summary.errors += 1
            continue
        summary.checked += 1
        if state in _FINAL_RUN_STATES:
            try:
                _record_state(record, state, transport, deps, summary, last_look=True)
            except RateBudgetExhausted:
                summary.deferred += 1
            continue
        seen = f"Airflow still says {state!r}" if state else "Airflow has no such run"
        reason = (
            f"not seen to finish within the {hours} h horizon: {seen}; dagtrigger stopped "
            "following the run (the DAG run itself is unchanged)"
        )
        try:
            ended = deps.ledger.mark_unknown(
                record["trigger_id"],
                reason=reason,
                deliveries=deliveries_for(TriggerStatus.UNKNOWN, deps.settings),
            )
        except InvalidTransitionError:
            continue  # another pass ended it first
        summary.ended_unknown += 1
        count(MetricName.RUN_UNKNOWN)
        logger.warning(
            "open trigger ended at the horizon",
            extra={"trigger_id": record["trigger_id"], "reason": reason},
        )
        _tell(ended, deps, summary)


def _record_state(
    record: dict[str, Any],
    state: str,
    transport: AirflowTransport,
    deps: Dependencies,
    summary: ReconcileSummary,
    *,
    times: RunTimes | None = None,
    last_look: bool = False,
) -> None:
    """Record the run's new status; an ending is told once, by the pass whose write won.

    Raises ``RateBudgetExhausted`` (and, before the last look, ``TransientTriggerError``) when
    a failed run's tasks cannot be read now: the record stays open for the next pass.
    """
    status = TriggerStatus(record["status"])
    new_status = RUN_STATE_STATUS.get(state)
    if new_status is None or new_status is status or new_status is TriggerStatus.TRIGGERED:
        return
    failed_tasks = (
        _failed_tasks(record, transport, last_look=last_look)
        if new_status is TriggerStatus.FAILED
        else None
    )
    times = times or RunTimes()
    try:
        updated = deps.ledger.update_run_state(
            record["trigger_id"],
            status=new_status,
            airflow_state=state,
            start_date=times.started_at,
            end_date=times.ended_at,
            failed_tasks=failed_tasks,
            deliveries=(
                deliveries_for(new_status, deps.settings) if new_status in RUN_ENDINGS else ()
            ),
        )
    except InvalidTransitionError as exc:
        # Another reconciler pass got there first: it owns the ending and telling of it.
        logger.info(
            "status already moved on", extra={"trigger_id": record["trigger_id"], "to": str(exc)}
        )
        return
    summary.changed[new_status.value] = summary.changed.get(new_status.value, 0) + 1
    count(_RUN_METRICS[new_status])
    if new_status in RUN_ENDINGS:
        _tell(updated, deps, summary)


def _failed_tasks(
    record: dict[str, Any], transport: AirflowTransport, *, last_look: bool
) -> FailedTasks:
    """The run's failed tasks, or why they cannot be known; a transient failure is raised so
    that the next pass asks again, except at the last look, where the run ends without them."""
    try:
        return transport.failed_task_ids(record["dag_id"], record["dag_run_id"])
    except RateBudgetExhausted:
        raise
    except TransientTriggerError:
        if not last_look:
            raise
        reason = "Airflow did not answer at the reconciler's last look"
    except DagTriggerError as exc:
        reason = str(exc)
    logger.warning(
        "recording the failed run without its failed tasks",
        extra={"trigger_id": record["trigger_id"], "reason": reason},
    )
    return FailedTasks(unavailable=reason)


def _tell(ended: dict[str, Any], deps: Dependencies, summary: ReconcileSummary) -> None:
    if deliver_run_outcome(ended, deps):
        summary.told += 1
    else:
        summary.left_to_tell += 1


def _sort_time(record: dict[str, Any]) -> datetime:
    return _triggered_at(record) or datetime.max.replace(tzinfo=UTC)


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
