"""EventBridge Scheduler fires: one DAG run per schedule and scheduled time, however retried."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dagtrigger.dependencies import check_configuration, get_dependencies
from dagtrigger.observability import logger, metrics, tracer
from dagtrigger.sources.schedules.service import handle_scheduled_trigger

check_configuration()  # bad settings or a bad bundled routes file fail here


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return handle_scheduled_trigger(event, get_dependencies()).as_response()
