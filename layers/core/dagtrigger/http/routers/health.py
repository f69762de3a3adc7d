"""GET /v1/health."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

import dagtrigger
from dagtrigger.dependencies import Dependencies
from dagtrigger.health import check_health
from dagtrigger.http.bodies import HealthReport, health_response
from dagtrigger.http.request import IAM_SIGNED, api_dependencies

router = APIGatewayHttpRouter()


@router.get(
    "/v1/health",
    summary="Health of the history table and the routes file",
    description="200 when both are usable, 503 (same body) when one is not.",
    tags=["Meta"],
    security=IAM_SIGNED,
    responses={
        200: {"description": "both checks pass"},
        503: {
            "description": "a check fails",
            "content": {"application/json": {"model": HealthReport}},
        },
    },
)
def health(deps: Annotated[Dependencies, Depends(api_dependencies)]) -> Response[HealthReport]:
    return health_response(check_health(deps), dagtrigger.__version__)
