"""A dry run of the routes: what one event would start, route by route, with nothing triggered
and nothing written.

Each source decides every verdict with the function its own service acts on
(``sources/s3/plan.py``, ``sources/webhooks/plan.py``, ``sources/schedules/plan.py``): same
matching, same sandboxed conf rendering and conf checks, same trigger and run ids. This module
only turns what an operator gives (an S3 object, a webhook delivery, a schedule fire) into the
event those functions take, adds the routes of the other sources, and says what it assumed.
``POST /v1/routes/test`` and ``dagtrigger routes test`` both answer with ``dry_run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dagtrigger.clock import UtcDatetime, iso_utc
from dagtrigger.conf import check_conf, compact_json
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import (
    InvalidRequestError,
    RejectedError,
    RoutesConfigError,
    UnavailableError,
)
from dagtrigger.ids import SCHEDULE_ARN_PATTERN, BucketName, Name
from dagtrigger.routes.loader import parse_routes
from dagtrigger.routes.model import RoutesFile
from dagtrigger.settings import Settings
from dagtrigger.sources.s3.parse import MAX_KEY_BYTES, S3ObjectEvent
from dagtrigger.sources.s3.plan import s3_route_verdicts
from dagtrigger.sources.schedules.parse import MAX_SCHEDULE_CONF_BYTES, ScheduleInput
from dagtrigger.sources.schedules.plan import explain_schedule_fire
from dagtrigger.sources.webhooks.plan import explain_webhook_delivery
from dagtrigger.trigger.verdict import Explanation, RouteVerdict, Verdict, route_target

NOTHING_TRIGGERED = "dry run: nothing was triggered and nothing was written"
#: the account an assumed schedule ARN names (a dry run knows no account)
PLACEHOLDER_ACCOUNT = "000000000000"
#: the largest routes document a request may carry (SSM parameters hold at most 8 KB)
MAX_ROUTES_DOCUMENT_CHARS = 1024 * 1024
#: (a route of each list, the event each list's routes take)
_KINDS = {
    "s3": ("an S3 route", "an S3 object"),
    "webhooks": ("a webhook route", "a webhook delivery"),
    "schedules": ("a schedule route", "a schedule fire"),
}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3ObjectSpec(_Spec):
    """An object created in S3, as its ``Object Created`` event would describe it."""

    bucket: BucketName
    key: str = Field(min_length=1, description="the object key, exactly (not URL-encoded)")
    size: int | None = Field(default=None, ge=0, description="bytes")
    version_id: str | None = Field(default=None, min_length=1, max_length=1024)
    etag: str | None = Field(default=None, min_length=1, max_length=1024)
    sequencer: str | None = Field(default=None, min_length=1, max_length=1024)
    event_time: UtcDatetime | None = Field(default=None, description="default: now")
    region: str | None = Field(
        default=None, min_length=1, max_length=64, description="default: the stack's region"
    )

    @field_validator("key")
    @classmethod
    def _key_fits_s3(cls, key: str) -> str:
        size = len(key.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY_BYTES:
            raise ValueError(f"is {size} bytes of UTF-8; S3 keys are at most {MAX_KEY_BYTES}")
        return key


class WebhookSpec(_Spec):
    """A delivery to POST /v1/webhooks/{name}. Its signature is not checked."""

    name: Name = Field(description="the webhook route the delivery is sent to")
    body: str | None = Field(
        default=None,
        description="the body exactly as the sender sends it (JSON text): the run id hashes "
        "these bytes",
    )
    payload: Any = Field(
        default=None, description="instead of body: the JSON payload, sent as compact JSON"
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        max_length=100,
        description="request headers the route reads (webhook-id, x-github-delivery, a "
        "timestamp header, headers a filter uses); signatures are not needed",
    )
    received_at: UtcDatetime | None = Field(default=None, description="default: now")

    @model_validator(mode="after")
    def _one_body(self) -> WebhookSpec:
        if (self.body is None) == ("payload" not in self.model_fields_set):
            raise ValueError("give either body (the JSON text as sent) or payload, not both")
        return self

    def body_bytes(self) -> bytes:
        text = self.body if self.body is not None else compact_json(self.payload)
        return text.encode("utf-8", "surrogatepass")


class ScheduleFireSpec(_Spec):
    """A fire of a schedule whose input names a route of the schedules: list."""

    route: Name = Field(description="the route the schedule's input names")
    schedule_arn: str | None = Field(
        default=None,
        pattern=SCHEDULE_ARN_PATTERN,
        description="the schedule's ARN (the run id derives from it); default: an example ARN "
        "for a schedule named like the route",
    )
    scheduled_time: UtcDatetime | None = Field(default=None, description="default: now")
    conf: dict[str, Any] = Field(
        default_factory=dict, description="the schedule's own conf, merged over the route's"
    )

    @field_validator("conf")
    @classmethod
    def _conf_fits_a_schedule(cls, conf: dict[str, Any]) -> dict[str, Any]:
        try:
            return check_conf(conf, max_bytes=MAX_SCHEDULE_CONF_BYTES)
        except RejectedError as rejected:
            raise ValueError(rejected.message) from None


class DryRunEvent(_Spec):
    """One event to dry-run: exactly one of s3, webhook and schedule."""

    s3: S3ObjectSpec | None = None
    webhook: WebhookSpec | None = None
    schedule: ScheduleFireSpec | None = None

    @model_validator(mode="after")
    def _one_event(self) -> DryRunEvent:
        given = [name for name in ("s3", "webhook", "schedule") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of s3, webhook and schedule, not {len(given)}")
        return self


class RoutesTestRequest(DryRunEvent):
    """A dry run against the stack's routes file, or against one given in the request."""

    routes_document: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ROUTES_DOCUMENT_CHARS,
        description="a routes file (YAML or JSON text) to test instead of the deployed one, "
        "e.g. a change before it is deployed",
    )


class DryRunReport(BaseModel):
    """Which routes an event matches, with the run each would start, and why the others do not.

    Nothing was triggered and nothing was written; a webhook's signature was not checked.
    """

    event: str = Field(description="the event, as the dry run took it")
    routes_source: str = Field(description="the routes file the event was tested against")
    summary: str
    matches: list[RouteVerdict] = Field(
        description="routes whose filters take the event: verdict trigger (DAG, conf, "
        "dag_run_id) or reject (why the run would be refused)"
    )
    non_matches: list[RouteVerdict] = Field(
        description="every other route, with its reasons (filters, paused, another source)"
    )
    notes: list[str] = Field(description="what the dry run assumed or could not check")


@dataclass(frozen=True)
class DryRunLimits:
    """The deployment's limits a dry run applies as the real path does."""

    conf_max_bytes: int
    webhook_max_body_bytes: int
    webhook_replay_window_seconds: int
    region: str

    @classmethod
    def of(cls, settings: Settings) -> DryRunLimits:
        return cls(
            conf_max_bytes=settings.conf_max_bytes,
            webhook_max_body_bytes=settings.webhook_max_body_bytes,
            webhook_replay_window_seconds=settings.webhook_replay_window_seconds,
            region=settings.aws_region,
        )

    @classmethod
    def defaults(cls, region: str | None = None) -> DryRunLimits:
        """A deployment's defaults, for a dry run with no stack (``dagtrigger routes test``)."""
        fields = Settings.model_fields
        return cls(
            conf_max_bytes=fields["conf_max_bytes"].default,
            webhook_max_body_bytes=fields["webhook_max_body_bytes"].default,
            webhook_replay_window_seconds=fields["webhook_replay_window_seconds"].default,
            region=region or fields["aws_region"].default,
        )


def dry_run_request(request: RoutesTestRequest, deps: Dependencies) -> DryRunReport:
    """``POST /v1/routes/test``: the request's event against its routes document, or else the
    routes file the stack serves."""
    if request.routes_document is None:
        routes, source = _deployed_routes(deps), f"the stack's routes file ({deps.routes.location})"
    else:
        routes = _request_routes(request.routes_document, deps.settings)
        source = "the request's routes_document"
    return dry_run(
        routes,
        request,
        limits=DryRunLimits.of(deps.settings),
        now=deps.clock(),
        routes_source=source,
    )


def dry_run(
    routes: RoutesFile,
    event: DryRunEvent,
    *,
    limits: DryRunLimits,
    now: datetime,
    routes_source: str,
) -> DryRunReport:
    """Every route's verdict on ``event``; what is not given is taken as happening ``now``.

    Raises ``MalformedRequestError`` for a webhook body that is not JSON.
    """
    now = now.replace(microsecond=0)
    if event.s3 is not None:
        kind = "s3"
        described, explanation = _s3_object(routes, event.s3, limits, now)
    elif event.webhook is not None:
        kind = "webhooks"
        described, explanation = _webhook(routes, event.webhook, limits, now)
    elif event.schedule is not None:
        kind = "schedules"
        described, explanation = _schedule_fire(routes, event.schedule, limits, now)
    else:  # DryRunEvent's validation guarantees one
        raise ValueError("a dry run needs an s3, webhook or schedule event")
    verdicts = _with_other_sources(routes, kind, explanation.verdicts)
    matches = [verdict for verdict in verdicts if verdict.matched]
    return DryRunReport(
        event=described,
        routes_source=routes_source,
        summary=_summary(matches),
        matches=matches,
        non_matches=[verdict for verdict in verdicts if not verdict.matched],
        notes=[NOTHING_TRIGGERED, *explanation.notes],
    )


def _deployed_routes(deps: Dependencies) -> RoutesFile:
    try:
        return deps.routes.get()
    except RoutesConfigError as broken:
        raise UnavailableError(f"the stack's routes file cannot be loaded: {broken}") from None


def _request_routes(document: str, settings: Settings) -> RoutesFile:
    """The routes file a request carries. YAML aliases are refused: a few lines of them can
    stand for a document too large to validate within the API's time (the stack's own file,
    which only its operators write, may use them)."""
    if _uses_aliases(document):
        raise _invalid_document(
            "routes_document uses a YAML alias (*name): spell each value out in a document sent "
            "to the API"
        )
    try:
        return parse_routes(
            document,
            source="routes_document",
            allowed_environment_names=settings.mwaa_environment_names,
            granted_manifest_location=settings.set_manifest_location,
        )
    except RoutesConfigError as invalid:
        raise _invalid_document(str(invalid)) from None
    except RecursionError:
        raise _invalid_document(
            "routes_document nests mappings and lists too deeply to read"
        ) from None


def _invalid_document(message: str) -> InvalidRequestError:
    return InvalidRequestError(
        message, location=("body", "routes_document"), code="invalid_routes_file"
    )


def _uses_aliases(document: str) -> bool:
    try:
        return any(
            isinstance(event, yaml.AliasEvent)
            for event in yaml.parse(document, Loader=yaml.SafeLoader)
        )
    except yaml.YAMLError:
        return False  # parse_routes says where and why


def _s3_object(
    routes: RoutesFile, spec: S3ObjectSpec, limits: DryRunLimits, now: datetime
) -> tuple[str, Explanation]:
    event = S3ObjectEvent(
        bucket=spec.bucket,
        key=spec.key,
        size=spec.size,
        etag=spec.etag,
        version_id=spec.version_id,
        sequencer=spec.sequencer,
        event_time=spec.event_time or now,
        region=spec.region or limits.region,
        event_name="ObjectCreated:Put",
        source_format="eventbridge",
    )
    verdicts = s3_route_verdicts(
        routes, event, conf_max_bytes=limits.conf_max_bytes, every_reason=True
    )
    notes = []
    if spec.event_time is None:
        notes.append(_assumed_now("event_time", now, "the run id carries the event's time"))
    if spec.version_id is None and (spec.etag is None or spec.sequencer is None):
        notes.append(
            "no version_id, so the object is known by its etag and sequencer (not both given): "
            "the trigger and run ids shown are for an event without the missing ones"
        )
    if not any(verdict.verdict is not Verdict.NO_MATCH for verdict in verdicts):
        notes.append("no route takes the object: the s3 function would record it IGNORED")
    size = "unknown size" if spec.size is None else f"{spec.size} bytes"
    described = f"{event.source_key} ({size}, created {iso_utc(event.event_time)})"
    return described, Explanation(verdicts, notes)


def _webhook(
    routes: RoutesFile, spec: WebhookSpec, limits: DryRunLimits, now: datetime
) -> tuple[str, Explanation]:
    received_at = spec.received_at or now
    body = spec.body_bytes()
    explanation = explain_webhook_delivery(
        routes,
        name=spec.name,
        body=body,
        headers=spec.headers,
        received_at=received_at,
        conf_max_bytes=limits.conf_max_bytes,
        max_body_bytes=limits.webhook_max_body_bytes,
        replay_window_seconds=limits.webhook_replay_window_seconds,
    )
    notes = list(explanation.notes)
    if spec.received_at is None:
        notes.append(_assumed_now("received_at", now, "the run id carries the delivery's time"))
    if spec.body is None:
        notes.append(
            "the payload was taken as compact JSON: the ids hash the body's exact bytes, so "
            "give the body as sent for the ids of a real delivery"
        )
    notes.append(
        "a delivery the history already holds keeps its recorded run id (a retry starts nothing)"
    )
    described = (
        f"a delivery to POST /v1/webhooks/{spec.name} ({len(body)} bytes, received "
        f"{iso_utc(received_at)})"
    )
    return described, Explanation(explanation.verdicts, notes)


def _schedule_fire(
    routes: RoutesFile, spec: ScheduleFireSpec, limits: DryRunLimits, now: datetime
) -> tuple[str, Explanation]:
    schedule_arn = spec.schedule_arn or (
        f"arn:aws:scheduler:{limits.region}:{PLACEHOLDER_ACCOUNT}:schedule/default/{spec.route}"
    )
    fire = ScheduleInput(
        route=spec.route,
        conf=spec.conf,
        schedule_arn=schedule_arn,
        scheduled_time=spec.scheduled_time or now,
    )
    explanation = explain_schedule_fire(fire, routes, conf_max_bytes=limits.conf_max_bytes)
    notes = list(explanation.notes)
    if spec.schedule_arn is None:
        notes.append(
            f"schedule_arn not given: {schedule_arn} is assumed; the trigger and run ids derive "
            "from the schedule's ARN and scheduled time"
        )
    if spec.scheduled_time is None:
        notes.append(_assumed_now("scheduled_time", now, "the run id carries the scheduled time"))
    described = f"a fire of {schedule_arn} scheduled for {iso_utc(fire.scheduled_time)}"
    return described, Explanation(explanation.verdicts, notes)


def _with_other_sources(
    routes: RoutesFile, kind: str, own: list[RouteVerdict]
) -> list[RouteVerdict]:
    """Every route of the file in order: ``own`` verdicts for routes of ``kind``, and a
    verdict saying the event is not theirs for the routes of the other sources."""
    own_by_name = {verdict.route: verdict for verdict in own}
    verdicts = []
    for list_name, _, route in routes.iter_routes():
        if list_name == kind:
            verdicts.append(own_by_name[route.name])
            continue
        other = f"{_KINDS[list_name][0]}, and the event is {_KINDS[kind][1]}"
        verdicts.append(
            RouteVerdict(
                **route_target(route),
                kind=list_name,
                verdict=Verdict.OTHER_SOURCE,
                reasons=(other,),
            )
        )
    return verdicts


def _summary(matches: list[RouteVerdict]) -> str:
    starts = sum(verdict.verdict is Verdict.TRIGGER for verdict in matches)
    refused = len(matches) - starts
    if not matches:
        return "no route would start a DAG run"
    runs = f"{starts} DAG run{'s' if starts != 1 else ''}"
    if not refused:
        return f"would start {runs}"
    return f"would start {runs}; {refused} matching route{'s' if refused != 1 else ''} refused"


def _assumed_now(field: str, now: datetime, why: str) -> str:
    return f"{field} not given: {iso_utc(now)} (now) is used, and {why}"
