"""POST /v1/routes/test: a dry run of the routes against one event; nothing is triggered."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dagtrigger.dependencies import Dependencies
from dagtrigger.dry_run import DryRunReport, RoutesTestRequest, dry_run_request
from dagtrigger.http.problems import documented
from dagtrigger.http.request import IAM_SIGNED, api_dependencies

router = APIGatewayHttpRouter()


@router.post(
    "/v1/routes/test",
    summary="Dry-run the routes against one event",
    description="Which routes an S3 object, a webhook delivery or a schedule fire would match, "
    "with each match's DAG, rendered conf and dag_run_id, and why every other route does not "
    "match. Tests the stack's routes file, or `routes_document` (YAML or JSON text) to try a "
    "change before deploying it. Nothing is triggered or written; a webhook's signature is not "
    "checked.",
    tags=["Routes"],
    security=IAM_SIGNED,
    responses=documented(200, 400, 422, 503),
)
def dry_run_routes(
    body: Annotated[RoutesTestRequest, Body()],
    deps: Annotated[Dependencies, Depends(api_dependencies)],
) -> DryRunReport:
    return dry_run_request(body, deps)
