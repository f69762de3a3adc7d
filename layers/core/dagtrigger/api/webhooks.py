"""Signed webhooks: POST /v1/webhooks/{name} starts the DAG of the webhook route ``name``.

Order matters: the signature is checked on the raw bytes before anything else is believed
(nothing is recorded for an unauthentic delivery, so strangers cannot fill the table), then
the delivery id (the sender's idempotency key) names the trigger, then the payload is parsed,
filtered and mapped to a conf, and the trigger runs inline within the API's short budget.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from dagtrigger import ids
from dagtrigger.api.context import ApiDependencies
from dagtrigger.api.models import Links, WebhookAccepted, trigger_link
from dagtrigger.api.problems import ApiProblem, ProblemCode, unavailable
from dagtrigger.api.runs import kept_run_id, rejection_problem
from dagtrigger.clock import iso_utc
from dagtrigger.conf import render_conf
from dagtrigger.errors import RejectedError, TriggerFailedError
from dagtrigger.ledger import NewTrigger, SourceType, TriggerStatus
from dagtrigger.observability import logger
from dagtrigger.routes.model import WebhookHmacConfig, WebhookRoute
from dagtrigger.sources.webhooks import (
    HmacSchemeConfig,
    SignatureError,
    VerifiedDelivery,
    load_webhook_secrets,
    verify,
)
from dagtrigger.trigger.execute import (
    TriggerDisposition,
    TriggerOutcome,
    execute_trigger,
    record_without_trigger,
)

#: the conf a webhook route sends when it names none (the payload may be far too large)
DEFAULT_WEBHOOK_CONF: Mapping[str, str] = {
    "route": "{{ route }}",
    "delivery_id": "{{ delivery_id }}",
    "received_at": "{{ received_at }}",
}
#: headers never shown to filters and conf templates
_HIDDEN_HEADERS = frozenset({"authorization", "cookie", "x-amz-security-token"})
ROUTE_PAUSED = "route_paused"
FILTERED_OUT = "filtered_out"
UNAUTHENTIC = "the request could not be authenticated"


@dataclass(frozen=True)
class WebhookDelivery:
    """One request to POST /v1/webhooks/{name}, as received."""

    route_name: str
    body: bytes  # raw, base64-decoded if API Gateway encoded it
    headers: Mapping[str, str]  # lower-cased names, repeated headers comma-joined
    received_at: datetime


@dataclass(frozen=True)
class WebhookAnswer:
    body: WebhookAccepted


def receive_webhook(delivery: WebhookDelivery, deps: ApiDependencies) -> WebhookAnswer:
    """Verify, record and trigger one delivery. Raises ``ApiProblem`` for every refusal."""
    route = _webhook_route(delivery.route_name, deps)
    _check_body_size(delivery.body, deps.settings.webhook_max_body_bytes)
    verified = _verify(route, delivery, deps)
    delivery_id = verified.delivery_id or _derived_delivery_id(delivery, verified)
    logger.append_keys(webhook=route.name, delivery_id=delivery_id)
    payload = _parse_payload(delivery.body)
    headers = _visible_headers(delivery.headers)
    variables = {
        "payload": payload,
        "headers": headers,
        "delivery_id": delivery_id,
        "route": route.name,
        "received_at": iso_utc(delivery.received_at),
    }
    base = _new_trigger(route, delivery, verified, delivery_id, deps)
    outcome = _route_delivery(route, base, variables, deps)
    return _answer(outcome, delivery_id)


def _webhook_route(name: str, deps: ApiDependencies) -> WebhookRoute:
    routes = deps.core.routes.get()
    route = next((candidate for candidate in routes.webhooks if candidate.name == name), None)
    if route is None:
        raise ApiProblem(ProblemCode.NOT_FOUND, f"no webhook named {name!r}")
    return route


def _check_body_size(body: bytes, max_bytes: int) -> None:
    if len(body) > max_bytes:
        raise ApiProblem(
            ProblemCode.PAYLOAD_TOO_LARGE,
            f"the body is {len(body)} bytes, over the limit of {max_bytes} bytes",
        )


def _verify(
    route: WebhookRoute, delivery: WebhookDelivery, deps: ApiDependencies
) -> VerifiedDelivery:
    secrets = load_webhook_secrets(
        route.secret,
        max_age=deps.settings.webhook_secret_max_age_seconds,
        provider=deps.secrets_provider,
    )
    try:
        return verify(
            route.scheme,
            body=delivery.body,
            headers=delivery.headers,
            secrets=secrets,
            now=delivery.received_at,
            hmac_config=_hmac_config(route.hmac),
        )
    except SignatureError as refused:
        # The reason code is for us; the sender learns nothing about what failed.
        logger.warning(
            "webhook signature refused", extra={"webhook": route.name, "reason": refused.reason}
        )
        raise ApiProblem(ProblemCode.UNAUTHORIZED, UNAUTHENTIC) from None


def _hmac_config(config: WebhookHmacConfig | None) -> HmacSchemeConfig | None:
    if config is None:
        return None
    return HmacSchemeConfig(**config.model_dump())


def _derived_delivery_id(delivery: WebhookDelivery, verified: VerifiedDelivery) -> str:
    """No delivery id was sent: the body's digest and the (signed, else received) time."""
    moment = verified.timestamp or delivery.received_at
    digest = hashlib.sha256(delivery.body).hexdigest()
    return f"sha256:{digest[:32]}@{iso_utc(moment)}"


def _parse_payload(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = ""
        if isinstance(exc, json.JSONDecodeError):
            where = f" at line {exc.lineno} column {exc.colno}"
        raise ApiProblem(
            ProblemCode.BAD_REQUEST, f"the body is not valid UTF-8 JSON{where}"
        ) from None


def _visible_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in headers.items()
        if name.lower() not in _HIDDEN_HEADERS
    }


def _new_trigger(
    route: WebhookRoute,
    delivery: WebhookDelivery,
    verified: VerifiedDelivery,
    delivery_id: str,
    deps: ApiDependencies,
) -> NewTrigger:
    identity = f"webhook:{route.name}:{delivery_id}"
    trigger_id = ids.trigger_id(identity, route.name)
    existing = deps.core.ledger.get(trigger_id)
    readable = f"{route.name}-{delivery_id}"
    run_id = kept_run_id(existing, "webhook", readable, delivery.received_at, trigger_id)
    return NewTrigger(
        trigger_id=trigger_id,
        source_type=SourceType.WEBHOOK,
        source_key=f"webhook:{route.name}",
        source_identity=identity,
        source_ref={
            "route": route.name,
            "delivery_id": delivery_id,
            "scheme": str(verified.scheme),
            "signed_at": verified.timestamp and iso_utc(verified.timestamp),
            "event": delivery.headers.get("x-github-event"),
            "body_bytes": len(delivery.body),
            "body_sha256": hashlib.sha256(delivery.body).hexdigest(),
        },
        route=route.name,
        environment=route.environment,
        dag_id=route.dag_id,
        dag_run_id=run_id,
        conf=None,
        event_time=verified.timestamp or delivery.received_at,
    )


def _route_delivery(
    route: WebhookRoute, base: NewTrigger, variables: dict[str, Any], deps: ApiDependencies
) -> TriggerOutcome:
    core = deps.core
    if route.paused:
        paused = f"route {route.name} is paused"
        return _record(base, deps, TriggerStatus.IGNORED, ROUTE_PAUSED, paused)
    document = {"payload": variables["payload"], "headers": variables["headers"]}
    if route.filter is not None and not _search(route.filter, document, "filter"):
        filtered = f"the filter of route {route.name} is false for this delivery"
        return _record(base, deps, TriggerStatus.IGNORED, FILTERED_OUT, filtered)
    try:
        conf = _build_conf(route, document, variables, core.settings.conf_max_bytes)
    except RejectedError as rejected:
        return _record(base, deps, TriggerStatus.REJECTED, rejected.code, rejected.message)
    new = replace(base, conf=conf)
    environment = core.routes.get().environment_ref(route.environment)
    try:
        return execute_trigger(new, environment, core)
    except TriggerFailedError as failed:
        # The record says TRIGGER_FAILED: the sender's retry with the same id retries it.
        raise unavailable(
            f"Airflow did not accept the trigger in time ({failed.message}); retry the delivery",
            retry_after_seconds=deps.settings.retry_after_seconds,
        ) from failed


def _record(
    base: NewTrigger, deps: ApiDependencies, status: TriggerStatus, code: str, message: str
) -> TriggerOutcome:
    return record_without_trigger(base, deps.core, status=status, code=code, message=message)


def _build_conf(
    route: WebhookRoute, document: dict[str, Any], variables: dict[str, Any], max_bytes: int
) -> dict[str, Any]:
    if route.conf_jmespath is None:
        spec = route.conf_spec()
        return render_conf(
            DEFAULT_WEBHOOK_CONF if spec is None else spec,
            variables,
            max_bytes=max_bytes,
            route_name=route.name,
        )
    conf = _search(route.conf_jmespath, document, "conf_jmespath")
    if not isinstance(conf, dict):
        raise RejectedError(
            "conf_not_object",
            f"route {route.name!r} conf_jmespath gave {type(conf).__name__}, "
            "but a DAG run conf must be a JSON object",
        )
    return _within_size(conf, max_bytes, route.name)


def _within_size(conf: dict[str, Any], max_bytes: int, route_name: str) -> dict[str, Any]:
    """The JMESPath result as it is (never templated: it is the sender's data), if small enough."""
    try:
        text = json.dumps(conf, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise RejectedError(
            "conf_not_json", f"route {route_name!r} conf holds NaN or Infinity"
        ) from None
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise RejectedError(
            "conf_too_large",
            f"route {route_name!r} conf is {size} bytes of JSON, over the limit of "
            f"{max_bytes} bytes",
        )
    return conf


def _search(expression: str, document: dict[str, Any], field: str) -> Any:
    try:
        return jmespath.search(expression, document)
    except JMESPathError as exc:
        raise RejectedError("template_error", f"{field} failed: {exc}") from None


def _answer(outcome: TriggerOutcome, delivery_id: str) -> WebhookAnswer:
    record = outcome.record
    status = TriggerStatus(record["status"])
    if status is TriggerStatus.REJECTED:
        raise rejection_problem(record)
    trigger_id = str(record["trigger_id"])
    return WebhookAnswer(
        body=WebhookAccepted(
            trigger_id=trigger_id,
            status=status,
            delivery_id=delivery_id,
            duplicate=outcome.disposition is TriggerDisposition.DUPLICATE,
            links=Links(self_=trigger_link(trigger_id)),
        )
    )
