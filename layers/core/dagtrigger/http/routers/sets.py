"""File sets: one set, its members and its run."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dagtrigger.dependencies import Dependencies
from dagtrigger.http.bodies import FileSetView, file_set_view
from dagtrigger.http.problems import documented
from dagtrigger.http.request import IAM_SIGNED, api_dependencies
from dagtrigger.ids import FILE_SET_ID_PATTERN
from dagtrigger.sources.s3.file_sets import describe_file_set

router = APIGatewayHttpRouter()

SetId = Annotated[str, Path(pattern=FILE_SET_ID_PATTERN, description="s- and 32 hex digits")]
Deps = Annotated[Dependencies, Depends(api_dependencies)]


@router.get(
    "/v1/sets/<set_id>",
    summary="Read one file set",
    description="The set's state, completion reason, members (and the objects recorded late "
    "for it are in each object's own history) and the trigger of its run.",
    tags=["File sets"],
    security=IAM_SIGNED,
    responses=documented(200, 404, 422),
)
def read_file_set(set_id: SetId, deps: Deps) -> FileSetView:
    return file_set_view(describe_file_set(set_id, deps))
