"""What one schedule fire starts: its target resolved, the route's pause, the conf and the ids.

``plan_fire`` is the one place that decides it: the service acts on the plan, the dry run shows
its verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dagtrigger import ids
from dagtrigger.clock import iso_utc
from dagtrigger.conf import check_conf, render_conf
from dagtrigger.errors import RejectedError
from dagtrigger.routes.model import RoutesFile, ScheduleRoute
from dagtrigger.sources.schedules.parse import ScheduleInput
from dagtrigger.transports.base import EnvironmentRef
from dagtrigger.trigger.verdict import (
    ROUTE_PAUSED,
    Explanation,
    RouteVerdict,
    Verdict,
    paused_reason,
    render_asset_uri,
    route_target,
)

ROUTE_KIND = "schedules"
INVALID_INPUT = "invalid_schedule_input"
NO_ROUTE = "no_route"
NOT_A_SCHEDULE_ROUTE = "not_a_schedule_route"
UNKNOWN_ENVIRONMENT = "unknown_environment"


@dataclass(frozen=True)
class FirePlan:
    """The fire's verdict, and the environment its run goes to (None when the fire names a
    route or environment the routes file lacks: the verdict then says so)."""

    verdict: RouteVerdict
    environment: EnvironmentRef | None


def plan_fire(fire: ScheduleInput, routes: RoutesFile, *, conf_max_bytes: int) -> FirePlan:
    """Resolve what ``fire`` names, and decide: start (conf rendered, the schedule's conf merged
    over it, checked), ignore (a paused route) or reject (an unknown target, a refused conf)."""
    _, trigger_id = fire_trigger_identity(fire)
    try:
        target = _resolve_target(fire, routes)
    except RejectedError as rejected:
        unresolved = RouteVerdict(
            route=fire.route,
            kind=ROUTE_KIND,
            environment=fire.environment,
            dag_id=fire.dag_id,
            verdict=Verdict.REJECT,
            code=rejected.code,
            reasons=(rejected.message,),
            trigger_id=trigger_id,
        )
        return FirePlan(unresolved, None)
    recorded = {
        "route": fire.route,
        "kind": ROUTE_KIND,
        "environment": target.environment.alias,
        "dag_id": target.dag_id,
        "asset": target.route.asset if target.route is not None else None,
        "trigger_id": trigger_id,
    }
    if target.route is not None and target.route.paused:
        paused = paused_reason(target.route.name)
        verdict = RouteVerdict(
            **recorded, verdict=Verdict.PAUSED, code=ROUTE_PAUSED, reasons=(paused,)
        )
        return FirePlan(verdict, target.environment)
    try:
        conf = _render_conf(fire, target, conf_max_bytes)
        if target.route is not None:
            variables = schedule_template_variables(fire, target.route.name)
            recorded["asset"] = render_asset_uri(target.route, variables)
    except RejectedError as rejected:
        verdict = RouteVerdict(
            **recorded, verdict=Verdict.REJECT, code=rejected.code, reasons=(rejected.message,)
        )
        return FirePlan(verdict, target.environment)
    run_id = None
    if target.dag_id is not None:
        run_id = ids.dag_run_id("schedule", fire.schedule_name, fire.scheduled_time, trigger_id)
    verdict = RouteVerdict(**recorded, verdict=Verdict.TRIGGER, conf=conf, dag_run_id=run_id)
    return FirePlan(verdict, target.environment)


def explain_schedule_fire(
    fire: ScheduleInput, routes: RoutesFile, *, conf_max_bytes: int
) -> Explanation:
    """A dry run of ``fire``: the verdict of the route it names, and why the other schedule
    routes take no part."""
    plan = plan_fire(fire, routes, conf_max_bytes=conf_max_bytes)
    verdicts = [
        plan.verdict
        if route.name == fire.route
        else RouteVerdict(
            **route_target(route),
            kind=ROUTE_KIND,
            verdict=Verdict.NO_MATCH,
            reasons=(f"the schedule names route {fire.target_label}",),
        )
        for route in routes.schedules
    ]
    if plan.environment is not None:
        return Explanation(verdicts)
    rejected = plan.verdict
    return Explanation(
        verdicts,
        [f"the fire would be recorded REJECTED ({rejected.code}): {rejected.reason}"],
    )


def fire_trigger_identity(fire: ScheduleInput) -> tuple[str, str]:
    """(source identity, trigger id) of a fire: its schedule and *scheduled* time, never the
    execution id, which changes on every retry."""
    identity = fire_identity(fire.schedule_arn, fire.scheduled_time)
    return identity, ids.trigger_id(identity, fire.target_label)


def fire_identity(schedule_arn: str, scheduled_time: datetime) -> str:
    return f"{schedule_arn}#scheduled-time={iso_utc(scheduled_time)}"


def schedule_template_variables(fire: ScheduleInput, route_name: str | None) -> dict[str, Any]:
    """What a schedule route's conf template can use (see ``ScheduleRoute``)."""
    return {
        "scheduled_time": iso_utc(fire.scheduled_time),
        "scheduled_date": fire.scheduled_time.astimezone(UTC).date().isoformat(),
        "schedule_arn": fire.schedule_arn,
        "schedule_name": fire.schedule_name,
        "schedule_group": fire.schedule_group,
        "execution_id": fire.execution_id,
        "attempt": fire.attempt,
        "route": route_name,
        "conf": dict(fire.conf),
    }


@dataclass(frozen=True)
class _Target:
    route: ScheduleRoute | None
    environment: EnvironmentRef
    #: None for an asset route
    dag_id: str | None

    @property
    def conf_template(self) -> Mapping[str, Any] | str | None:
        if self.route is None:
            return ScheduleRoute.DEFAULT_CONF_TEMPLATE
        return self.route.conf_spec()


def _resolve_target(fire: ScheduleInput, routes: RoutesFile) -> _Target:
    if fire.route is not None:
        route = routes.find_route(fire.route)
        if route is None:
            raise RejectedError(NO_ROUTE, f"no route named {fire.route!r} in the routes file")
        if not isinstance(route, ScheduleRoute):
            raise RejectedError(
                NOT_A_SCHEDULE_ROUTE,
                f"route {fire.route!r} is not in the schedules: list, so a schedule cannot use it",
            )
        return _Target(route, routes.environment_ref(route.environment), route.dag_id)
    alias, dag_id = fire.environment, fire.dag_id
    if alias is None or dag_id is None:  # ScheduleInput's validation guarantees both
        raise RejectedError(INVALID_INPUT, "give a route, or both environment and dag_id")
    if alias not in routes.environments:
        known = ", ".join(sorted(routes.environments))
        raise RejectedError(
            UNKNOWN_ENVIRONMENT, f"unknown environment {alias!r} (the routes file defines: {known})"
        )
    return _Target(None, routes.environment_ref(alias), dag_id)


def _render_conf(fire: ScheduleInput, target: _Target, max_bytes: int) -> dict[str, Any]:
    """The route's conf rendered with the fire's variables, the schedule's conf merged over it."""
    route_name = target.route.name if target.route else None
    variables = schedule_template_variables(fire, route_name)
    rendered = render_conf(
        target.conf_template, variables, max_bytes=max_bytes, route_name=route_name
    )
    return check_conf({**rendered, **fire.conf}, max_bytes=max_bytes, where="the merged ")
