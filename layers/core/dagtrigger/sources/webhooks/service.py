"""Signed webhooks: POST /v1/webhooks/{name} starts the DAG of the webhook route ``name``.

Order matters: the signature is checked on the raw bytes before anything else is believed
(nothing is recorded for an unauthentic delivery, so strangers cannot fill the table), and a
signed timestamp must be within the replay window; then the delivery's replay key (a hash of
what its signature covers, never of unsigned headers or the time it arrived) names the
trigger, so a replay, whatever delivery id it carries, finds the first delivery's record and
starts nothing. Then the payload is parsed, filtered and mapped to a conf, and the trigger runs
inline within the API's short budget.
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
from dagtrigger.clock import iso_utc
from dagtrigger.conf import check_conf, render_conf
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import (
    InvalidRequestError,
    MalformedRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RejectedError,
    TriggerFailedError,
    UnauthenticatedError,
)
from dagtrigger.ledger import NewTrigger, SourceType, TriggerStatus
from dagtrigger.observability import logger
from dagtrigger.routes.model import WebhookHmacConfig, WebhookRoute
from dagtrigger.sources.webhooks import (
    HmacSchemeConfig,
    SignatureError,
    StaleTimestampError,
    VerifiedDelivery,
    load_webhook_secrets,
    verify,
)
from dagtrigger.trigger.execute import (
    TriggerDisposition,
    TriggerOutcome,
    execute_trigger,
    record_without_trigger,
    rejection_of,
)

#: headers never shown to filters and conf templates
_HIDDEN_HEADERS = frozenset({"authorization", "cookie", "x-amz-security-token"})
ROUTE_PAUSED = "route_paused"
FILTERED_OUT = "filtered_out"
UNAUTHENTIC = "the request could not be authenticated"
TIMESTAMP_OUTSIDE_WINDOW = "timestamp_outside_replay_window"


@dataclass(frozen=True)
class WebhookDelivery:
    """One request to POST /v1/webhooks/{name}, as received."""

    route_name: str
    body: bytes  # raw, base64-decoded if API Gateway encoded it
    headers: Mapping[str, str]  # lower-cased names, repeated headers comma-joined
    received_at: datetime


@dataclass(frozen=True)
class WebhookReceipt:
    """An authentic delivery's record; ``duplicate`` when the same signed delivery (same body,
    and same signed timestamp or id where the scheme signs one) was received before."""

    record: dict[str, Any]
    delivery_id: str
    duplicate: bool


def receive_webhook(delivery: WebhookDelivery, deps: Dependencies) -> WebhookReceipt:
    """Verify, record and trigger one delivery; every refusal is a domain error."""
    route = _webhook_route(delivery.route_name, deps)
    _check_body_size(delivery.body, deps.settings.webhook_max_body_bytes)
    verified = _verify(route, delivery, deps)
    delivery_id = verified.delivery_id or _derived_delivery_id(verified)
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
    return _receipt(outcome, delivery_id)


def _webhook_route(name: str, deps: Dependencies) -> WebhookRoute:
    routes = deps.routes.get()
    route = next((candidate for candidate in routes.webhooks if candidate.name == name), None)
    if route is None:
        raise NotFoundError(f"no webhook named {name!r}")
    return route


def _check_body_size(body: bytes, max_bytes: int) -> None:
    if len(body) > max_bytes:
        raise PayloadTooLargeError(
            f"the body is {len(body)} bytes, over the limit of {max_bytes} bytes"
        )


def _verify(route: WebhookRoute, delivery: WebhookDelivery, deps: Dependencies) -> VerifiedDelivery:
    secrets = load_webhook_secrets(
        route.secret,
        max_age=deps.settings.webhook_secret_max_age_seconds,
        provider=deps.secrets_provider(),
    )
    window = deps.settings.webhook_replay_window_seconds
    try:
        return verify(
            route.scheme,
            body=delivery.body,
            headers=delivery.headers,
            secrets=secrets,
            now=delivery.received_at,
            hmac_config=_hmac_config(route.hmac, window),
            replay_window_seconds=window,
        )
    except StaleTimestampError as stale:
        # Authentic, so saying what is wrong helps the sender and tells a forger nothing.
        logger.warning(
            "webhook refused: signed timestamp outside the replay window",
            extra={"webhook": route.name, "reason": stale.reason, "detail": stale.detail},
        )
        raise InvalidRequestError(
            f"{stale.detail}: a delivery is accepted only within {stale.window_seconds} s of "
            "its signed time, and this one is refused as a possible replay (a sender's retry "
            "signs a fresh timestamp; check the sender's clock)",
            location=("header", stale.header),
            code=TIMESTAMP_OUTSIDE_WINDOW,
        ) from None
    except SignatureError as refused:
        # The reason code is for us; the sender learns nothing about what failed.
        logger.warning(
            "webhook signature refused", extra={"webhook": route.name, "reason": refused.reason}
        )
        raise UnauthenticatedError(UNAUTHENTIC) from None


def _hmac_config(
    config: WebhookHmacConfig | None, replay_window_seconds: int
) -> HmacSchemeConfig | None:
    """The route's generic HMAC scheme; a route that sets no ``tolerance_seconds`` gets the
    deployment's replay window (one that does can only narrow it: ``verify`` takes the smaller).
    """
    if config is None:
        return None
    fields = config.model_dump()
    if "tolerance_seconds" not in config.model_fields_set:
        fields["tolerance_seconds"] = replay_window_seconds
    return HmacSchemeConfig(**fields)


def _derived_delivery_id(verified: VerifiedDelivery) -> str:
    """No delivery id was sent: name the delivery by its replay key."""
    return f"sha256:{verified.replay_key[:32]}"


def _parse_payload(body: bytes) -> Any:
    try:
        payload = json.loads(body)
        # JSON's "\ud800" escapes can smuggle in text that is not Unicode; nothing downstream
        # (templates, the ledger, Airflow) could store it.
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedRequestError(
            "the body is not valid UTF-8 JSON: it escapes a lone surrogate"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = ""
        if isinstance(exc, json.JSONDecodeError):
            where = f" at line {exc.lineno} column {exc.colno}"
        raise MalformedRequestError(f"the body is not valid UTF-8 JSON{where}") from None
    except RecursionError:  # Python's parser recurses once per level
        raise MalformedRequestError(
            "the body is not valid JSON: it nests arrays and objects too deeply to read"
        ) from None
    except ValueError:  # Python refuses to read an integer of more than 4,300 digits
        raise MalformedRequestError(
            "the body is not valid JSON: it holds a number too long to read"
        ) from None
    return payload


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
    deps: Dependencies,
) -> NewTrigger:
    # The signed material names the trigger; the delivery id (unsigned but for Standard
    # Webhooks) is only recorded.
    identity = f"webhook:{route.name}:signed:{verified.replay_key}"
    trigger_id = ids.trigger_id(identity, route.name)
    existing = deps.ledger.get(trigger_id)
    run_id = ids.run_id_for_retry(
        existing.get("dag_run_id") if existing else None,
        "webhook",
        f"{route.name}-{delivery_id}",
        delivery.received_at,
        trigger_id,
    )
    return NewTrigger(
        trigger_id=trigger_id,
        source_type=SourceType.WEBHOOK,
        source_key=f"webhook:{route.name}",
        source_identity=identity,
        source_ref={
            "route": route.name,
            "delivery_id": delivery_id,
            "replay_key": verified.replay_key,
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
    route: WebhookRoute, base: NewTrigger, variables: dict[str, Any], deps: Dependencies
) -> TriggerOutcome:
    if route.paused:
        paused = f"route {route.name} is paused"
        return _record(base, deps, TriggerStatus.IGNORED, ROUTE_PAUSED, paused)
    document = {"payload": variables["payload"], "headers": variables["headers"]}
    if route.filter is not None and not _search(route.filter, document, "filter"):
        filtered = f"the filter of route {route.name} is false for this delivery"
        return _record(base, deps, TriggerStatus.IGNORED, FILTERED_OUT, filtered)
    try:
        conf = _build_conf(route, document, variables, deps.settings.conf_max_bytes)
    except RejectedError as rejected:
        return _record(base, deps, TriggerStatus.REJECTED, rejected.code, rejected.message)
    new = replace(base, conf=conf)
    environment = deps.routes.get().environment_ref(route.environment)
    try:
        return execute_trigger(new, environment, deps)
    except TriggerFailedError as failed:
        # The record says TRIGGER_FAILED: the sender's retry of the same signed delivery
        # (same replay key) retries it.
        raise TriggerFailedError(
            f"Airflow did not accept the trigger in time ({failed.message}); retry the delivery",
            attempts=failed.attempts,
        ) from failed


def _record(
    base: NewTrigger, deps: Dependencies, status: TriggerStatus, code: str, message: str
) -> TriggerOutcome:
    return record_without_trigger(base, deps, status=status, code=code, message=message)


def _build_conf(
    route: WebhookRoute, document: dict[str, Any], variables: dict[str, Any], max_bytes: int
) -> dict[str, Any]:
    if route.conf_jmespath is None:
        return render_conf(route.conf_spec(), variables, max_bytes=max_bytes, route_name=route.name)
    # The sender's data as it is (never templated), if it is a small enough JSON object.
    conf = _search(route.conf_jmespath, document, "conf_jmespath")
    return check_conf(
        conf, max_bytes=max_bytes, where=f"route {route.name!r} ", origin="conf_jmespath gave"
    )


def _search(expression: str, document: dict[str, Any], field: str) -> Any:
    try:
        return jmespath.search(expression, document)
    except JMESPathError as exc:
        raise RejectedError("template_error", f"{field} failed: {exc}") from None


def _receipt(outcome: TriggerOutcome, delivery_id: str) -> WebhookReceipt:
    if outcome.record.get("status") == TriggerStatus.REJECTED:
        raise rejection_of(outcome.record)
    return WebhookReceipt(
        outcome.record, delivery_id, duplicate=outcome.disposition is TriggerDisposition.DUPLICATE
    )
