"""What each S3 route makes of one ``Object Created`` event: match, conf, ids.

``s3_route_verdicts`` is the one place that decides it: the service acts on its verdicts and
the dry run shows them, so a dry run answers what the s3 function would do with the object.
"""

from __future__ import annotations

import re

from dagtrigger import ids
from dagtrigger.conf import render_conf, render_text
from dagtrigger.errors import RejectedError
from dagtrigger.routes.model import RoutesFile, S3Route
from dagtrigger.sources.s3.match import RouteCheck, check_s3_routes, glob_to_regex
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
#: the longest group a set's template may render
MAX_GROUP_CHARS = 512


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
    if route.file_set is not None:
        marker = is_set_marker(route, event)
        if marker or check.matches:
            return _file_set_verdict(route, event, check, target, marker=marker)
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


def set_member_trigger_id(route_name: str, bucket: str, key: str, etag: str | None) -> str:
    """The record of an object on a file-set route: one per route and object content, whether
    the object's event or the listing at its set's marker names it first."""
    return ids.trigger_id(ids.set_member_identity(bucket, key, etag), route_name)


def is_set_marker(route: S3Route, event: S3ObjectEvent) -> bool:
    """Whether ``event`` is the marker of ``route``'s sets: its bucket and prefix are the
    route's and its basename matches ``marker`` (the route's other filters are for members)."""
    file_set = route.file_set
    if file_set is None or file_set.marker is None or event.bucket not in route.buckets:
        return False
    if route.prefix is not None and not event.key.startswith(route.prefix):
        return False
    basename = event.key.rpartition("/")[2]
    return glob_to_regex(file_set.marker).fullmatch(basename) is not None


def render_set_group(route: S3Route, event: S3ObjectEvent, groups: dict[str, str | None]) -> str:
    """The group of the set ``event`` is for; ``RejectedError`` when the template fails or gives
    nothing."""
    if route.file_set is None:
        raise ValueError(f"route {route.name} has no set")
    variables = s3_template_variables(event, route.name, groups)
    group = render_text(
        route.file_set.group,
        variables,
        max_chars=MAX_GROUP_CHARS,
        field="set.group",
        route_name=route.name,
    )
    if not group.strip():
        raise RejectedError(
            "invalid_set_group", f"route {route.name!r} set.group rendered to nothing"
        )
    return group


def _file_set_verdict(
    route: S3Route,
    event: S3ObjectEvent,
    check: RouteCheck,
    target: dict[str, object],
    *,
    marker: bool,
) -> RouteVerdict:
    recorded = {
        **target,
        "trigger_id": set_member_trigger_id(route.name, event.bucket, event.key, event.etag),
    }
    if route.paused:
        return RouteVerdict(
            **recorded,
            verdict=Verdict.PAUSED,
            code=ROUTE_PAUSED,
            reasons=(paused_reason(route.name),),
        )
    groups = check.groups
    if marker and route.regex is not None:
        found = re.search(route.regex, event.key)
        groups = found.groupdict() if found is not None else {}
    try:
        group = render_set_group(route, event, groups)
    except RejectedError as rejected:
        return RouteVerdict(
            **recorded, verdict=Verdict.REJECT, code=rejected.code, reasons=(str(rejected),)
        )
    verdict = Verdict.SET_MARKER if marker else Verdict.JOIN_SET
    return RouteVerdict(**recorded, verdict=verdict, file_set=group)
