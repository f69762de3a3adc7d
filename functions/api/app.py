"""The HTTP API: IAM-signed management routes and signed webhooks (payload format 2.0)."""

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from dagtrigger.dependencies import Dependencies, get_dependencies
from dagtrigger.http.problems import register_problem_handlers
from dagtrigger.http.request import DEPENDENCIES_KEY, read_json_body
from dagtrigger.http.routers import ROUTERS
from dagtrigger.observability import logger, metrics, tracer

app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=read_json_body)
for router in ROUTERS:
    app.include_router(router)
register_problem_handlers(app)


def handle(event: dict, context: LambdaContext, deps: Dependencies) -> dict:
    app.append_context(**{DEPENDENCIES_KEY: deps})  # the Lambda's dependencies, or a test's
    return app.resolve(event, context)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    # Built outside the resolver: bad settings fail the invocation loudly, not as a 500 body.
    return handle(event, context, get_dependencies())
