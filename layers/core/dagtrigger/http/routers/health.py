"""GET /v1/health."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dagtrigger.api import ApiDependencies, check_health
from dagtrigger.api.models import HealthReport
from dagtrigger.http.dependencies import IAM_SIGNED, api_dependencies
from dagtrigger.http.responses import json_response

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
def health(deps: Annotated[ApiDependencies, Depends(api_dependencies)]) -> Response[HealthReport]:
    report = check_health(deps)
    return json_response(200 if report.status == "ok" else 503, report)
