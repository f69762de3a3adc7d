"""What a webhook route makes of one delivery: pause, filter, conf and ids.

``webhook_route_verdict`` is the one place that decides it once a delivery is named (by
``verify`` for a real delivery, by ``delivery_identity`` for a dry run): the service acts on
the verdict, the dry run shows it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from dagtrigger import ids
from dagtrigger.clock import iso_utc
from dagtrigger.conf import check_conf, render_conf
from dagtrigger.errors import MalformedRequestError, PayloadTooLargeError, RejectedError
from dagtrigger.routes.model import RoutesFile, WebhookHmacConfig, WebhookRoute
from dagtrigger.sources.webhooks.signing import DeliveryIdentity, HmacSchemeConfig, SignatureError
from dagtrigger.sources.webhooks.verify import delivery_identity
from dagtrigger.trigger.verdict import (
    ROUTE_PAUSED,
    Explanation,
    RouteVerdict,
    Verdict,
    paused_reason,
    render_asset_uri,
    route_target,
)

ROUTE_KIND = "webhooks"
FILTERED_OUT = "filtered_out"
#: headers never shown to filters and conf templates
_HIDDEN_HEADERS = frozenset({"authorization", "cookie", "x-amz-security-token"})


def webhook_route_verdict(
    route: WebhookRoute,
    *,
    payload: Any,
    headers: Mapping[str, str],
    identity: DeliveryIdentity,
    received_at: datetime,
    conf_max_bytes: int,
    recorded_run_id: str | None = None,
) -> RouteVerdict:
    """The verdict of ``route`` on a delivery named ``identity``, whose body is ``payload``.

    ``headers`` as received (those never shown to templates are left out here);
    ``recorded_run_id`` is the run id the ledger already holds for this delivery (a retry
    keeps it, so Airflow refuses a second run).
    """
    trigger_id = webhook_trigger_id(route.name, identity.replay_key)
    label = delivery_label(identity)
    run_id = ids.run_id_for_retry(
        recorded_run_id, "webhook", f"{route.name}-{label}", received_at, trigger_id
    )
    recorded = {
        **route_target(route),
        "kind": ROUTE_KIND,
        "trigger_id": trigger_id,
        "dag_run_id": run_id if route.dag_id is not None else None,
    }
    if route.paused:
        return RouteVerdict(
            **recorded,
            verdict=Verdict.PAUSED,
            code=ROUTE_PAUSED,
            reasons=(paused_reason(route.name),),
        )
    visible = visible_headers(headers)
    document = {"payload": payload, "headers": visible}
    variables = {
        **document,
        "delivery_id": label,
        "route": route.name,
        "received_at": iso_utc(received_at),
    }
    try:
        if route.filter is not None and not _search(route.filter, document, "filter"):
            filtered = f"the filter of route {route.name} is false for this delivery"
            return RouteVerdict(
                **recorded, verdict=Verdict.NO_MATCH, code=FILTERED_OUT, reasons=(filtered,)
            )
        conf = _build_conf(route, document, variables, conf_max_bytes)
        recorded["asset"] = render_asset_uri(route, variables)
    except RejectedError as rejected:
        return RouteVerdict(
            **recorded, verdict=Verdict.REJECT, code=rejected.code, reasons=(rejected.message,)
        )
    return RouteVerdict(**recorded, verdict=Verdict.TRIGGER, conf=conf)


def explain_webhook_delivery(
    routes: RoutesFile,
    *,
    name: str,
    body: bytes,
    headers: Mapping[str, str],
    received_at: datetime,
    conf_max_bytes: int,
    max_body_bytes: int,
    replay_window_seconds: int,
) -> Explanation:
    """A dry run of a delivery of ``body`` to POST /v1/webhooks/``name``: every webhook route's
    verdict. Its signature is NOT checked; raises ``MalformedRequestError`` for a body that is
    not JSON."""
    payload = parse_payload(body)
    verdicts = []
    for route in routes.webhooks:
        if route.name != name:
            elsewhere = f"deliveries to POST /v1/webhooks/{name} reach only the route named {name}"
            verdicts.append(
                RouteVerdict(
                    **route_target(route),
                    kind=ROUTE_KIND,
                    verdict=Verdict.NO_MATCH,
                    reasons=(elsewhere,),
                )
            )
            continue
        verdicts.append(
            _dry_run_verdict(
                route,
                body=body,
                payload=payload,
                headers=headers,
                received_at=received_at,
                conf_max_bytes=conf_max_bytes,
                max_body_bytes=max_body_bytes,
                replay_window_seconds=replay_window_seconds,
            )
        )
    named = next((route for route in routes.webhooks if route.name == name), None)
    if named is None:
        return Explanation(
            verdicts, [f"no webhook route is named {name!r}: the delivery would be answered 404"]
        )
    unsigned = (
        f"signatures are not checked by a dry run: a real delivery needs a valid {named.scheme} "
        "signature made with the route's secret (otherwise 401, and nothing is recorded)"
    )
    return Explanation(verdicts, [unsigned])


def _dry_run_verdict(
    route: WebhookRoute,
    *,
    body: bytes,
    payload: Any,
    headers: Mapping[str, str],
    received_at: datetime,
    conf_max_bytes: int,
    max_body_bytes: int,
    replay_window_seconds: int,
) -> RouteVerdict:
    """The route's verdict, or the refusal the delivery would get before any is made."""
    try:
        check_body_size(body, max_body_bytes)
        identity = delivery_identity(
            route.scheme,
            body=body,
            headers=headers,
            hmac_config=hmac_scheme_config(route.hmac, replay_window_seconds),
        )
    except PayloadTooLargeError as too_large:
        refusal, code = f"{too_large.message}: the delivery would be refused (413)", "too_large"
    except SignatureError as unnamed:
        refusal, code = f"{unnamed.detail}: the delivery would be refused (401)", "unauthenticated"
    else:
        return webhook_route_verdict(
            route,
            payload=payload,
            headers=headers,
            identity=identity,
            received_at=received_at,
            conf_max_bytes=conf_max_bytes,
        )
    return RouteVerdict(
        **route_target(route),
        kind=ROUTE_KIND,
        verdict=Verdict.REJECT,
        code=code,
        reasons=(refusal,),
    )


def webhook_source_identity(route_name: str, replay_key: str) -> str:
    """What makes two deliveries one: the route and the signed material, never an unsigned
    delivery id (recorded only)."""
    return f"webhook:{route_name}:signed:{replay_key}"


def webhook_trigger_id(route_name: str, replay_key: str) -> str:
    return ids.trigger_id(webhook_source_identity(route_name, replay_key), route_name)


def delivery_label(identity: DeliveryIdentity) -> str:
    """The delivery id the sender gave, else one named after the replay key."""
    return identity.delivery_id or f"sha256:{identity.replay_key[:32]}"


def hmac_scheme_config(
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


def check_body_size(body: bytes, max_bytes: int) -> None:
    if len(body) > max_bytes:
        raise PayloadTooLargeError(
            f"the body is {len(body)} bytes, over the limit of {max_bytes} bytes"
        )


def parse_payload(body: bytes) -> Any:
    """The delivery's JSON body; ``MalformedRequestError`` saying where it is not JSON."""
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


def visible_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in headers.items()
        if name.lower() not in _HIDDEN_HEADERS
    }


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
