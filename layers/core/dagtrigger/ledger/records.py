"""What goes into the ledger and what comes back out of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class TriggerStatus(StrEnum):
    RECEIVED = "RECEIVED"
    TRIGGERED = "TRIGGERED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    TRIGGER_FAILED = "TRIGGER_FAILED"
    IGNORED = "IGNORED"
    #: an asset route's event exists in Airflow, whose scheduler starts the DAGs consuming it
    EVENT_CREATED = "EVENT_CREATED"
    #: a file set collecting its objects (the set's own record)
    SET_OPEN = "SET_OPEN"
    #: a file set that completed (its ``completion_reason``); its run has its own record
    SET_COMPLETE = "SET_COMPLETE"
    #: an object that joined a file set (its ``set_id``): the set's run is its run
    IN_SET = "IN_SET"
    #: an object that arrived after its set completed (``missed_set_id``)
    LATE = "LATE"
    #: the reconciler stopped following the run at its horizon without seeing it end
    UNKNOWN = "UNKNOWN"


#: statuses the reconciler polls until the DAG run finishes
OPEN_STATUSES = frozenset({TriggerStatus.TRIGGERED, TriggerStatus.RUNNING})
#: statuses after which nothing changes any more
FINAL_STATUSES = frozenset(
    {
        TriggerStatus.SUCCESS,
        TriggerStatus.FAILED,
        TriggerStatus.REJECTED,
        TriggerStatus.IGNORED,
        TriggerStatus.UNKNOWN,
        TriggerStatus.EVENT_CREATED,
        TriggerStatus.SET_COMPLETE,
        TriggerStatus.IN_SET,
        TriggerStatus.LATE,
    }
)


#: how a run ended, as the reconciler records it: each ending is told once (its event)
RUN_ENDINGS = frozenset({TriggerStatus.SUCCESS, TriggerStatus.FAILED, TriggerStatus.UNKNOWN})


class PendingEvent(StrEnum):
    """What a record's ``pending_event`` waits to deliver (the ``by_pending_event`` index)."""

    RUN_FINISHED = "run_finished"
    #: a file set that is open, or complete without a recorded run (the reconciler's sweep)
    FILE_SET = "file_set"


class SourceType(StrEnum):
    S3 = "s3"
    SCHEDULE = "schedule"
    API = "api"
    WEBHOOK = "webhook"


#: DynamoDB allows 2,048 bytes in a partition key (table or index)
MAX_KEY_BYTES = 2048


def _require_key_text(value: str, field_name: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"NewTrigger.{field_name} must be a non-empty string")
    size = len(value.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise ValueError(
            f"NewTrigger.{field_name} is {size} bytes; a DynamoDB key holds at most {MAX_KEY_BYTES}"
        )


@dataclass(frozen=True)
class NewTrigger:
    """Everything known about one trigger when it is first recorded."""

    trigger_id: str
    source_type: SourceType
    source_key: str  # what the source is (s3://bucket/key, schedule ARN ...): history by source
    source_identity: str  # what makes two deliveries the same event
    source_ref: dict[str, Any]  # JSON-able facts of the source event
    # None where the trigger names no route or DAG (an event rejected before routing)
    route: str | None = None
    environment: str | None = None
    dag_id: str | None = None
    dag_run_id: str | None = None
    #: an asset route's trigger creates an event for this asset instead of a DAG run (its
    #: ``conf`` is the event's extra)
    asset_uri: str | None = None
    conf: dict[str, Any] | None = None
    event_time: datetime | None = None
    scheduled_time: datetime | None = None
    #: the logical date the run is asked for (None: Airflow's default)
    logical_date: datetime | None = None
    request_fingerprint: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        _require_key_text(self.trigger_id, "trigger_id")
        _require_key_text(self.source_key, "source_key")
        if not isinstance(self.source_ref, dict):
            raise ValueError("NewTrigger.source_ref must be a JSON object (dict)")
        if self.conf is not None and not isinstance(self.conf, dict):
            raise ValueError("NewTrigger.conf must be a JSON object (dict) or None")
        if self.dag_key is not None:
            _require_key_text(self.dag_key, "environment and dag_id (together)")

    @property
    def dag_key(self) -> str | None:
        """Partition value of the ``by_dag`` index, when both environment and DAG are known."""
        if self.environment and self.dag_id:
            return dag_key(self.environment, self.dag_id)
        return None


def dag_key(environment: str, dag_id: str) -> str:
    return f"{environment}#{dag_id}"


class ClaimOutcome(StrEnum):
    NEW = "NEW"  # first delivery: the caller owns the trigger
    RETRY = "RETRY"  # an earlier attempt failed or crashed: the caller owns it again
    DUPLICATE = "DUPLICATE"  # another delivery owns or finished it: do nothing


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    record: dict[str, Any]

    @property
    def owned(self) -> bool:
        """True when the caller should go on and trigger the DAG run."""
        return self.outcome is not ClaimOutcome.DUPLICATE


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None  # opaque; pass back as ``cursor`` for the next page
