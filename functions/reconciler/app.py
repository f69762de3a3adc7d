"""Every minute: complete the file sets that are due, and follow open triggers to the final
state of their DAG runs."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from dagtrigger.dependencies import check_configuration, get_dependencies
from dagtrigger.observability import logger, metrics, tracer
from dagtrigger.sources.s3.file_sets import sweep_file_sets
from dagtrigger.trigger.reconcile import reconcile_open_triggers

check_configuration()  # bad settings or a bad bundled routes file fail here


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    # Leave 10 s of the function's time for the last update and the metrics flush.
    budget = max(1.0, context.get_remaining_time_in_millis() / 1000 - 10)
    deps = get_dependencies()
    # Sets first: a set due now completes on this pass, whatever the runs to follow.
    return {
        **sweep_file_sets(deps, budget_seconds=budget / 4).as_dict(),
        **reconcile_open_triggers(deps, budget_seconds=budget * 3 / 4).as_dict(),
    }
