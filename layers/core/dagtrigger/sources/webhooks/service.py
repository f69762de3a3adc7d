"""Signed webhooks: POST /v1/webhooks/{name} starts the DAG of the webhook route ``name``.

Order matters: the signature is checked on the raw bytes before anything else is believed
(nothing is recorded for an unauthentic delivery, so strangers cannot fill the table), and a
signed timestamp must be within the replay window; then the delivery's replay key (a hash of
what its signature covers, never of unsigned headers or the time it arrived) names the
trigger, so a replay, whatever delivery id it carries, finds the first delivery's record and
starts nothing. Then the payload is parsed, filtered and mapped to a conf
(``plan.webhook_route_verdict``, which the dry run shows too), and the trigger runs inline
within the API's short budget.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dagtrigger.clock import iso_utc
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import (
    InvalidRequestError,
    NotFoundError,
    TriggerFailedError,
    UnauthenticatedError,
)
from dagtrigger.ledger import NewTrigger, SourceType, TriggerStatus
from dagtrigger.observability import logger
from dagtrigger.routes.model import WebhookRoute
from dagtrigger.sources.webhooks import (
    SignatureError,
    StaleTimestampError,
    VerifiedDelivery,
    load_webhook_secrets,
    verify,
)
from dagtrigger.sources.webhooks.plan import (
    check_body_size,
    delivery_label,
    hmac_scheme_config,
    parse_payload,
    webhook_route_verdict,
    webhook_source_identity,
    webhook_trigger_id,
)
from dagtrigger.trigger.execute import (
    TriggerDisposition,
    TriggerOutcome,
    execute_trigger,
    record_without_trigger,
    rejection_of,
)
from dagtrigger.trigger.verdict import RouteVerdict, Verdict

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
    check_body_size(delivery.body, deps.settings.webhook_max_body_bytes)
    verified = _verify(route, delivery, deps)
    delivery_id = delivery_label(verified.identity)
    logger.append_keys(webhook=route.name, delivery_id=delivery_id)
    payload = parse_payload(delivery.body)
    recorded = deps.ledger.get(webhook_trigger_id(route.name, verified.replay_key))
    verdict = webhook_route_verdict(
        route,
        payload=payload,
        headers=delivery.headers,
        identity=verified.identity,
        received_at=delivery.received_at,
        conf_max_bytes=deps.settings.conf_max_bytes,
        recorded_run_id=recorded.get("dag_run_id") if recorded else None,
    )
    new = _new_trigger(route, delivery, verified, verdict)
    outcome = _act_on(verdict, new, deps)
    return _receipt(outcome, delivery_id)


def _webhook_route(name: str, deps: Dependencies) -> WebhookRoute:
    routes = deps.routes.get()
    route = next((candidate for candidate in routes.webhooks if candidate.name == name), None)
    if route is None:
        raise NotFoundError(f"no webhook named {name!r}")
    return route


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
            hmac_config=hmac_scheme_config(route.hmac, window),
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


def _new_trigger(
    route: WebhookRoute,
    delivery: WebhookDelivery,
    verified: VerifiedDelivery,
    verdict: RouteVerdict,
) -> NewTrigger:
    # The signed material names the trigger; the delivery id (unsigned but for Standard
    # Webhooks) is only recorded.
    return NewTrigger(
        trigger_id=str(verdict.trigger_id),
        source_type=SourceType.WEBHOOK,
        source_key=f"webhook:{route.name}",
        source_identity=webhook_source_identity(route.name, verified.replay_key),
        source_ref={
            "route": route.name,
            "delivery_id": delivery_label(verified.identity),
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
        dag_run_id=verdict.dag_run_id,
        asset_uri=verdict.asset,
        conf=verdict.conf,
        event_time=verified.timestamp or delivery.received_at,
    )


def _act_on(verdict: RouteVerdict, new: NewTrigger, deps: Dependencies) -> TriggerOutcome:
    """Start the run, or record why not (paused, filtered out, conf refused)."""
    if verdict.verdict is not Verdict.TRIGGER:
        return record_without_trigger(
            new,
            deps,
            status=verdict.recorded_status,
            code=verdict.code or "",
            message=verdict.reason,
        )
    environment = deps.routes.get().environment_ref(str(verdict.environment))
    try:
        return execute_trigger(new, environment, deps)
    except TriggerFailedError as failed:
        # The record says TRIGGER_FAILED: the sender's retry of the same signed delivery
        # (same replay key) retries it.
        raise TriggerFailedError(
            f"Airflow did not accept the trigger in time ({failed.message}); retry the delivery",
            attempts=failed.attempts,
        ) from failed


def _receipt(outcome: TriggerOutcome, delivery_id: str) -> WebhookReceipt:
    if outcome.record.get("status") == TriggerStatus.REJECTED:
        raise rejection_of(outcome.record)
    return WebhookReceipt(
        outcome.record, delivery_id, duplicate=outcome.disposition is TriggerDisposition.DUPLICATE
    )
