"""Discover the functions of a SAM template and their event sources, resolved for the local stack.

SAM's ``Globals.Function`` are merged the way SAM merges them: maps (``Environment.Variables``)
key by key with the function winning, lists (``Layers``) globals first, everything else
replaced by the function's own value.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from devstack.runner.cfn_yaml import TemplateError, load_template
from devstack.runner.intrinsics import LocalResource, Pseudo, TemplateResolver

SERVERLESS_FUNCTION: Final = "AWS::Serverless::Function"
IMPLICIT_HTTP_API: Final = "ServerlessHttpApi"
_DEFAULT_TIMEOUT_SECONDS: Final = 3
_DEFAULT_MEMORY_MB: Final = 128
_DEFAULT_ASYNC_RETRIES: Final = 2


@dataclass(frozen=True)
class LayerSpec:
    logical_id: str
    content_uri: Path
    arn: str


@dataclass(frozen=True)
class SqsEventSource:
    """An SQS event source mapping (SAM ``Type: SQS``)."""

    event_id: str
    queue_arn: str
    batch_size: int = 10
    maximum_batching_window_seconds: int = 0
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None
    enabled: bool = True


@dataclass(frozen=True)
class HttpApiRouteSpec:
    """A route of an HTTP API (SAM ``Type: HttpApi``), payload format 2.0."""

    event_id: str
    api_logical_id: str
    method: str
    path: str
    authorizer: str = "NONE"
    timeout_ms: int = 30_000

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule that invokes the function (``ScheduleV2`` or the older ``Schedule``)."""

    event_id: str
    kind: str
    name: str
    group_name: str
    arn: str
    expression: str
    timezone: str = "UTC"
    input: str | None = None
    enabled: bool = True
    flexible_window_minutes: int | None = None
    maximum_retry_attempts: int | None = None
    maximum_event_age_seconds: int | None = None
    dead_letter_arn: str | None = None
    start_date: str | None = None
    end_date: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """Everything the runner needs to load and invoke one function."""

    logical_id: str
    function_name: str
    arn: str
    code_uri: Path
    handler: str
    runtime: str
    timeout_seconds: int
    memory_mb: int
    environment: Mapping[str, str]
    layers: tuple[LayerSpec, ...] = ()
    sqs_sources: tuple[SqsEventSource, ...] = ()
    http_routes: tuple[HttpApiRouteSpec, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = ()
    async_maximum_retries: int = _DEFAULT_ASYNC_RETRIES
    dead_letter_queue_arn: str | None = None
    #: ``ReservedConcurrentExecutions``: the most execution environments at once (None: no cap)
    reserved_concurrency: int | None = None

    @property
    def handler_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_uri.joinpath(*module.split(".")).with_suffix(".py")

    @property
    def handler_attribute(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass(frozen=True)
class LocalTemplate:
    """A template resolved for the local stack: its resolver and its functions."""

    path: Path
    resolver: TemplateResolver
    functions: Mapping[str, FunctionSpec] = field(default_factory=dict)

    def resource(self, logical_id: str) -> LocalResource:
        return self.resolver.resource(logical_id)

    def resources_of_type(self, resource_type: str) -> dict[str, Mapping[str, Any]]:
        return self.resolver.active_resources(resource_type)

    def function(self, logical_id: str) -> FunctionSpec:
        try:
            return self.functions[logical_id]
        except KeyError:
            known = ", ".join(sorted(self.functions)) or "none"
            raise TemplateError(
                f"no function {logical_id!r} in {self.path} (functions: {known})"
            ) from None


def discover(
    template_path: Path,
    *,
    parameter_overrides: Mapping[str, str | list[str]] | None = None,
    pseudo: Pseudo | None = None,
) -> LocalTemplate:
    """Load `template_path` and resolve every active ``AWS::Serverless::Function`` in it."""
    template_path = template_path.resolve()
    document = load_template(template_path)
    resolver = TemplateResolver(document, parameter_overrides=parameter_overrides, pseudo=pseudo)
    globals_function = (document.get("Globals") or {}).get("Function") or {}
    functions = {
        logical_id: _function_spec(
            logical_id, definition, globals_function, resolver, template_path.parent
        )
        for logical_id, definition in resolver.active_resources(SERVERLESS_FUNCTION).items()
    }
    return LocalTemplate(template_path, resolver, functions)


def merge_globals(globals_function: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's merge: maps merge recursively, lists concatenate (globals first), scalars override."""
    merged: dict[str, Any] = dict(globals_function)
    for key, value in own.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping) and not _is_intrinsic(value):
            merged[key] = merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = [*current, *value]
        else:
            merged[key] = value
    return merged


def verify_layer_importable(layer: LayerSpec) -> None:
    """Each package in the layer's ContentUri must import from that folder (an editable install)."""
    packages = [child for child in layer.content_uri.iterdir() if (child / "__init__.py").is_file()]
    if not packages:
        raise TemplateError(f"layer {layer.logical_id}: no Python package in {layer.content_uri}")
    for package in packages:
        spec = importlib.util.find_spec(package.name)
        origin = Path(spec.origin).resolve() if spec and spec.origin else None
        if origin is None or not origin.is_relative_to(package.resolve()):
            raise TemplateError(
                f"layer {layer.logical_id}: package {package.name!r} does not import from "
                f"{package} (found {origin}); install the project editable (`make venv`)"
            )


def _is_intrinsic(value: Mapping[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))


def _function_spec(
    logical_id: str,
    definition: Mapping[str, Any],
    globals_function: Mapping[str, Any],
    resolver: TemplateResolver,
    base_dir: Path,
) -> FunctionSpec:
    where = f"Resources.{logical_id}.Properties"
    properties = merge_globals(globals_function, definition.get("Properties") or {})
    local = resolver.resource(logical_id)
    code_uri = resolver.resolve_string(_required(properties, "CodeUri", where), f"{where}.CodeUri")
    handler = resolver.resolve_string(_required(properties, "Handler", where), f"{where}.Handler")
    if "." not in handler:
        raise TemplateError(f"{where}.Handler: {handler!r} is not MODULE.FUNCTION")
    variables = resolver.resolve(
        (properties.get("Environment") or {}).get("Variables") or {},
        f"{where}.Environment.Variables",
    )
    spec = FunctionSpec(
        logical_id=logical_id,
        function_name=local.name,
        arn=local.arn,
        code_uri=(base_dir / code_uri).resolve(),
        handler=handler,
        runtime=resolver.resolve_string(properties.get("Runtime", ""), f"{where}.Runtime"),
        timeout_seconds=int(properties.get("Timeout", _DEFAULT_TIMEOUT_SECONDS)),
        memory_mb=int(properties.get("MemorySize", _DEFAULT_MEMORY_MB)),
        environment={
            name: _environment_text(value, f"{where}.Environment.Variables.{name}")
            for name, value in variables.items()
        },
        layers=tuple(
            _layer_spec(item, resolver, base_dir, f"{where}.Layers[{index}]")
            for index, item in enumerate(properties.get("Layers") or [])
        ),
        async_maximum_retries=int(
            (properties.get("EventInvokeConfig") or {}).get(
                "MaximumRetryAttempts", _DEFAULT_ASYNC_RETRIES
            )
        ),
        dead_letter_queue_arn=_dead_letter_queue(properties, resolver, where),
        reserved_concurrency=_reserved_concurrency(properties, resolver, where),
    )
    if not spec.handler_file.is_file():
        raise TemplateError(f"{where}: handler file {spec.handler_file} does not exist")
    return _with_events(spec, properties.get("Events") or {}, resolver, where)


def _with_events(
    spec: FunctionSpec,
    events: Mapping[str, Any],
    resolver: TemplateResolver,
    where: str,
) -> FunctionSpec:
    sqs: list[SqsEventSource] = []
    http: list[HttpApiRouteSpec] = []
    schedules: list[ScheduleSpec] = []
    for event_id, event in events.items():
        event_where = f"{where}.Events.{event_id}"
        event_type = event.get("Type")
        event_properties = resolver.resolve(event.get("Properties") or {}, event_where)
        if event_type == "SQS":
            sqs.append(_sqs_source(event_id, event_properties, event_where))
        elif event_type == "HttpApi":
            http.append(_http_route(event_id, event_properties, resolver, event_where))
        elif event_type in ("ScheduleV2", "Schedule"):
            schedules.append(
                _schedule(spec.logical_id, event_id, event_type, event_properties, resolver)
            )
        else:
            raise TemplateError(f"{event_where}: event type {event_type!r} is not run locally")
    return FunctionSpec(
        **{
            **spec.__dict__,
            "sqs_sources": tuple(sqs),
            "http_routes": tuple(http),
            "schedules": tuple(schedules),
        }
    )


def _sqs_source(event_id: str, properties: Mapping[str, Any], where: str) -> SqsEventSource:
    queue = _required(properties, "Queue", where)
    batch_size = int(properties.get("BatchSize", 10))
    window = int(properties.get("MaximumBatchingWindowInSeconds", 0))
    if not 1 <= batch_size <= 10_000 or (batch_size > 10 and window < 1):
        raise TemplateError(
            f"{where}.BatchSize: {batch_size} needs 1-10, or up to 10000 with a batching window"
        )
    concurrency = (properties.get("ScalingConfig") or {}).get("MaximumConcurrency")
    if concurrency is not None and not 2 <= int(concurrency) <= 1000:
        raise TemplateError(
            f"{where}.ScalingConfig.MaximumConcurrency: {concurrency} is not 2-1000"
        )
    return SqsEventSource(
        event_id=event_id,
        queue_arn=str(queue),
        batch_size=batch_size,
        maximum_batching_window_seconds=window,
        report_batch_item_failures="ReportBatchItemFailures"
        in (properties.get("FunctionResponseTypes") or []),
        maximum_concurrency=int(concurrency) if concurrency is not None else None,
        enabled=bool(properties.get("Enabled", True)),
    )


def _http_route(
    event_id: str, properties: Mapping[str, Any], resolver: TemplateResolver, where: str
) -> HttpApiRouteSpec:
    api_ref = properties.get("ApiId")
    api_logical_id = _api_logical_id(api_ref, resolver, where) if api_ref else IMPLICIT_HTTP_API
    api_definition = resolver.resources_section.get(api_logical_id) or {}
    api_properties = resolver.resolve(api_definition.get("Properties") or {}, api_logical_id)
    version = str(properties.get("PayloadFormatVersion", "2.0"))
    if version != "2.0":
        raise TemplateError(f"{where}.PayloadFormatVersion: only 2.0 is run locally, not {version}")
    authorizer = (properties.get("Auth") or {}).get("Authorizer") or (
        api_properties.get("Auth") or {}
    ).get("DefaultAuthorizer", "NONE")
    method = str(properties.get("Method", "ANY")).upper()
    return HttpApiRouteSpec(
        event_id=event_id,
        api_logical_id=api_logical_id,
        method="ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method,
        path=str(properties.get("Path", "$default")),
        authorizer=str(authorizer),
        timeout_ms=int(properties.get("TimeoutInMillis", 30_000)),
    )


def _api_logical_id(api_ref: Any, resolver: TemplateResolver, where: str) -> str:
    # ApiId is resolved already (to the local api id): find the HttpApi resource that owns it.
    for logical_id in resolver.active_resources("AWS::Serverless::HttpApi"):
        if resolver.resource(logical_id).ref == api_ref:
            return logical_id
    raise TemplateError(f"{where}.ApiId: {api_ref!r} is not an AWS::Serverless::HttpApi here")


def _schedule(
    function_id: str,
    event_id: str,
    kind: str,
    properties: Mapping[str, Any],
    resolver: TemplateResolver,
) -> ScheduleSpec:
    where = f"Resources.{function_id}.Properties.Events.{event_id}"
    region, account = resolver.pseudo.region, resolver.pseudo.account_id
    expression = str(
        _required(properties, "ScheduleExpression" if kind == "ScheduleV2" else "Schedule", where)
    )
    name = str(properties.get("Name") or f"{function_id}{event_id}")
    retry = properties.get("RetryPolicy") or {}
    if kind == "ScheduleV2":
        group = str(properties.get("GroupName") or "default")
        arn = f"arn:aws:scheduler:{region}:{account}:schedule/{group}/{name}"
        window = properties.get("FlexibleTimeWindow") or {}
        raw_input = properties.get("Input")
        enabled = str(properties.get("State", "ENABLED")).upper() == "ENABLED"
        timezone = str(properties.get("ScheduleExpressionTimezone") or "UTC")
    else:
        group = ""
        arn = f"arn:aws:events:{region}:{account}:rule/{name}"
        window = {}
        raw_input = properties.get("Input")
        enabled = (
            bool(properties.get("Enabled", True))
            and str(properties.get("State", "ENABLED")).upper() == "ENABLED"
        )
        timezone = "UTC"
    if raw_input is not None and not isinstance(raw_input, str):
        raw_input = json.dumps(raw_input)
    return ScheduleSpec(
        event_id=event_id,
        kind=kind,
        name=name,
        group_name=group,
        arn=arn,
        expression=expression,
        timezone=timezone,
        input=raw_input,
        enabled=enabled,
        flexible_window_minutes=(
            int(window["MaximumWindowInMinutes"]) if window.get("Mode") == "FLEXIBLE" else None
        ),
        maximum_retry_attempts=_optional_int(retry.get("MaximumRetryAttempts")),
        maximum_event_age_seconds=_optional_int(retry.get("MaximumEventAgeInSeconds")),
        dead_letter_arn=(properties.get("DeadLetterConfig") or {}).get("Arn"),
        start_date=properties.get("StartDate"),
        end_date=properties.get("EndDate"),
    )


def _layer_spec(item: Any, resolver: TemplateResolver, base_dir: Path, where: str) -> LayerSpec:
    logical_id = item.get("Ref") if isinstance(item, Mapping) else None
    definition = resolver.resources_section.get(logical_id or "") or {}
    if definition.get("Type") != "AWS::Serverless::LayerVersion":
        raise TemplateError(f"{where}: only !Ref to an AWS::Serverless::LayerVersion runs locally")
    content_uri = resolver.resolve_string(
        _required(definition.get("Properties") or {}, "ContentUri", f"Resources.{logical_id}"),
        f"Resources.{logical_id}.Properties.ContentUri",
    )
    assert logical_id is not None
    return LayerSpec(
        logical_id, (base_dir / content_uri).resolve(), resolver.resource(logical_id).arn
    )


def _dead_letter_queue(
    properties: Mapping[str, Any], resolver: TemplateResolver, where: str
) -> str | None:
    dead_letter = properties.get("DeadLetterQueue")
    if not dead_letter:
        return None
    if dead_letter.get("Type") != "SQS":
        raise TemplateError(f"{where}.DeadLetterQueue: only Type SQS is run locally")
    return resolver.resolve_string(dead_letter.get("TargetArn"), f"{where}.DeadLetterQueue")


def _reserved_concurrency(
    properties: Mapping[str, Any], resolver: TemplateResolver, where: str
) -> int | None:
    value = properties.get("ReservedConcurrentExecutions")
    if value is None:
        return None
    resolved = resolver.resolve(value, f"{where}.ReservedConcurrentExecutions")
    try:
        reserved = int(resolved)
    except (TypeError, ValueError):
        reserved = -1
    if reserved < 0:
        raise TemplateError(
            f"{where}.ReservedConcurrentExecutions: {resolved!r} is not a count (0 or more)"
        )
    return reserved


def _required(properties: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in properties:
        raise TemplateError(f"{where}: {name} is required")
    return properties[name]


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _environment_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"{where}: an environment variable must be a string, got {value!r}")
