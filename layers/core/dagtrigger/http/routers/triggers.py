"""Trigger history: one trigger, filtered lists, and replays of failed triggers."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dagtrigger.clock import UtcDatetime
from dagtrigger.dependencies import Dependencies
from dagtrigger.http.bodies import (
    TriggerAccepted,
    TriggerPage,
    TriggerRecord,
    accepted_response,
    trigger_page,
)
from dagtrigger.http.problems import documented
from dagtrigger.http.request import (
    DEFAULT_PAGE_SIZE,
    IAM_SIGNED,
    Cursor,
    Limit,
    api_dependencies,
    caller_identity,
)
from dagtrigger.http.routers.dag_runs import IdempotencyKey
from dagtrigger.ids import DAG_ID_PATTERN, NAME_MAX_LENGTH, NAME_PATTERN, TRIGGER_ID_PATTERN
from dagtrigger.ledger import TriggerStatus
from dagtrigger.ledger.history import TriggerFilters
from dagtrigger.sources.api.service import get_trigger, list_triggers, replay_trigger

router = APIGatewayHttpRouter()

TriggerId = Annotated[str, Path(pattern=TRIGGER_ID_PATTERN, description="t- and 32 hex digits")]
Deps = Annotated[Dependencies, Depends(api_dependencies)]


@router.get(
    "/v1/triggers/<trigger_id>",
    summary="Read one trigger",
    tags=["Triggers"],
    security=IAM_SIGNED,
    responses=documented(200, 404, 422),
)
def read_trigger(trigger_id: TriggerId, deps: Deps) -> TriggerRecord:
    return TriggerRecord.model_validate(get_trigger(trigger_id, deps))


@router.get(
    "/v1/triggers",
    summary="List triggers, newest first",
    description="Filter by DAG (with its environment; default: the default environment), "
    "source, status and time range. Without a DAG, source or status, the last 7 days are "
    "listed unless since/until say otherwise. Follow next_cursor until it is null: a page may "
    "hold fewer than limit items and still have a next page.",
    tags=["Triggers"],
    security=IAM_SIGNED,
    responses=documented(200, 400, 422),
)
def find_triggers(
    deps: Deps,
    dag_id: Annotated[str | None, Query(pattern=DAG_ID_PATTERN)] = None,
    environment: Annotated[
        str | None, Query(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)
    ] = None,
    source: Annotated[
        str | None,
        Query(min_length=1, max_length=2048, description="s3://bucket/key, webhook:NAME ..."),
    ] = None,
    status: Annotated[TriggerStatus | None, Query()] = None,
    since: Annotated[UtcDatetime | None, Query(description="created at or after")] = None,
    until: Annotated[UtcDatetime | None, Query(description="created at or before")] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> TriggerPage:
    filters = TriggerFilters(
        dag_id=dag_id,
        environment=environment,
        source=source,
        status=status,
        since=since,
        until=until,
    )
    return trigger_page(list_triggers(filters, limit=limit, cursor=cursor, deps=deps))


@router.post(
    "/v1/triggers/<trigger_id>/replay",
    status_code=202,
    summary="Replay a failed or rejected trigger, in place",
    description="Retries a TRIGGER_FAILED or REJECTED trigger in place: the same trigger, DAG, "
    "environment, conf and DAG run id, so a replay never starts a second run (if an earlier "
    "attempt did start the run, Airflow refuses it again and the trigger is recorded TRIGGERED "
    "with already_existed). The record counts its replays and its transitions say who replayed "
    "it. A trigger in any other status, or one a redelivery of its event is retrying right now, "
    "is skipped: 409 whose trigger_status member says which status it is in. With an "
    "Idempotency-Key, a retry of a replay gets the answer the trigger now stands for (202, "
    "header Idempotent-Replayed: true); the same key after the replay failed again replays it "
    "again.",
    tags=["Triggers"],
    security=IAM_SIGNED,
    responses=documented(202, 404, 409, 422, 503),
)
def replay(
    trigger_id: TriggerId,
    deps: Deps,
    caller: Annotated[str, Depends(caller_identity)],
    idempotency_key: IdempotencyKey = None,
) -> Response[TriggerAccepted]:
    accepted = replay_trigger(trigger_id, caller=caller, idempotency_key=idempotency_key, deps=deps)
    return accepted_response(accepted)
