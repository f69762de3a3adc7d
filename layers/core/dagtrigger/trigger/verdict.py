"""What one route makes of one event: start a run (with this conf and run id), or why not.

Each source decides it in one function (``sources/s3/plan.py``, ``sources/webhooks/plan.py``,
``sources/schedules/plan.py``): match, render the conf, derive the ids. The source's service acts
on the verdict (starts the run, or records why it did not), and the dry run
(``dagtrigger.dry_run``) shows it: what an event would do is, by construction, what it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dagtrigger import ids
from dagtrigger.conf import render_text
from dagtrigger.errors import RejectedError
from dagtrigger.ledger import TriggerStatus
from dagtrigger.routes.model import RouteBase

#: the reason code of an event a paused route would have taken
ROUTE_PAUSED = "route_paused"
#: the reason code of an event whose asset route's template gives no usable URI
INVALID_ASSET_URI = "invalid_asset_uri"


def paused_reason(route_name: str) -> str:
    return f"route {route_name} is paused"


class Verdict(StrEnum):
    #: the route matches: its DAG would start with ``conf`` as ``dag_run_id``
    TRIGGER = "trigger"
    #: the route matches, but the event would be recorded REJECTED (its conf is refused ...)
    REJECT = "reject"
    #: the route's filters match, but it is paused: the event would be recorded IGNORED
    PAUSED = "paused"
    #: a file-set route: the object joins the set named ``file_set``
    JOIN_SET = "join_set"
    #: a file-set route: the object is the marker that completes the set named ``file_set``
    SET_MARKER = "set_marker"
    #: the route's filters do not match the event
    NO_MATCH = "no_match"
    #: the route listens to another source (an S3 route, for a webhook delivery)
    OTHER_SOURCE = "other_source"


#: how the real path records a verdict that starts no run
_RECORDED_AS = {
    Verdict.REJECT: TriggerStatus.REJECTED,
    Verdict.PAUSED: TriggerStatus.IGNORED,
    Verdict.NO_MATCH: TriggerStatus.IGNORED,
}


class RouteVerdict(BaseModel):
    """One route's verdict on one event, with the ids the real path records for it."""

    model_config = ConfigDict(frozen=True)

    route: str | None = Field(
        description="the route's name (None for a schedule that names a DAG directly)"
    )
    kind: str = Field(description="the routes file list the route is in: s3, webhooks, schedules")
    environment: str | None = Field(description="the environment alias the run would go to")
    dag_id: str | None = Field(description="the DAG the route starts")
    asset: str | None = Field(
        default=None,
        description="an asset route: the asset URI its event would go to (the route's "
        "template where the event did not get as far as rendering it)",
    )
    verdict: Verdict
    reasons: tuple[str, ...] = Field(
        default=(), description="why the route does not start a run (empty for trigger)"
    )
    code: str | None = Field(
        default=None,
        description="the reason code the history would record (route_paused, conf_too_large ...)",
    )
    conf: dict[str, Any] | None = Field(
        default=None,
        description="the rendered conf (an asset route: the event's extra), checked as the "
        "real path checks it",
    )
    trigger_id: str | None = Field(
        default=None, description="the history record's id for this event and route"
    )
    file_set: str | None = Field(
        default=None, description="a file-set route: the group of the set the object is for"
    )
    dag_run_id: str | None = Field(
        default=None, description="the Airflow run id the trigger would use"
    )

    @property
    def matched(self) -> bool:
        """The event is this route's: it starts a run or is refused (not paused, not filtered)."""
        return self.verdict in (
            Verdict.TRIGGER,
            Verdict.REJECT,
            Verdict.JOIN_SET,
            Verdict.SET_MARKER,
        )

    @property
    def target(self) -> str:
        """What the route starts, for display: its DAG, or ``asset <uri>``."""
        return f"asset {self.asset}" if self.asset is not None else str(self.dag_id)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @property
    def recorded_status(self) -> TriggerStatus:
        """The status the real path records for a verdict that starts no run."""
        status = _RECORDED_AS.get(self.verdict)
        if status is None:
            raise ValueError(f"a {self.verdict} verdict is not recorded without a run")
        return status


def route_target(route: RouteBase) -> dict[str, Any]:
    """The verdict fields that say where the route sends an event."""
    return {
        "route": route.name,
        "environment": route.environment,
        "dag_id": route.dag_id,
        "asset": route.asset,
    }


def render_asset_uri(route: RouteBase, variables: Mapping[str, Any]) -> str | None:
    """The asset URI an asset route's event goes to (None for a route that starts a DAG).

    Raises ``RejectedError``: ``template_error`` when the template fails, ``invalid_asset_uri``
    when it renders to something Airflow cannot take as a URI.
    """
    if route.asset is None:
        return None
    uri = render_text(
        route.asset,
        variables,
        max_chars=ids.ASSET_URI_MAX_CHARS + 1,
        field="asset",
        route_name=route.name,
    )
    problem = ids.asset_uri_problem(uri)
    if problem is not None:
        rendered = f"route {route.name!r} asset: rendered to {uri[:200]!r}"
        raise RejectedError(INVALID_ASSET_URI, f"{rendered}, which {problem}")
    return uri


@dataclass(frozen=True)
class Explanation:
    """A source's dry run of one event: the verdicts of its own routes, in file order, and what
    the dry run could not check or what becomes of an event no route takes."""

    verdicts: list[RouteVerdict]
    notes: list[str] = field(default_factory=list)
