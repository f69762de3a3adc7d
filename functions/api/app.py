"""The HTTP API: IAM-signed management routes and signed webhooks (payload format 2.0)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.utilities.typing import LambdaContext

import dagtrigger
from dagtrigger.api import ApiDependencies, get_api_dependencies
from dagtrigger.http.dependencies import DEPENDENCIES_KEY, IAM_SIGNED, SIGV4
from dagtrigger.http.problem_handlers import register_problem_handlers
from dagtrigger.http.routers import dag_runs, health, objects, schedules, triggers, webhooks
from dagtrigger.observability import logger, metrics, tracer

app = APIGatewayHttpResolver(enable_validation=True)
for module in (dag_runs, triggers, objects, schedules, webhooks, health):
    app.include_router(module.router)
register_problem_handlers(app)


@app.get(
    "/v1/openapi.json",
    summary="This API's OpenAPI document",
    tags=["Meta"],
    security=IAM_SIGNED,
)
def openapi_document() -> Response[str]:
    return Response(200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


@cache
def openapi_json() -> str:
    return app.get_openapi_json_schema(
        title="dagtrigger",
        version=dagtrigger.__version__,
        description="Start Apache Airflow DAG runs on Amazon MWAA and read their history. "
        "Management routes are IAM-signed (SigV4, service execute-api); webhooks are "
        "authenticated by their signatures. Errors are application/problem+json (RFC 9457).",
        security_schemes={
            SIGV4: APIKey(
                name="Authorization",
                in_=APIKeyIn.header,
                description="AWS Signature Version 4 for the execute-api service",
            )
        },
    )


def handle(event: dict[str, Any], context: LambdaContext, deps: ApiDependencies) -> dict:
    """Answer one HTTP API event with ``deps`` (the Lambda handler's, or a test's)."""
    app.append_context(**{DEPENDENCIES_KEY: deps})
    return app.resolve(event, context)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    # Built outside the resolver: bad settings fail the invocation loudly, not as a 500 body.
    return handle(event, context, get_api_dependencies())
