"""Create, read, list, replace and delete schedules in the stack's schedule group.

Every schedule targets the schedules function with an Input from ``build_target_input``, a
retry policy and a dead-letter queue; Scheduler assumes ``role_arn`` to invoke the function.
``client`` is a boto3 ``scheduler`` client, passed in (moto in tests, the real one in Lambda).
AWS errors become domain errors (not found, conflict, invalid, throttled).

The ``*_in_stack`` functions bind these to the deployment: the group, target, role and
dead-letter queue come from the settings, so callers choose only what to run and when, and a
schedule naming a route or environment the routes file lacks is refused before it could fire
into nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RequestError,
    ThrottledError,
    UnavailableError,
)
from dagtrigger.sources.schedules.parse import build_target_input, read_target_input
from dagtrigger.sources.schedules.spec import (
    RetryPolicy,
    ScheduleInfo,
    SchedulePage,
    ScheduleReplacement,
    ScheduleSpec,
    ScheduleState,
    ScheduleSummary,
)

MAX_PAGE_SIZE = 100

#: EventBridge Scheduler's refusals that the caller should hear about, as domain errors
_ERRORS: dict[str, type[RequestError]] = {
    "ResourceNotFoundException": NotFoundError,
    "ConflictException": ConflictError,
    "ValidationException": InvalidRequestError,
    "ThrottlingException": ThrottledError,
    "ServiceQuotaExceededException": ThrottledError,
}


@dataclass(frozen=True)
class SchedulePlacement:
    """Where the stack's schedules live and what they invoke, the same for every schedule."""

    group: str
    target_arn: str  # the schedules function
    role_arn: str  # the role EventBridge Scheduler assumes to invoke it
    dlq_arn: str | None  # where fires that keep failing go


def create_schedule(client: Any, spec: ScheduleSpec, placement: SchedulePlacement) -> ScheduleInfo:
    """Create ``spec`` in the placement's group; ``ConflictError`` if the name is taken."""
    with _translated_errors(f"creating schedule {placement.group}/{spec.name}"):
        client.create_schedule(**schedule_request(spec, placement))
    return get_schedule(client, spec.name, group=placement.group)


def update_schedule(client: Any, spec: ScheduleSpec, placement: SchedulePlacement) -> ScheduleInfo:
    """Replace the schedule ``spec.name`` with ``spec`` (UpdateSchedule replaces, never merges).

    For a partial change, read it with ``get_schedule``, change ``info.to_spec()`` and pass that.
    """
    with _translated_errors(f"updating schedule {placement.group}/{spec.name}"):
        client.update_schedule(**schedule_request(spec, placement))
    return get_schedule(client, spec.name, group=placement.group)


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
    """Delete the schedule; ``NotFoundError`` if there is none by that name."""
    with _translated_errors(f"deleting schedule {group}/{name}"):
        client.delete_schedule(Name=name, GroupName=group)


# ---------------------------------------------------------------------------------- requests


def schedule_request(spec: ScheduleSpec, placement: SchedulePlacement) -> dict[str, Any]:
    """The CreateSchedule/UpdateSchedule arguments for ``spec`` (the two take the same ones)."""
    target: dict[str, Any] = {
        "Arn": placement.target_arn,
        "RoleArn": placement.role_arn,
        "Input": build_target_input(spec),
        "RetryPolicy": spec.retry_policy.to_api(),
    }
    if placement.dlq_arn:
        target["DeadLetterConfig"] = {"Arn": placement.dlq_arn}
    request: dict[str, Any] = {
        "Name": spec.name,
        "GroupName": placement.group,
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
        raise error_class(f"{doing}: {detail}", code=code) from None


# ------------------------------------------------------------------- in this stack

_CONFIG_VARIABLES = ("SCHEDULE_GROUP_NAME", "SCHEDULE_TARGET_ARN", "SCHEDULER_ROLE_ARN")


def create_in_stack(spec: ScheduleSpec, deps: Dependencies) -> ScheduleInfo:
    return _write(create_schedule, spec, deps)


def replace_in_stack(
    name: str, replacement: ScheduleReplacement, deps: Dependencies
) -> ScheduleInfo:
    if replacement.name is not None and replacement.name != name:
        raise InvalidRequestError(
            f"the body names schedule {replacement.name!r} but the path names {name!r}",
            location=("body", "name"),
            code="name_mismatch",
        )
    spec = ScheduleSpec.model_validate({**replacement.model_dump(), "name": name})
    return _write(update_schedule, spec, deps)


def read_in_stack(name: str, deps: Dependencies) -> ScheduleInfo:
    return get_schedule(deps.scheduler_client(), name, group=_placement(deps).group)


def list_in_stack(
    deps: Dependencies,
    *,
    limit: int,
    next_token: str | None,
    name_prefix: str | None,
    state: ScheduleState | None,
) -> SchedulePage:
    return list_schedules(
        deps.scheduler_client(),
        _placement(deps).group,
        next_token,
        max_results=limit,
        name_prefix=name_prefix,
        state=state,
    )


def delete_in_stack(name: str, deps: Dependencies) -> None:
    delete_schedule(deps.scheduler_client(), name, group=_placement(deps).group)


def _write(
    write: Callable[[Any, ScheduleSpec, SchedulePlacement], ScheduleInfo],
    spec: ScheduleSpec,
    deps: Dependencies,
) -> ScheduleInfo:
    """``create_schedule`` or ``update_schedule`` in the stack's placement."""
    _check_target(spec, deps)
    return write(deps.scheduler_client(), spec, _placement(deps))


def _placement(deps: Dependencies) -> SchedulePlacement:
    settings = deps.settings
    group, target, role = (
        settings.schedule_group_name,
        settings.schedule_target_arn,
        settings.scheduler_role_arn,
    )
    if not (group and target and role):
        raise UnavailableError(
            "schedule management is not configured on this deployment (it needs "
            + ", ".join(_CONFIG_VARIABLES)
            + ")",
            code="not_configured",
        )
    return SchedulePlacement(group, target, role, settings.schedule_dlq_arn)


def _check_target(spec: ScheduleSpec, deps: Dependencies) -> None:
    routes = deps.routes.get()
    if spec.route is not None:
        if all(route.name != spec.route for route in routes.schedules):
            known = ", ".join(sorted(route.name for route in routes.schedules)) or "none"
            raise InvalidRequestError(
                f"no schedule route named {spec.route!r} (schedules routes: {known})",
                location=("body", "route"),
                code="route_unknown",
            )
        return
    if spec.environment not in routes.environments:
        known = ", ".join(sorted(routes.environments))
        raise InvalidRequestError(
            f"unknown environment {spec.environment!r} (defined: {known})",
            location=("body", "environment"),
            code="environment_unknown",
        )
