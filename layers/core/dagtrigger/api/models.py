"""Request and response bodies of the HTTP API (they make its OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dagtrigger.ids import Name
from dagtrigger.ledger import TriggerStatus

EnvironmentAlias = Name


def trigger_link(trigger_id: str) -> str:
    return f"/v1/triggers/{trigger_id}"


class Links(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    self_: str = Field(alias="self", description="where the trigger's record can be read")


class DagRunRequest(BaseModel):
    """POST /v1/dags/{dag_id}/runs."""

    model_config = ConfigDict(extra="forbid")

    conf: dict[str, Any] = Field(description="the DAG run's conf: a JSON object")
    environment: EnvironmentAlias | None = Field(
        default=None,
        description="environment alias from the routes file; default: the alias 'default', "
        "else the first environment listed",
    )
    note: str | None = Field(
        default=None, max_length=1000, description="free text kept in the trigger record"
    )
    logical_date: AwareDatetime | None = Field(
        default=None, description="the run's logical date, with a time zone; default: Airflow's"
    )


class TriggerAccepted(BaseModel):
    """A trigger was accepted: its record, DAG run id and current status."""

    trigger_id: str
    dag_run_id: str | None
    status: TriggerStatus
    environment: str | None = None
    dag_id: str | None = None
    replay_of: str | None = None
    links: Links


class TriggerRecord(BaseModel):
    """One trigger as the history table holds it."""

    model_config = ConfigDict(extra="ignore")

    trigger_id: str
    status: TriggerStatus
    source_type: str
    source_key: str
    source_ref: dict[str, Any] = Field(default_factory=dict)
    route: str | None = None
    environment: str | None = None
    dag_id: str | None = None
    dag_run_id: str | None = None
    conf: dict[str, Any] | None = None
    conf_truncated: bool | None = Field(
        default=None, description="true when the conf was too large to keep (digest kept instead)"
    )
    note: str | None = None
    replay_of: str | None = None
    replayed_by: str | None = None
    created_at: str
    updated_at: str | None = None
    event_time: str | None = None
    scheduled_time: str | None = None
    triggered_at: str | None = None
    logical_date: str | None = None
    airflow_state: str | None = None
    dag_paused: bool | None = None
    already_existed: bool | None = None
    start_date: str | None = None
    end_date: str | None = None
    attempts: int = 0
    deliveries: int = 1
    reject_code: str | None = None
    reason: str | None = None
    last_error: str | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)
    transitions: list[dict[str, Any]] = Field(default_factory=list)
    expires_at: int | None = Field(default=None, description="Unix time the record expires")


class TriggerPage(BaseModel):
    """A page of triggers, newest first. Follow ``next_cursor`` until it is null.

    A page may hold fewer than ``limit`` items (filters apply after the index read) and
    still have a next page.
    """

    items: list[TriggerRecord]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class WebhookAccepted(BaseModel):
    """A webhook delivery was authentic and has been recorded."""

    trigger_id: str
    status: TriggerStatus
    delivery_id: str | None
    duplicate: bool = Field(description="true when this delivery id was seen before")
    links: Links


class HealthChecks(BaseModel):
    table: Literal["ok", "error"]
    routes: Literal["ok", "error"]


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    checks: HealthChecks
