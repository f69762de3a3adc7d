"""The routes file: which events start which DAG, on which environment, with which conf.

```yaml
version: 1
environments:
  prod:
    name: my-mwaa-env
    transport: invoke_rest_api
s3:
  - name: sales-csv
    buckets: [landing]
    prefix: sales/
    suffix: .csv
    environment: prod
    dag_id: ingest_sales
```

Every model forbids unknown keys, so a typo (``sufix:``) fails the load instead of silently
matching more than intended. New route kinds (webhooks, schedules) are new ``RouteBase``
subclasses in a new list field, registered in ``RoutesFile.ROUTE_LISTS``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dagtrigger.conf import check_conf_template, check_text_template, fixed_non_object
from dagtrigger.ids import (
    ASSET_URI_MAX_CHARS,
    DAG_ID_PATTERN,
    BucketName,
    MwaaEnvironmentName,
    Name,
)
from dagtrigger.transports.base import EnvironmentRef, TransportKind
from dagtrigger.validation import FieldProblems, Location

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvironmentConfig(_Strict):
    """An Airflow environment routes can send runs to, under an alias."""

    name: MwaaEnvironmentName = Field(
        description="MWAA environment name (for airflow_rest: a label used in logs and history)",
    )
    transport: TransportKind = Field(
        default=TransportKind.INVOKE_REST_API,
        description="invoke_rest_api (MWAA InvokeRestApi, preferred), cli (MWAA CLI endpoint) "
        "or airflow_rest (an Airflow REST API reachable at base_url)",
    )
    airflow_major: Literal[2, 3] | None = Field(
        default=None,
        description="Airflow major version; omitted: asked from MWAA GetEnvironment once",
    )
    base_url: str | None = Field(
        default=None,
        max_length=2048,
        description="airflow_rest only: the Airflow web server's http(s) URL, without /api/...",
    )
    credentials_secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="airflow_rest only: Secrets Manager name or ARN of a secret holding "
        '{"username": ..., "password": ...}',
    )

    allow_plain_http: bool = Field(
        default=False,
        description="airflow_rest only: accept an http:// base_url on this machine (127.0.0.1, "
        "::1, localhost), where the credentials cannot be read off the network",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url_is_plain_http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials: put them in credentials_secret")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query string or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _transport_fields_agree(self) -> EnvironmentConfig:
        if self.transport is TransportKind.AIRFLOW_REST:
            if self.base_url is None:
                raise FieldProblems([(("base_url",), "transport airflow_rest needs base_url")])
            self._refuse_clear_text(self.base_url)
            return self
        misplaced = [
            (
                (name,),
                f"only for transport airflow_rest, not {self.transport.value} "
                "(MWAA authenticates with IAM)",
            )
            for name in ("base_url", "credentials_secret", "allow_plain_http")
            if getattr(self, name) not in (None, False)
        ]
        if misplaced:
            raise FieldProblems(misplaced)
        return self

    def _refuse_clear_text(self, base_url: str) -> None:
        """Credentials and runs' conf must not cross a network in clear text."""
        host = urlsplit(base_url).hostname or ""
        if not base_url.startswith("http://"):
            return
        if not _is_loopback(host):
            raise FieldProblems(
                [(("base_url",), "http:// sends credentials in clear text: use https://")]
            )
        if not self.allow_plain_http:
            raise FieldProblems(
                [
                    (
                        ("base_url",),
                        "http:// sends credentials in clear text: use https://, or for an "
                        "Airflow on this machine set allow_plain_http: true",
                    )
                ]
            )

    def to_ref(self, alias: str) -> EnvironmentRef:
        return EnvironmentRef(
            alias=alias,
            name=self.name,
            transport=self.transport,
            airflow_major=self.airflow_major,
            base_url=self.base_url,
            credentials_secret=self.credentials_secret,
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RouteBase(_Strict):
    """What every route has: a name, a target on an environment (a DAG to start, or an asset
    to tell Airflow about), a conf or an event's extra, a pause switch."""

    name: Name = Field(description="unique among all routes; lower case, digits, '_' and '-'")
    description: str | None = Field(default=None, max_length=1024, description="free text")
    environment: Name = Field(description="alias of an entry under environments:")
    dag_id: str | None = Field(
        default=None,
        pattern=DAG_ID_PATTERN,
        description="the DAG to trigger (ASCII letters, digits, '_', '.', '-'; no leading '-'); "
        "give either dag_id or asset",
    )
    asset: str | None = Field(
        default=None,
        min_length=1,
        max_length=ASSET_URI_MAX_CHARS,
        description="instead of dag_id: the URI (or Airflow 3 name) of an asset, a Jinja "
        "template; each event creates an asset event (Airflow 2: a dataset event) and Airflow "
        "starts the DAGs that consume it. Needs transport invoke_rest_api or airflow_rest",
    )
    extra: dict[str, Any] | None = Field(
        default=None,
        description="asset routes only: the asset event's extra, a mapping whose string "
        "leaves are Jinja templates (default: the route kind's default conf)",
    )
    conf: dict[str, Any] | None = Field(
        default=None,
        description="conf as a mapping whose string leaves are Jinja templates; "
        "'{{ expr }}' alone keeps its type",
    )
    conf_template: str | None = Field(
        default=None,
        min_length=1,
        description="conf as one Jinja template that renders to a JSON object (instead of conf:)",
    )
    paused: bool = Field(default=False, description="matching events are recorded as IGNORED")

    @field_validator("conf", "extra")
    @classmethod
    def _conf_templates_compile(
        cls, value: dict[str, Any] | None, info: ValidationInfo
    ) -> dict[str, Any] | None:
        if value is not None:
            check_conf_template(value, field=str(info.field_name))
        return value

    @field_validator("asset")
    @classmethod
    def _asset_template_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            check_text_template(value, field="asset")
        return value

    @field_validator("conf_template")
    @classmethod
    def _conf_template_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            check_conf_template(value, field="conf_template")
            fixed = fixed_non_object(value)
            if fixed is not None:
                raise ValueError(
                    f"renders to {fixed} whatever the event, but a DAG run conf must be a JSON "
                    "object"
                )
        return value

    @model_validator(mode="after")
    def _one_target_and_conf_form(self) -> RouteBase:
        problems: list[tuple[Location, str]] = []
        if self.dag_id is None and self.asset is None:
            problems.append((("dag_id",), "give dag_id (a DAG to start) or asset (an asset event)"))
        if self.dag_id is not None and self.asset is not None:
            problems.append((("asset",), "give either dag_id or asset, not both"))
        if self.asset is not None:
            problems.extend(
                ((name,), "an asset event has no conf: give its extra: instead")
                for name in ("conf", "conf_template")
                if getattr(self, name) is not None
            )
        elif self.extra is not None:
            problems.append((("extra",), "only for asset routes: a DAG run takes conf:"))
        if self.conf is not None and self.conf_template is not None:
            problems.append((("conf_template",), "give either conf or conf_template, not both"))
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def target(self) -> str:
        """What the route starts, for messages: ``dag <id>`` or ``asset <uri template>``."""
        return f"asset {self.asset}" if self.asset is not None else f"dag {self.dag_id}"

    def conf_spec(self) -> Mapping[str, Any] | str | None:
        """The template to render: conf, conf_template (an asset route: extra), or the route
        kind's default."""
        if self.extra is not None:
            return self.extra
        if self.conf is not None:
            return self.conf
        return self.conf_template


#: the most objects one file set may hold (its member records are written one by one)
MAX_SET_OBJECTS = 10_000
#: the longest a set may wait for its completion (quiet_seconds, max_wait_seconds)
MAX_SET_WAIT_SECONDS = 7 * 24 * 3600
_S3_LOCATION = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>.*)$")


class FileSetConfig(_Strict):
    """Objects grouped into sets: one DAG run per complete set instead of one per object."""

    group: NonEmpty = Field(
        description="template over the object's variables naming the set it belongs to, e.g. "
        "'{{ dirname }}' or '{{ match.day }}'",
    )
    marker: NonEmpty | None = Field(
        default=None,
        description="a pattern for the basename of the object whose arrival completes the set "
        "(_SUCCESS, manifest.json, *.done); the marker's folder is listed then, so parts whose "
        "events are still on their way are in the set. The marker is not a member",
    )
    count: int | None = Field(
        default=None, ge=1, le=MAX_SET_OBJECTS, description="complete at this many objects"
    )
    quiet_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SET_WAIT_SECONDS,
        description="complete when no object has joined for this long (checked by the "
        "reconciler's pass: within one pass of the configured value)",
    )
    max_wait_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SET_WAIT_SECONDS,
        description="complete this long after the first object whatever else, recorded as such",
    )
    max_objects: int = Field(
        default=1000,
        ge=1,
        le=MAX_SET_OBJECTS,
        description="a set holding this many objects is complete (completion max_objects)",
    )
    late: Literal["record", "new_set"] = Field(
        default="record",
        description="an object arriving after its set completed is recorded LATE; new_set: it "
        "also starts the group's next set",
    )
    manifest: str | None = Field(
        default=None,
        max_length=1024,
        description="s3://bucket/prefix/ where a set's object list is written as JSON when it "
        "would make the conf larger than CONF_MAX_BYTES (the conf then carries its URI)",
    )

    @field_validator("group")
    @classmethod
    def _group_template_compiles(cls, value: str) -> str:
        check_text_template(value, field="group")
        return value

    @field_validator("manifest")
    @classmethod
    def _manifest_is_an_s3_location(cls, value: str | None) -> str | None:
        if value is not None and _S3_LOCATION.match(value) is None:
            raise ValueError("must be an S3 location: s3://bucket/prefix/")
        return value

    @model_validator(mode="after")
    def _completes_somehow(self) -> FileSetConfig:
        problems: list[tuple[Location, str]] = []
        if self.marker is None and self.count is None and self.quiet_seconds is None:
            problems.append(
                (("marker",), "a set needs a completion: give marker, count or quiet_seconds")
            )
        if self.count is not None and self.count > self.max_objects:
            problems.append(
                (("count",), f"count {self.count} is above max_objects {self.max_objects}")
            )
        if (
            self.quiet_seconds is not None
            and self.max_wait_seconds is not None
            and self.max_wait_seconds < self.quiet_seconds
        ):
            problems.append(
                (
                    ("max_wait_seconds",),
                    f"max_wait_seconds {self.max_wait_seconds} is below quiet_seconds "
                    f"{self.quiet_seconds}: the set would never be quiet long enough",
                )
            )
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def manifest_location(self) -> tuple[str, str] | None:
        """(bucket, key prefix) of ``manifest``, or None."""
        found = _S3_LOCATION.match(self.manifest) if self.manifest else None
        return (found["bucket"], found["prefix"]) if found else None


class S3Route(RouteBase):
    """Objects created in S3 that start a DAG run. Every filter given must match."""

    #: the conf an S3 route sends when it names none
    DEFAULT_CONF_TEMPLATE: ClassVar[Mapping[str, str]] = {
        "bucket": "{{ bucket }}",
        "key": "{{ key }}",
        "size": "{{ size }}",
        "etag": "{{ etag }}",
        "version_id": "{{ version_id }}",
        "sequencer": "{{ sequencer }}",
        "event_time": "{{ event_time }}",
    }

    buckets: list[BucketName] = Field(min_length=1, description="bucket names to listen to")
    prefix: NonEmpty | None = Field(default=None, description="the key starts with this")
    suffix: NonEmpty | None = Field(default=None, description="the key ends with this")
    glob: NonEmpty | None = Field(
        default=None,
        description="pattern for the whole key: '*' and '?' stay within one '/' segment, "
        "'**' crosses segments, '[abc]' and '[!abc]' are character classes",
    )
    regex: NonEmpty | None = Field(
        default=None,
        description="Python regular expression searched in the key (anchor it with ^ and $); "
        "named groups become the template variable match",
    )
    min_size: int | None = Field(default=None, ge=0, description="smallest size in bytes")
    max_size: int | None = Field(default=None, ge=0, description="largest size in bytes")
    file_set: FileSetConfig | None = Field(
        default=None,
        alias="set",
        description="group the matching objects into sets and start one run per complete set",
    )

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _size_bounds_ordered(self) -> S3Route:
        if (
            self.min_size is not None
            and self.max_size is not None
            and self.min_size > self.max_size
        ):
            raise FieldProblems(
                [
                    (
                        ("min_size",),
                        f"min_size {self.min_size} is larger than max_size {self.max_size}",
                    )
                ]
            )
        return self

    @model_validator(mode="after")
    def _a_set_starts_a_dag(self) -> S3Route:
        if self.file_set is None:
            return self
        problems: list[tuple[Location, str]] = [
            (
                (name,),
                f"a set's run gets the set's conf (group, objects, sizes): a route with set: "
                f"takes no {name}",
            )
            for name in ("conf", "conf_template")
            if getattr(self, name) is not None
        ]
        if self.asset is not None:
            problems.append((("set",), "a set starts one DAG run: give dag_id, not asset"))
        if problems:
            raise FieldProblems(problems)
        return self

    def conf_spec(self) -> Mapping[str, Any] | str | None:
        spec = super().conf_spec()
        return self.DEFAULT_CONF_TEMPLATE if spec is None else spec


class WebhookHmacConfig(_Strict):
    """The generic HMAC scheme: where the signature is and how it is computed."""

    header: str = Field(min_length=1, max_length=128, description="header carrying the signature")
    algorithm: Literal["sha256", "sha512", "sha1"] = Field(default="sha256")
    encoding: Literal["hex", "base64"] = Field(default="hex")
    prefix: str = Field(default="", max_length=32, description="e.g. 'sha256=' before the digest")
    timestamp_header: str | None = Field(
        default=None,
        max_length=128,
        description="when set, the signed content is '<timestamp>.<body>' and the timestamp "
        "must be within tolerance_seconds",
    )
    tolerance_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="when not given, the deployment's WEBHOOK_REPLAY_WINDOW_SECONDS applies; "
        "a route's own value can only narrow it",
    )
    delivery_id_header: str | None = Field(
        default=None, max_length=128, description="header with the sender's delivery id"
    )


class WebhookRoute(RouteBase):
    """A signed webhook, received at POST /v1/webhooks/{name}, that starts a DAG run."""

    scheme: Literal["standard-webhooks", "github", "hmac"] = Field(
        description="Standard Webhooks, GitHub X-Hub-Signature-256, or a generic HMAC"
    )
    secret: str = Field(
        min_length=1,
        max_length=2048,
        description="Secrets Manager name or ARN holding the signing secret(s)",
    )
    hmac: WebhookHmacConfig | None = Field(default=None, description="scheme hmac only")
    filter: str | None = Field(
        default=None,
        max_length=2048,
        description="JMESPath over {payload, headers}; a falsy result records the delivery as "
        "IGNORED instead of starting a run",
    )
    conf_jmespath: str | None = Field(
        default=None,
        max_length=4096,
        description="JMESPath over {payload, headers} that builds the conf object "
        "(instead of conf/conf_template)",
    )

    #: the conf a webhook route sends when it names none (the payload may be far too large)
    DEFAULT_CONF_TEMPLATE: ClassVar[Mapping[str, str]] = {
        "route": "{{ route }}",
        "delivery_id": "{{ delivery_id }}",
        "received_at": "{{ received_at }}",
    }

    @field_validator("filter", "conf_jmespath")
    @classmethod
    def _jmespath_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            import jmespath
            from jmespath.exceptions import JMESPathError

            try:
                jmespath.compile(value)
            except JMESPathError as exc:
                raise ValueError(f"not a valid JMESPath expression: {exc}") from None
        return value

    def conf_spec(self) -> Mapping[str, Any] | str | None:
        spec = super().conf_spec()
        return self.DEFAULT_CONF_TEMPLATE if spec is None else spec

    @model_validator(mode="after")
    def _scheme_fields_agree(self) -> WebhookRoute:
        problems: list[tuple[Location, str]] = []
        if self.scheme == "hmac" and self.hmac is None:
            problems.append((("hmac",), "scheme hmac needs an hmac: section"))
        if self.scheme != "hmac" and self.hmac is not None:
            problems.append((("hmac",), f"only for scheme hmac, not {self.scheme}"))
        if self.conf_jmespath is not None and (
            self.conf is not None or self.conf_template is not None
        ):
            problems.append((("conf_jmespath",), "give one of conf, conf_template, conf_jmespath"))
        if problems:
            raise FieldProblems(problems)
        return self


class ScheduleRoute(RouteBase):
    """A DAG started by EventBridge Scheduler; the schedule's input names this route.

    Conf templates see ``scheduled_time`` (ISO 8601, UTC), ``scheduled_date`` (YYYY-MM-DD),
    ``schedule_arn``, ``schedule_name``, ``schedule_group``, ``execution_id``, ``attempt``,
    ``route`` and ``conf`` (the schedule's own conf, which is also merged over the result).
    """

    #: the conf a schedule route sends when it names none (the schedule's conf is merged over it)
    DEFAULT_CONF_TEMPLATE: ClassVar[Mapping[str, str]] = {
        "scheduled_time": "{{ scheduled_time }}",
        "schedule_name": "{{ schedule_name }}",
    }

    def conf_spec(self) -> Mapping[str, Any] | str | None:
        spec = super().conf_spec()
        return self.DEFAULT_CONF_TEMPLATE if spec is None else spec


class RoutesFile(_Strict):
    """The whole routes file."""

    #: the list fields that hold routes; route names are unique across all of them
    ROUTE_LISTS: ClassVar[tuple[str, ...]] = ("s3", "webhooks", "schedules")

    version: Literal[1] = Field(description="format version of this file; only 1 exists")
    environments: dict[Name, EnvironmentConfig] = Field(
        min_length=1, description="Airflow environments by alias"
    )
    s3: list[S3Route] = Field(default_factory=list, description="routes for S3 Object Created")
    webhooks: list[WebhookRoute] = Field(
        default_factory=list, description="signed webhooks at POST /v1/webhooks/{name}"
    )
    schedules: list[ScheduleRoute] = Field(
        default_factory=list, description="targets for EventBridge Scheduler schedules"
    )

    @model_validator(mode="after")
    def _references_resolve(self) -> RoutesFile:
        problems: list[tuple[Location, str]] = []
        first_seen: dict[str, str] = {}
        for list_name, index, route in self.iter_routes():
            here = f"{list_name}[{index}]"
            if route.name in first_seen:
                problems.append(
                    (
                        (list_name, index, "name"),
                        f"route name {route.name!r} is already used by {first_seen[route.name]}",
                    )
                )
            else:
                first_seen[route.name] = here
            environment = self.environments.get(route.environment)
            if environment is None:
                known = ", ".join(sorted(self.environments)) or "none"
                problems.append(
                    (
                        (list_name, index, "environment"),
                        f"unknown environment {route.environment!r} (defined: {known})",
                    )
                )
            elif route.asset is not None and environment.transport is TransportKind.CLI:
                problems.append(
                    (
                        (list_name, index, "asset"),
                        f"environment {route.environment!r} uses transport cli, and the MWAA "
                        "CLI has no command that creates asset events: give this route an "
                        "environment with transport invoke_rest_api or airflow_rest",
                    )
                )
        if problems:
            raise FieldProblems(problems)
        return self

    #: the validation context key naming the environments the stack may trigger (its IAM grants)
    ALLOWED_ENVIRONMENTS: ClassVar[str] = "allowed_environment_names"

    @model_validator(mode="after")
    def _environments_are_granted(self, info: ValidationInfo) -> RoutesFile:
        allowed = (info.context or {}).get(self.ALLOWED_ENVIRONMENTS) or ()
        if not allowed:
            return self
        listed = ", ".join(allowed)
        problems: list[tuple[Location, str]] = [
            (
                ("environments", alias, "name"),
                f"environment {environment.name!r} is not one this stack may trigger "
                f"(MWAA_ENVIRONMENT_NAMES: {listed}): add it to the stack's MwaaEnvironmentNames "
                "parameter, which grants IAM on it, or name one of those",
            )
            for alias, environment in self.environments.items()
            if environment.name not in allowed
        ]
        if problems:
            raise FieldProblems(problems)
        return self

    #: the validation context key naming where the stack may write file sets' manifests
    GRANTED_MANIFEST_LOCATION: ClassVar[str] = "granted_manifest_location"

    @model_validator(mode="after")
    def _manifests_are_granted(self, info: ValidationInfo) -> RoutesFile:
        granted = (info.context or {}).get(self.GRANTED_MANIFEST_LOCATION)
        if granted is None:
            return self
        where = (
            f"under {granted} (SET_MANIFEST_LOCATION)"
            if granted
            else "nowhere: the stack's SetManifestLocation parameter is empty"
        )
        problems: list[tuple[Location, str]] = [
            (
                ("s3", index, "set", "manifest"),
                f"the stack may write manifests {where}; set SetManifestLocation, which grants "
                "the writes, to a location holding this one, or name one under it",
            )
            for index, route in enumerate(self.s3)
            if route.file_set is not None
            and route.file_set.manifest is not None
            and not (granted and route.file_set.manifest.startswith(granted))
        ]
        if problems:
            raise FieldProblems(problems)
        return self

    def iter_routes(self) -> Iterator[tuple[str, int, RouteBase]]:
        """Every route with the list it sits in and its index there."""
        for list_name in self.ROUTE_LISTS:
            routes: list[RouteBase] = getattr(self, list_name)
            for index, route in enumerate(routes):
                yield list_name, index, route

    def find_route(self, name: str) -> RouteBase | None:
        return next((route for _, _, route in self.iter_routes() if route.name == name), None)

    def environment_ref(self, alias: str) -> EnvironmentRef:
        """The environment behind an alias (validation guarantees routes name existing ones)."""
        return self.environments[alias].to_ref(alias)
