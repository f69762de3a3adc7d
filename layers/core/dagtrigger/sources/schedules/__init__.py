"""EventBridge Scheduler schedules that start DAG runs: their Input, validation and management."""

from dagtrigger.sources.schedules.errors import (
    ScheduleAlreadyExistsError,
    ScheduleManagementError,
    ScheduleNotFoundError,
    ScheduleQuotaError,
    ScheduleRejectedError,
)
from dagtrigger.sources.schedules.expressions import (
    ScheduleExpression,
    ScheduleExpressionError,
    parse_schedule_expression,
)
from dagtrigger.sources.schedules.management import (
    create_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    schedule_request,
    update_schedule,
)
from dagtrigger.sources.schedules.parse import (
    CONTEXT_ATTRIBUTES,
    ScheduleInput,
    ScheduleTarget,
    build_target_input,
    read_target_input,
    schedule_arn_parts,
)
from dagtrigger.sources.schedules.spec import (
    RetryPolicy,
    ScheduleInfo,
    SchedulePage,
    ScheduleSpec,
    ScheduleSummary,
)
from dagtrigger.sources.schedules.timezones import TimezoneError, validate_timezone

__all__ = [
    "CONTEXT_ATTRIBUTES",
    "RetryPolicy",
    "ScheduleAlreadyExistsError",
    "ScheduleExpression",
    "ScheduleExpressionError",
    "ScheduleInfo",
    "ScheduleInput",
    "ScheduleManagementError",
    "ScheduleNotFoundError",
    "SchedulePage",
    "ScheduleQuotaError",
    "ScheduleRejectedError",
    "ScheduleSpec",
    "ScheduleSummary",
    "ScheduleTarget",
    "TimezoneError",
    "build_target_input",
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "list_schedules",
    "parse_schedule_expression",
    "read_target_input",
    "schedule_arn_parts",
    "schedule_request",
    "update_schedule",
    "validate_timezone",
]
