"""Create, read, list, replace and delete schedules in the stack's schedule group.

Every schedule targets the schedules function with an Input from ``build_target_input``, a
retry policy and a dead-letter queue; Scheduler assumes ``role_arn`` to invoke the function.
``client`` is a boto3 ``scheduler`` client, passed in (moto in tests, the real one in Lambda).
AWS errors become ``ScheduleManagementError`` subclasses carrying an HTTP status.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from dagtrigger.sources.schedules.errors import (
    ScheduleAlreadyExistsError,
    ScheduleManagementError,
    ScheduleNotFoundError,
    ScheduleQuotaError,
    ScheduleRejectedError,
)
from dagtrigger.sources.schedules.parse import build_target_input, read_target_input
from dagtrigger.sources.schedules.spec import (
    RetryPolicy,
    ScheduleInfo,
    SchedulePage,
    ScheduleSpec,
    ScheduleSummary,
)

MAX_PAGE_SIZE = 100

_ERRORS: dict[str, type[ScheduleManagementError]] = {
    "ResourceNotFoundException": ScheduleNotFoundError,
    "ConflictException": ScheduleAlreadyExistsError,
    "ValidationException": ScheduleRejectedError,
    "ThrottlingException": ScheduleQuotaError,
    "ServiceQuotaExceededException": ScheduleQuotaError,
}


def create_schedule(
    client: Any,
    spec: ScheduleSpec,
    *,
    group: str,
    target_arn: str,
    role_arn: str,
    dlq_arn: str | None,
) -> ScheduleInfo:
    """Create ``spec`` in ``group``; ``ScheduleAlreadyExistsError`` if the name is taken."""
    request = schedule_request(
        spec, group=group, target_arn=target_arn, role_arn=role_arn, dlq_arn=dlq_arn
    )
    with _translated_errors(f"creating schedule {group}/{spec.name}"):
        client.create_schedule(**request)
    return get_schedule(client, spec.name, group=group)


def update_schedule(
    client: Any,
    spec: ScheduleSpec,
    *,
    group: str,
    target_arn: str,
    role_arn: str,
    dlq_arn: str | None,
) -> ScheduleInfo:
    """Replace the schedule ``spec.name`` with ``spec`` (UpdateSchedule replaces, never merges).

    For a partial change, read it with ``get_schedule``, change ``info.to_spec()`` and pass that.
    """
    request = schedule_request(
        spec, group=group, target_arn=target_arn, role_arn=role_arn, dlq_arn=dlq_arn
    )
    with _translated_errors(f"updating schedule {group}/{spec.name}"):
        client.update_schedule(**request)
    return get_schedule(client, spec.name, group=group)


def get_schedule(client: Any, name: str, *, group: str) -> ScheduleInfo:
    with _translated_errors(f"reading schedule {group}/{name}"):
        response = client.get_schedule(Name=name, GroupName=group)
    return schedule_info(response)


def list_schedules(
    client: Any,
    group: str,
    next_token: str | None = None,
    *,
    max_results: int = 50,
    name_prefix: str | None = None,
    state: str | None = None,
) -> SchedulePage:
    """One page of the group's schedules; pass ``page.next_token`` back for the next one."""
    if not 1 <= max_results <= MAX_PAGE_SIZE:
        raise ValueError(f"max_results must be between 1 and {MAX_PAGE_SIZE} (got {max_results})")
    arguments: dict[str, Any] = {"GroupName": group, "MaxResults": max_results}
    optional = {"NextToken": next_token, "NamePrefix": name_prefix, "State": state}
    arguments.update({key: value for key, value in optional.items() if value})
    with _translated_errors(f"listing schedules of group {group}"):
        response = client.list_schedules(**arguments)
    return SchedulePage(
        items=[_summary(item) for item in response.get("Schedules", [])],
        next_token=response.get("NextToken") or None,
    )


def delete_schedule(client: Any, name: str, *, group: str) -> None:
    """Delete the schedule; ``ScheduleNotFoundError`` if there is none by that name."""
    with _translated_errors(f"deleting schedule {group}/{name}"):
        client.delete_schedule(Name=name, GroupName=group)


# ---------------------------------------------------------------------------------- requests


def schedule_request(
    spec: ScheduleSpec,
    *,
    group: str,
    target_arn: str,
    role_arn: str,
    dlq_arn: str | None,
) -> dict[str, Any]:
    """The CreateSchedule/UpdateSchedule arguments for ``spec`` (the two take the same ones)."""
    target: dict[str, Any] = {
        "Arn": target_arn,
        "RoleArn": role_arn,
        "Input": build_target_input(spec),
        "RetryPolicy": spec.retry_policy.to_api(),
    }
    if dlq_arn:
        target["DeadLetterConfig"] = {"Arn": dlq_arn}
    request: dict[str, Any] = {
        "Name": spec.name,
        "GroupName": group,
        "ScheduleExpression": spec.expression,
        "ScheduleExpressionTimezone": spec.timezone,
        "FlexibleTimeWindow": _flexible_window(spec.flexible_window_minutes),
        "State": spec.state,
        "Target": target,
        "ActionAfterCompletion": "DELETE" if spec.delete_after_completion else "NONE",
    }
    optional = {
        "StartDate": spec.start_date,
        "EndDate": spec.end_date,
        "Description": spec.description,
    }
    request.update({key: value for key, value in optional.items() if value is not None})
    return request


def _flexible_window(minutes: int | None) -> dict[str, Any]:
    if minutes is None:
        return {"Mode": "OFF"}
    return {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": minutes}


# --------------------------------------------------------------------------------- responses


def schedule_info(response: dict[str, Any]) -> ScheduleInfo:
    """A GetSchedule response as a ``ScheduleInfo``."""
    target = response.get("Target") or {}
    window = response.get("FlexibleTimeWindow") or {}
    retry = target.get("RetryPolicy")
    return ScheduleInfo(
        name=response["Name"],
        group=response.get("GroupName") or "default",
        arn=response["Arn"],
        state=response.get("State") or "ENABLED",
        target_arn=target.get("Arn", ""),
        created_at=response.get("CreationDate"),
        modified_at=response.get("LastModificationDate"),
        expression=response["ScheduleExpression"],
        timezone=response.get("ScheduleExpressionTimezone") or "UTC",
        flexible_window_minutes=(
            window.get("MaximumWindowInMinutes") if window.get("Mode") == "FLEXIBLE" else None
        ),
        start_date=response.get("StartDate"),
        end_date=response.get("EndDate"),
        description=response.get("Description") or None,
        target=read_target_input(target.get("Input")),
        retry_policy=_retry_policy(retry) if retry else None,
        dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
        role_arn=target.get("RoleArn"),
        delete_after_completion=response.get("ActionAfterCompletion") == "DELETE",
    )


def _retry_policy(retry: dict[str, Any]) -> RetryPolicy | None:
    try:
        return RetryPolicy(
            maximum_retry_attempts=retry["MaximumRetryAttempts"],
            maximum_event_age_seconds=retry["MaximumEventAgeInSeconds"],
        )
    except (KeyError, ValueError):
        return None


def _summary(item: dict[str, Any]) -> ScheduleSummary:
    return ScheduleSummary(
        name=item["Name"],
        group=item.get("GroupName") or "default",
        arn=item["Arn"],
        state=item.get("State") or "ENABLED",
        target_arn=(item.get("Target") or {}).get("Arn", ""),
        created_at=item.get("CreationDate"),
        modified_at=item.get("LastModificationDate"),
    )


@contextmanager
def _translated_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        error_class = _ERRORS.get(code)
        if error_class is None:
            raise
        detail = error.get("Message") or code
        raise error_class(f"{doing}: {detail}", aws_code=code) from None
