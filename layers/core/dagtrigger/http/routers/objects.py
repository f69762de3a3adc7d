"""GET /v1/objects: what happened to one S3 object."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dagtrigger.dependencies import Dependencies
from dagtrigger.http.bodies import TriggerPage, trigger_page
from dagtrigger.http.problems import documented
from dagtrigger.http.request import DEFAULT_PAGE_SIZE, IAM_SIGNED, Cursor, Limit, api_dependencies
from dagtrigger.ids import BUCKET_NAME_PATTERN
from dagtrigger.sources.api.service import object_history

router = APIGatewayHttpRouter()


@router.get(
    "/v1/objects",
    summary="History of one S3 object",
    description="Every trigger the object caused (replays included), newest first.",
    tags=["Triggers"],
    security=IAM_SIGNED,
    responses=documented(200, 400, 422),
)
def read_object_history(
    bucket: Annotated[str, Query(pattern=BUCKET_NAME_PATTERN)],
    key: Annotated[str, Query(min_length=1, max_length=1024, description="the object's key")],
    deps: Annotated[Dependencies, Depends(api_dependencies)],
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> TriggerPage:
    return trigger_page(object_history(bucket, key, limit=limit, cursor=cursor, deps=deps))
