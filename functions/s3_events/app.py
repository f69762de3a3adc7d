"""S3 ``Object Created`` events from SQS: one DAG run per routed object, partial batch failures."""

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from dagtrigger.dependencies import check_configuration, get_dependencies
from dagtrigger.observability import logger, metrics, tracer
from dagtrigger.sources.s3.service import process_s3_batch

check_configuration()  # bad settings or a bad bundled routes file fail here


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_s3_batch(event, context, get_dependencies())
