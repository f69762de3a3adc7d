"""Response bodies of the HTTP API (they make its OpenAPI document), built from domain results."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Literal, TypeVar

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel, ConfigDict, Field

from dagtrigger.health import Health
from dagtrigger.ledger import Page, TriggerStatus
from dagtrigger.sources.api.service import Accepted
from dagtrigger.sources.s3.file_sets import FileSetDescription
from dagtrigger.sources.webhooks.service import WebhookReceipt

Model = TypeVar("Model", bound=BaseModel)
#: header telling a client that an answer repeats the one given to an earlier request
REPLAYED_HEADER = "Idempotent-Replayed"


def trigger_link(trigger_id: str) -> str:
    return f"/v1/triggers/{trigger_id}"


class Links(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    self_: str = Field(alias="self", description="where the trigger's record can be read")


class TriggerAccepted(BaseModel):
    """A trigger was accepted: its record, DAG run id and current status."""

    trigger_id: str
    dag_run_id: str | None
    status: TriggerStatus
    environment: str | None = None
    dag_id: str | None = None
    already_existed: bool | None = Field(
        default=None,
        description="true when Airflow already had this run (an earlier attempt started it)",
    )
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
    asset_uri: str | None = Field(
        default=None, description="asset routes: the asset whose event the trigger creates"
    )
    asset_event_id: int | None = Field(
        default=None, description="the id of the asset event Airflow recorded (EVENT_CREATED)"
    )
    asset_id: int | None = Field(default=None, description="Airflow's id of the asset")
    asset_event_timestamp: str | None = None
    asset_event_run_ids: list[str] | None = Field(
        default=None, description="runs Airflow named in its answer (usually none yet)"
    )
    conf: dict[str, Any] | None = Field(
        default=None, description="the run's conf (asset routes: the event's extra)"
    )
    set_id: str | None = Field(
        default=None, description="an object of a file set: the set it joined (/v1/sets/{id})"
    )
    missed_set_id: str | None = Field(
        default=None, description="a LATE object: the set that had completed when it arrived"
    )
    set_marker_of: str | None = Field(
        default=None, description="a file set's marker: the set it completed"
    )
    set_group: str | None = Field(default=None, description="file sets: the set's group")
    member_count: int | None = Field(default=None, description="a file set: its objects")
    completion_reason: str | None = Field(
        default=None, description="a file set: what completed it (marker, count ...)"
    )
    run_trigger_id: str | None = Field(
        default=None, description="a complete file set: the record of its DAG run"
    )
    conf_truncated: bool | None = Field(
        default=None, description="true when the conf was too large to keep (digest kept instead)"
    )
    note: str | None = None
    replays: int = Field(default=0, description="times the trigger was replayed in place")
    replayed_by: str | None = Field(default=None, description="who replayed it last")
    last_replayed_at: str | None = None
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
    finished_at: str | None = Field(default=None, description="when the run was seen to end")
    failed_tasks: list[str] | None = Field(
        default=None, description="FAILED runs: the failed task ids (at most a few)"
    )
    failed_task_count: int | None = Field(
        default=None, description="FAILED runs: failed task instances in all"
    )
    failed_tasks_unavailable: str | None = Field(
        default=None, description="FAILED runs: why the failed tasks could not be read"
    )
    finished_event_delivered_at: str | None = Field(
        default=None, description="when the run's DAG Run Finished event was published"
    )
    attempts: int = 0
    deliveries: int = 1
    last_delivery_at: str | None = Field(
        default=None, description="when the latest repeated delivery of the event arrived"
    )
    reject_code: str | None = None
    reason: str | None = None
    last_error: str | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)
    transitions: list[dict[str, Any]] = Field(default_factory=list)
    expires_at: int | None = Field(default=None, description="Unix time the record expires")


class FileSetMember(BaseModel):
    """One object of a file set."""

    trigger_id: str = Field(description="the object's own record")
    bucket: str | None
    key: str | None
    size: int | None
    etag: str | None
    joined_at: str
    deliveries: int = Field(description="deliveries of the object's event (repeats join nothing)")


class FileSetView(BaseModel):
    """A file set: its state, how it completed, its objects and the trigger of its run."""

    set_id: str
    status: TriggerStatus = Field(description="SET_OPEN or SET_COMPLETE")
    route: str | None
    group: str | None
    generation: int = Field(description="0 for a group's first set, 1 for the next ...")
    member_count: int
    total_size: int
    first_member_at: str | None
    last_member_at: str | None
    completion_reason: str | None = Field(
        description="marker, count, quiet_seconds, max_wait_seconds or max_objects"
    )
    completed_at: str | None
    run_trigger_id: str | None = Field(description="the record of the set's DAG run")
    run: TriggerRecord | None
    members: list[FileSetMember]
    links: Links


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
    duplicate: bool = Field(
        description="true when this delivery (the same signed material) was received before"
    )
    links: Links


class HealthChecks(BaseModel):
    table: Literal["ok", "error"]
    routes: Literal["ok", "error"]


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    checks: HealthChecks


def accepted_response(accepted: Accepted) -> Response[TriggerAccepted]:
    """202 with the accepted trigger; a repeated request's answer says it repeats one."""
    record = accepted.record
    trigger_id = str(record["trigger_id"])
    body = TriggerAccepted(
        trigger_id=trigger_id,
        dag_run_id=record.get("dag_run_id"),
        status=TriggerStatus(record["status"]),
        environment=record.get("environment"),
        dag_id=record.get("dag_id"),
        already_existed=record.get("already_existed"),
        links=Links(self_=trigger_link(trigger_id)),
    )
    headers = {REPLAYED_HEADER: "true"} if accepted.replayed else None
    return json_response(202, body, headers=headers)


def webhook_response(receipt: WebhookReceipt) -> Response[WebhookAccepted]:
    trigger_id = str(receipt.record["trigger_id"])
    body = WebhookAccepted(
        trigger_id=trigger_id,
        status=TriggerStatus(receipt.record["status"]),
        delivery_id=receipt.delivery_id,
        duplicate=receipt.duplicate,
        links=Links(self_=trigger_link(trigger_id)),
    )
    return json_response(202, body)


def trigger_page(page: Page) -> TriggerPage:
    return TriggerPage(
        items=[TriggerRecord.model_validate(item) for item in page.items],
        next_cursor=page.next_cursor,
    )


def file_set_view(described: FileSetDescription) -> FileSetView:
    record = described.record
    set_id = str(record["trigger_id"])
    members = [
        FileSetMember(
            trigger_id=str(member["trigger_id"]),
            bucket=member.get("source_ref", {}).get("bucket"),
            key=member.get("source_ref", {}).get("key"),
            size=member.get("source_ref", {}).get("size"),
            etag=member.get("source_ref", {}).get("etag"),
            joined_at=str(member["created_at"]),
            deliveries=int(member.get("deliveries") or 1),
        )
        for member in described.members
    ]
    return FileSetView(
        set_id=set_id,
        status=TriggerStatus(record["status"]),
        route=record.get("route"),
        group=record.get("set_group"),
        generation=int(record.get("generation") or 0),
        member_count=int(record.get("member_count") or 0),
        total_size=int(record.get("total_size") or 0),
        first_member_at=record.get("first_member_at"),
        last_member_at=record.get("last_member_at"),
        completion_reason=record.get("completion_reason"),
        completed_at=record.get("completed_at"),
        run_trigger_id=record.get("run_trigger_id"),
        run=TriggerRecord.model_validate(described.run) if described.run else None,
        members=members,
        links=Links(self_=f"/v1/sets/{set_id}"),
    )


def health_response(health: Health, version: str) -> Response[HealthReport]:
    """200 when every check passes, 503 (same body) when one does not."""
    checks = HealthChecks(
        table="ok" if health.table_ok else "error", routes="ok" if health.routes_ok else "error"
    )
    report = HealthReport(
        status="ok" if health.healthy else "degraded", version=version, checks=checks
    )
    return json_response(200 if health.healthy else 503, report)


def json_response(
    status: int, body: Model, *, headers: Mapping[str, str] | None = None
) -> Response[Model]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers=dict(headers or {}),
    )


def no_content() -> Response[None]:
    return Response(status_code=HTTPStatus.NO_CONTENT.value, body=None)
