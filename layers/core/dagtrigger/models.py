"""Domain types passed between routing, transports, the ledger and the handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal


class TriggerStatus(StrEnum):
    RECEIVED = "RECEIVED"
    TRIGGERED = "TRIGGERED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    TRIGGER_FAILED = "TRIGGER_FAILED"
    IGNORED = "IGNORED"


#: statuses the reconciler polls until the DAG run finishes
OPEN_STATUSES = frozenset({TriggerStatus.TRIGGERED, TriggerStatus.RUNNING})
#: statuses after which nothing changes any more
FINAL_STATUSES = frozenset(
    {TriggerStatus.SUCCESS, TriggerStatus.FAILED, TriggerStatus.REJECTED, TriggerStatus.IGNORED}
)


class SourceType(StrEnum):
    S3 = "s3"
    SCHEDULE = "schedule"
    API = "api"
    WEBHOOK = "webhook"


class TransportKind(StrEnum):
    INVOKE_REST_API = "invoke_rest_api"
    CLI = "cli"
    AIRFLOW_REST = "airflow_rest"


@dataclass(frozen=True)
class S3ObjectEvent:
    """One ``Object Created`` event, normalised from EventBridge or classic S3 notifications."""

    bucket: str
    key: str  # decoded: exactly the object's key
    size: int | None
    etag: str | None
    version_id: str | None
    sequencer: str | None
    event_time: datetime
    region: str
    event_name: str
    source_format: Literal["eventbridge", "s3-notification"]

    @property
    def source_key(self) -> str:
        """The object's address, used to query its history."""
        return f"s3://{self.bucket}/{self.key}"

    @property
    def identity(self) -> str:
        """What makes two deliveries the same event: version id, else etag + sequencer."""
        if self.version_id and self.version_id != "null":
            return f"s3://{self.bucket}/{self.key}#version={self.version_id}"
        return (
            f"s3://{self.bucket}/{self.key}#etag={self.etag or ''}#sequencer={self.sequencer or ''}"
        )


@dataclass(frozen=True)
class EnvironmentRef:
    """An MWAA (or self-managed Airflow) environment as a transport sees it."""

    alias: str
    name: str
    transport: TransportKind
    airflow_major: int | None = None  # None: ask GetEnvironment (MWAA) once and cache
    base_url: str | None = None  # airflow_rest only
    credentials_secret: str | None = None  # airflow_rest only: secret with username/password


@dataclass(frozen=True)
class TriggerRequest:
    environment: EnvironmentRef
    dag_id: str
    dag_run_id: str
    conf: dict[str, Any]
    note: str | None = None
    logical_date: datetime | None = None  # None: Airflow 3 gets null, Airflow 2 gets "now"


@dataclass(frozen=True)
class TriggerResult:
    dag_run_id: str
    logical_date: str | None
    state: str | None
    already_existed: bool = False  # Airflow already had our run id: a redelivery, not an error
    dag_paused: bool | None = None  # True: the run will sit queued until the DAG is unpaused
    details: dict[str, Any] = field(default_factory=dict)
