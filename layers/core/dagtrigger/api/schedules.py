"""Schedule management over the API: ``dagtrigger.sources.schedules`` bound to the stack's group.

Every schedule lives in the group the stack owns and targets the schedules function through
the Scheduler role and dead-letter queue from the settings; callers choose only what to run
and when. A schedule naming a route or environment the routes file lacks is refused here,
before it could fire into nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import Field

from dagtrigger.api.context import ApiDependencies
from dagtrigger.api.problems import ApiProblem, ProblemCode, validation_problem
from dagtrigger.settings import Settings
from dagtrigger.sources.schedules import (
    ScheduleInfo,
    SchedulePage,
    ScheduleSpec,
    create_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    update_schedule,
)
from dagtrigger.sources.schedules.spec import ScheduleName, ScheduleState

_CONFIG_VARIABLES = ("SCHEDULE_GROUP_NAME", "SCHEDULE_TARGET_ARN", "SCHEDULER_ROLE_ARN")


class ScheduleReplacement(ScheduleSpec):
    """PUT /v1/schedules/{name}: the whole new schedule; ``name`` comes from the path."""

    name: ScheduleName | None = Field(  # type: ignore[assignment]
        default=None, description="optional; when given it must equal the name in the path"
    )


@dataclass(frozen=True)
class _Placement:
    group: str
    target_arn: str
    role_arn: str
    dlq_arn: str | None


def create(spec: ScheduleSpec, deps: ApiDependencies) -> ScheduleInfo:
    return _write(create_schedule, spec, deps)


def replace(name: str, replacement: ScheduleReplacement, deps: ApiDependencies) -> ScheduleInfo:
    if replacement.name is not None and replacement.name != name:
        raise validation_problem(
            f"the body names schedule {replacement.name!r} but the path names {name!r}",
            loc=["body", "name"],
            error_type="name_mismatch",
        )
    spec = ScheduleSpec.model_validate({**replacement.model_dump(), "name": name})
    return _write(update_schedule, spec, deps)


def read(name: str, deps: ApiDependencies) -> ScheduleInfo:
    return get_schedule(deps.scheduler_client(), name, group=_placement(deps.settings).group)


def list_page(
    deps: ApiDependencies,
    *,
    limit: int,
    next_token: str | None,
    name_prefix: str | None,
    state: ScheduleState | None,
) -> SchedulePage:
    return list_schedules(
        deps.scheduler_client(),
        _placement(deps.settings).group,
        next_token,
        max_results=limit,
        name_prefix=name_prefix,
        state=state,
    )


def delete(name: str, deps: ApiDependencies) -> None:
    delete_schedule(deps.scheduler_client(), name, group=_placement(deps.settings).group)


def _write(
    write: Callable[..., ScheduleInfo], spec: ScheduleSpec, deps: ApiDependencies
) -> ScheduleInfo:
    """``create_schedule`` or ``update_schedule`` (same arguments) in the stack's placement."""
    _check_target(spec, deps)
    where = _placement(deps.settings)
    return write(
        deps.scheduler_client(),
        spec,
        group=where.group,
        target_arn=where.target_arn,
        role_arn=where.role_arn,
        dlq_arn=where.dlq_arn,
    )


def _placement(settings: Settings) -> _Placement:
    group, target, role = (
        settings.schedule_group_name,
        settings.schedule_target_arn,
        settings.scheduler_role_arn,
    )
    if not (group and target and role):
        raise ApiProblem(
            ProblemCode.UNAVAILABLE,
            "schedule management is not configured on this deployment (it needs "
            + ", ".join(_CONFIG_VARIABLES)
            + ")",
        )
    return _Placement(
        group=group,
        target_arn=target,
        role_arn=role,
        dlq_arn=settings.schedule_dlq_arn,
    )


def _check_target(spec: ScheduleSpec, deps: ApiDependencies) -> None:
    routes = deps.core.routes.get()
    if spec.route is not None:
        if all(route.name != spec.route for route in routes.schedules):
            known = ", ".join(sorted(route.name for route in routes.schedules)) or "none"
            raise validation_problem(
                f"no schedule route named {spec.route!r} (schedules routes: {known})",
                loc=["body", "route"],
                error_type="route_unknown",
            )
        return
    if spec.environment not in routes.environments:
        known = ", ".join(sorted(routes.environments))
        raise validation_problem(
            f"unknown environment {spec.environment!r} (defined: {known})",
            loc=["body", "environment"],
            error_type="environment_unknown",
        )
