"""EventBridge Scheduler schedules that start DAG runs: their Input, validation and management."""

from dagtrigger.schedules.errors import (
    ScheduleAlreadyExistsError,
    ScheduleManagementError,
    ScheduleNotFoundError,
    ScheduleQuotaError,
    ScheduleRejectedError,
)
from dagtrigger.schedules.expressions import (
    ScheduleExpression,
    ScheduleExpressionError,
    parse_schedule_expression,
)
from dagtrigger.schedules.manage import (
    create_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    schedule_request,
    update_schedule,
)
from dagtrigger.schedules.spec import (
    RetryPolicy,
    ScheduleInfo,
    SchedulePage,
    ScheduleSpec,
    ScheduleSummary,
)
from dagtrigger.schedules.target_input import (
    CONTEXT_ATTRIBUTES,
    ScheduleInput,
    ScheduleTarget,
    build_target_input,
    read_target_input,
    schedule_arn_parts,
)
from dagtrigger.schedules.timezones import TimezoneError, validate_timezone

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
