"""What each S3 route makes of one ``Object Created`` event: match, conf, ids.

``s3_route_verdicts`` is the one place that decides it: the service acts on its verdicts and
the dry run shows them, so a dry run answers what the s3 function would do with the object.
"""

from __future__ import annotations

from dagtrigger import ids
from dagtrigger.conf import render_conf
from dagtrigger.errors import RejectedError
from dagtrigger.routes.model import RoutesFile
from dagtrigger.sources.s3.match import RouteCheck, check_s3_routes
from dagtrigger.sources.s3.parse import S3ObjectEvent
from dagtrigger.sources.s3.variables import s3_template_variables
from dagtrigger.trigger.verdict import (
    ROUTE_PAUSED,
    RouteVerdict,
    Verdict,
    paused_reason,
    render_asset_uri,
    route_target,
)

ROUTE_KIND = "s3"


def s3_route_verdicts(
    routes: RoutesFile, event: S3ObjectEvent, *, conf_max_bytes: int, every_reason: bool = False
) -> list[RouteVerdict]:
    """Every S3 route's verdict on ``event``, in file order.

    A matching route's conf is rendered (bounded, checked against ``conf_max_bytes``); a route
    that does not match says why: its first refusing filter, or each of them with
    ``every_reason``.
    """
    return [
        _verdict(check, event, conf_max_bytes)
        for check in check_s3_routes(routes, event, every_reason=every_reason)
    ]


def s3_trigger_ids(event: S3ObjectEvent, route_name: str | None) -> tuple[str, str | None]:
    """(trigger id, DAG run id) of ``event`` on the route named ``route_name``; an event that
    no route takes has a trigger id (its record) and no run id."""
    trigger_id = ids.trigger_id(event.identity, route_name or "")
    if route_name is None:
        return trigger_id, None
    return trigger_id, ids.dag_run_id("s3", event.key, event.event_time, trigger_id)


def _verdict(check: RouteCheck, event: S3ObjectEvent, conf_max_bytes: int) -> RouteVerdict:
    route = check.route
    target = {**route_target(route), "kind": ROUTE_KIND}
    if not check.matches:
        return RouteVerdict(**target, verdict=Verdict.NO_MATCH, reasons=check.mismatches)
    trigger_id, dag_run_id = s3_trigger_ids(event, route.name)
    if route.dag_id is None:
        dag_run_id = None  # an asset event has no run id of ours
    recorded = {**target, "trigger_id": trigger_id, "dag_run_id": dag_run_id}
    if route.paused:
        return RouteVerdict(
            **recorded,
            verdict=Verdict.PAUSED,
            code=ROUTE_PAUSED,
            reasons=(paused_reason(route.name),),
        )
    variables = s3_template_variables(event, route.name, check.groups)
    try:
        conf = render_conf(
            route.conf_spec(), variables, max_bytes=conf_max_bytes, route_name=route.name
        )
        asset = render_asset_uri(route, variables)
    except RejectedError as rejected:
        return RouteVerdict(
            **recorded, verdict=Verdict.REJECT, code=rejected.code, reasons=(str(rejected),)
        )
    return RouteVerdict(**{**recorded, "asset": asset}, verdict=Verdict.TRIGGER, conf=conf)
