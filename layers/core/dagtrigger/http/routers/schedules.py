"""Schedule management in the stack's schedule group (EventBridge Scheduler)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dagtrigger.dependencies import Dependencies
from dagtrigger.http.bodies import json_response, no_content
from dagtrigger.http.problems import documented
from dagtrigger.http.request import IAM_SIGNED, api_dependencies
from dagtrigger.ids import SCHEDULE_NAME_PATTERN
from dagtrigger.sources.schedules import management
from dagtrigger.sources.schedules.spec import (
    ScheduleInfo,
    SchedulePage,
    ScheduleReplacement,
    ScheduleSpec,
    ScheduleState,
)

router = APIGatewayHttpRouter()

ScheduleNameParam = Annotated[str, Path(pattern=SCHEDULE_NAME_PATTERN)]
Deps = Annotated[Dependencies, Depends(api_dependencies)]
_TAGS = ["Schedules"]


@router.post(
    "/v1/schedules",
    status_code=201,
    summary="Create a schedule",
    description="Creates a schedule in the stack's group that starts a route or a DAG; the "
    "expression and time zone are checked first.",
    tags=_TAGS,
    security=IAM_SIGNED,
    responses=documented(201, 409, 422, 429, 503),
)
def create_schedule(spec: Annotated[ScheduleSpec, Body()], deps: Deps) -> Response[ScheduleInfo]:
    return json_response(201, management.create_in_stack(spec, deps))


@router.get(
    "/v1/schedules",
    summary="List schedules",
    tags=_TAGS,
    security=IAM_SIGNED,
    responses=documented(200, 422, 429, 503),
)
def list_schedules(
    deps: Deps,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    next_token: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
    name_prefix: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    state: Annotated[ScheduleState | None, Query()] = None,
) -> SchedulePage:
    return management.list_in_stack(
        deps, limit=limit, next_token=next_token, name_prefix=name_prefix, state=state
    )


@router.get(
    "/v1/schedules/<name>",
    summary="Read a schedule",
    tags=_TAGS,
    security=IAM_SIGNED,
    responses=documented(200, 404, 422, 429, 503),
)
def read_schedule(name: ScheduleNameParam, deps: Deps) -> ScheduleInfo:
    return management.read_in_stack(name, deps)


@router.put(
    "/v1/schedules/<name>",
    summary="Replace a schedule",
    description="Replaces the whole schedule (fields left out take their defaults).",
    tags=_TAGS,
    security=IAM_SIGNED,
    responses=documented(200, 404, 422, 429, 503),
)
def replace_schedule(
    name: ScheduleNameParam, replacement: Annotated[ScheduleReplacement, Body()], deps: Deps
) -> ScheduleInfo:
    return management.replace_in_stack(name, replacement, deps)


@router.delete(
    "/v1/schedules/<name>",
    status_code=204,
    summary="Delete a schedule",
    tags=_TAGS,
    security=IAM_SIGNED,
    responses=documented(204, 404, 422, 429, 503),
)
def delete_schedule(name: ScheduleNameParam, deps: Deps) -> Response[None]:
    management.delete_in_stack(name, deps)
    return no_content()
