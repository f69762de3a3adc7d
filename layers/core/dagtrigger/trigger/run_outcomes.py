"""Telling others that a DAG run finished: one "DAG Run Finished" event per run, and a notice
of each failure.

Every record the reconciler ends (SUCCESS, FAILED, and UNKNOWN at its horizon) publishes one
event to the EventBridge bus ``run_event_bus_name``: source ``dagtrigger``, detail-type
``DAG Run Finished``, the detail built by ``run_finished_detail``. When ``run_failure_topic_arn``
names an SNS topic, FAILED and UNKNOWN runs are also told there, in words.

What is guaranteed, and how:

* **One owner per ending.** The ledger's conditional status change lets exactly one reconciler
  pass end a run, however many overlap; the same write puts the run's deliveries in the
  record's outbox (``pending_event``), leased to that pass (``TRIGGER_LEASE_SECONDS``). Another
  pass delivers only after the lease ran out, and only after winning a conditional claim of it,
  so overlapping passes never both deliver while the owner is alive.
* **Delivered at least once.** A pass that dies between the status write and ``PutEvents``
  leaves the record in the sparse ``by_pending_event`` index; a later pass (once the lease ran
  out) claims and delivers it. ``PutEvents`` answering an error, or a ``FailedEntryCount``
  above zero, leaves the delivery due and releases the lease, so the next pass retries it;
  ``RunEventFailed`` counts each such failure.
* **Not exactly once on the wire.** If a pass dies after EventBridge accepted the event and
  before the outbox is cleared, or stalls past its lease, the event is published again, with the
  same detail. Consumers that must act once dedupe on ``detail.event_id`` (one per run, the same
  in every copy; EventBridge's own ``id`` differs per copy) or on ``detail.trigger_id``.

The SNS notice is a separate delivery with the same rules, so a failure of one never repeats
the other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dagtrigger.dependencies import Dependencies
from dagtrigger.ledger import RUN_ENDINGS, TriggerStatus
from dagtrigger.observability import MetricName, count, logger
from dagtrigger.settings import Settings

RUN_EVENT_SOURCE = "dagtrigger"
RUN_EVENT_DETAIL_TYPE = "DAG Run Finished"
#: the endings that are also told to the run failure topic
NOTIFIED_ENDINGS = frozenset({TriggerStatus.FAILED, TriggerStatus.UNKNOWN})
#: undelivered events (left by crashed or failed passes) a pass delivers at most
MAX_REDELIVERIES_PER_PASS = 100
#: SNS refuses subjects of 100 characters or more
_SUBJECT_MAX_CHARS = 99


class Delivery(StrEnum):
    """Where a finished run is told; the ledger keeps the ones still due."""

    EVENT = "eventbridge"
    FAILURE_NOTICE = "sns"


def deliveries_for(status: TriggerStatus, settings: Settings) -> tuple[Delivery, ...]:
    """What the ending ``status`` owes: always the event; the notice for a failure, if a topic
    is configured."""
    if status not in RUN_ENDINGS:
        raise ValueError(f"only a run's ending is told, not {status}")
    if settings.run_failure_topic_arn and status in NOTIFIED_ENDINGS:
        return (Delivery.EVENT, Delivery.FAILURE_NOTICE)
    return (Delivery.EVENT,)


def run_finished_event_id(trigger_id: str) -> str:
    """The event's own id: one per run, the same in every copy a redelivery publishes."""
    return f"dagtrigger:run-finished:{trigger_id}"


def run_finished_detail(record: dict[str, Any]) -> dict[str, Any]:
    """The ``DAG Run Finished`` detail of an ended record (no conf: it may hold anything)."""
    status = record["status"]
    detail: dict[str, Any] = {
        "event_id": run_finished_event_id(record["trigger_id"]),
        "trigger_id": record["trigger_id"],
        "source_type": record.get("source_type"),
        "source_key": record.get("source_key"),
        "source_ref": record.get("source_ref") or {},
        "route": record.get("route"),
        "environment": record.get("environment"),
        "dag_id": record.get("dag_id"),
        "dag_run_id": record.get("dag_run_id"),
        "state": status,
        "airflow_state": record.get("airflow_state"),
        "timings": {
            "received_at": record.get("created_at"),
            "triggered_at": record.get("triggered_at"),
            "started_at": record.get("start_date"),
            "ended_at": record.get("end_date"),
            "finished_at": record.get("finished_at"),
        },
    }
    if status == TriggerStatus.FAILED:
        detail["failed_tasks"] = list(record.get("failed_tasks") or [])
        detail["failed_task_count"] = record.get("failed_task_count", 0)
        if record.get("failed_tasks_unavailable"):
            detail["failed_tasks_unavailable"] = record["failed_tasks_unavailable"]
    if status == TriggerStatus.UNKNOWN:
        detail["reason"] = record.get("reason")
    optional = {
        "dag_paused": record.get("dag_paused") or None,
        "replays": record.get("replays") or None,  # started by `dagtrigger replay`
    }
    detail.update({name: value for name, value in optional.items() if value is not None})
    return detail


def failure_notice(record: dict[str, Any]) -> tuple[str, str]:
    """The subject and body of a failure's SNS message, for people (no conf, no payloads)."""
    detail = run_finished_detail(record)
    subject = f"dagtrigger: {detail['state']} run of DAG {detail['dag_id']}"
    lines = [
        f"A DAG run that dagtrigger started ended {detail['state']}.",
        "",
        f"DAG:          {detail['dag_id']} (environment {detail['environment']})",
        f"Run id:       {detail['dag_run_id']}",
    ]
    if detail.get("failed_tasks"):
        failed = ", ".join(detail["failed_tasks"])
        lines.append(f"Failed tasks: {failed} ({detail['failed_task_count']} failed in all)")
    elif detail.get("failed_tasks_unavailable"):
        lines.append(f"Failed tasks: unknown ({detail['failed_tasks_unavailable']})")
    if detail.get("reason"):
        lines.append(f"Why:          {detail['reason']}")
    if detail.get("dag_paused"):
        lines.append("Note:         the DAG is paused; its queued runs wait until it is unpaused")
    timings = detail["timings"]
    lines += [
        f"Source:       {detail['source_type']} {detail['source_key']} (route {detail['route']})",
        f"Triggered at: {timings['triggered_at']}",
        f"Started at:   {timings['started_at'] or '-'}",
        f"Ended at:     {timings['ended_at'] or '-'}",
        f"Recorded at:  {timings['finished_at']}",
        f"Trigger id:   {detail['trigger_id']} (dagtrigger show {detail['trigger_id']})",
    ]
    return _ascii_line(subject)[:_SUBJECT_MAX_CHARS], "\n".join(lines) + "\n"


def deliver_run_outcome(record: dict[str, Any], deps: Dependencies) -> bool:
    """Deliver what ending ``record`` left in its outbox (the caller holds its lease); True when
    nothing is left due."""
    due = {str(delivery) for delivery in record.get("pending_deliveries") or ()}
    if not due:
        return True
    sinks = _Sinks(deps)
    delivered = [delivery for delivery in sorted(due) if sinks.deliver(delivery, record)]
    remaining = due - set(delivered)
    deps.ledger.settle_pending_event(record["trigger_id"], delivered=delivered, remaining=remaining)
    return not remaining


def redeliver_pending(deps: Dependencies, time_left: Callable[[], bool]) -> tuple[int, int]:
    """Deliver what earlier passes left due (they crashed, or a delivery failed): (records
    settled, records still due). One page of the sparse index, at most
    ``MAX_REDELIVERIES_PER_PASS`` records."""
    settled = still_due = 0
    for candidate in deps.ledger.pending_events(limit=MAX_REDELIVERIES_PER_PASS).items:
        if not time_left():
            break
        record = deps.ledger.claim_pending_event(candidate["trigger_id"])
        if record is None:
            continue  # delivered meanwhile, or its owner's lease still runs
        logger.info(
            "delivering a finished run's event left due by an earlier pass",
            extra={
                "trigger_id": record["trigger_id"],
                "due": sorted(record.get("pending_deliveries") or ()),
            },
        )
        if deliver_run_outcome(record, deps):
            settled += 1
        else:
            still_due += 1
    return settled, still_due


class _Sinks:
    """EventBridge and SNS as the settings name them, through the composition root's clients."""

    def __init__(self, deps: Dependencies) -> None:
        self._settings = deps.settings
        self._events_client = deps.events_client
        self._sns_client = deps.sns_client

    def deliver(self, delivery: str, record: dict[str, Any]) -> bool:
        if delivery == Delivery.EVENT:
            return self._put_event(record)
        if delivery == Delivery.FAILURE_NOTICE:
            return self._notify_failure(record)
        logger.warning(
            "dropping an unknown delivery of a finished run",
            extra={"trigger_id": record["trigger_id"], "delivery": delivery},
        )
        return True

    def _put_event(self, record: dict[str, Any]) -> bool:
        entry: dict[str, Any] = {
            "Source": RUN_EVENT_SOURCE,
            "DetailType": RUN_EVENT_DETAIL_TYPE,
            "Detail": json.dumps(run_finished_detail(record), default=str),
            "EventBusName": self._settings.run_event_bus_name,
        }
        finished_at = _parsed_time(record.get("finished_at"))
        if finished_at is not None:
            entry["Time"] = finished_at  # the same in every copy: when the run was seen to end
        context = {"trigger_id": record["trigger_id"], "bus": entry["EventBusName"]}
        try:
            answer = self._events_client().put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as error:
            return self._failed(MetricName.RUN_EVENT_FAILED, "PutEvents failed", context, error)
        if answer.get("FailedEntryCount", 0):
            (refused,) = answer.get("Entries") or [{}]
            reason = f"{refused.get('ErrorCode')}: {refused.get('ErrorMessage')}"
            return self._failed(
                MetricName.RUN_EVENT_FAILED, "PutEvents refused the event", context, reason
            )
        count(MetricName.RUN_EVENT_PUBLISHED)
        logger.info("published DAG Run Finished", extra=context)
        return True

    def _notify_failure(self, record: dict[str, Any]) -> bool:
        topic = self._settings.run_failure_topic_arn
        if topic is None:
            logger.info(
                "no run failure topic is configured any more; the notice is dropped",
                extra={"trigger_id": record["trigger_id"]},
            )
            return True
        subject, message = failure_notice(record)
        context = {"trigger_id": record["trigger_id"], "topic": topic}
        try:
            self._sns_client().publish(TopicArn=topic, Subject=subject, Message=message)
        except (ClientError, BotoCoreError) as error:
            return self._failed(
                MetricName.RUN_FAILURE_NOTIFY_FAILED, "SNS Publish failed", context, error
            )
        count(MetricName.RUN_FAILURE_NOTIFIED)
        return True

    @staticmethod
    def _failed(metric: str, what: str, context: dict[str, Any], reason: object) -> bool:
        count(metric)
        logger.warning(
            f"{what}; the next pass delivers it again", extra={**context, "reason": str(reason)}
        )
        return False


def _parsed_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _ascii_line(text: str) -> str:
    return " ".join(text.encode("ascii", "replace").decode("ascii").split())
