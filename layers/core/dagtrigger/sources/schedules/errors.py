"""Errors of schedule management, each with the HTTP status an API answers with."""

from __future__ import annotations

from dagtrigger.errors import DagTriggerError


class ScheduleManagementError(DagTriggerError):
    """A Scheduler request that failed for a reason the caller should hear about."""

    http_status = 500

    def __init__(self, message: str, *, aws_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.aws_code = aws_code


class ScheduleNotFoundError(ScheduleManagementError):
    http_status = 404


class ScheduleAlreadyExistsError(ScheduleManagementError):
    http_status = 409


class ScheduleRejectedError(ScheduleManagementError):
    """EventBridge Scheduler refused the schedule (a ValidationException): its message says why."""

    http_status = 422


class ScheduleQuotaError(ScheduleManagementError):
    """Throttled or over a quota: try again later."""

    http_status = 429
