"""Entry points by the route's signature scheme: verify a delivery, or only name it (a dry run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from dagtrigger.sources.webhooks.generic_hmac import (
    generic_hmac_delivery_identity,
    verify_generic_hmac,
)
from dagtrigger.sources.webhooks.github import github_delivery_identity, verify_github
from dagtrigger.sources.webhooks.signing import (
    DEFAULT_REPLAY_WINDOW_SECONDS,
    DeliveryIdentity,
    HmacSchemeConfig,
    RequestHeaders,
    SignatureScheme,
    VerifiedDelivery,
    check_window_seconds,
)
from dagtrigger.sources.webhooks.standard import (
    standard_delivery_identity,
    verify_standard_webhooks,
)


def verify(
    scheme: SignatureScheme | str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    now: datetime,
    hmac_config: HmacSchemeConfig | None = None,
    replay_window_seconds: int = DEFAULT_REPLAY_WINDOW_SECONDS,
) -> VerifiedDelivery:
    """Check that ``body`` and ``headers`` were signed with one of ``secrets``.

    ``body`` is the raw request body exactly as sent (decode API Gateway's base64 first),
    ``headers`` the request headers (any case; repeated ones comma-joined, as API Gateway
    HTTP APIs deliver them), ``secrets`` every secret the route accepts (several while
    rotating), ``now`` the aware current time that signed timestamps are checked against,
    ``replay_window_seconds`` how far from ``now`` a signed timestamp may be (the generic
    scheme uses its config's ``tolerance_seconds`` if that is smaller).

    Raises SignatureError (answer a bare 401, log its ``reason``) when the delivery is not shown
    authentic; its subclass StaleTimestampError when it is authentic but its signed timestamp
    is outside the window (a refusal that may say so); WebhookSecretError (a server fault) when
    the secrets are unusable; ValueError or TypeError when called wrongly.
    """
    scheme = SignatureScheme(scheme)
    _check_call(body=body, now=now)
    check_window_seconds("replay_window_seconds", replay_window_seconds)
    request_headers = RequestHeaders(headers)
    if hmac_config is not None and scheme is not SignatureScheme.HMAC:
        raise ValueError(f"hmac_config applies to the hmac scheme only, not to {scheme.value}")
    if scheme is SignatureScheme.STANDARD_WEBHOOKS:
        return verify_standard_webhooks(
            request_headers,
            body=body,
            secrets=secrets,
            now=now,
            replay_window_seconds=replay_window_seconds,
        )
    if scheme is SignatureScheme.GITHUB:
        return verify_github(request_headers, body=body, secrets=secrets)
    if hmac_config is None:
        raise ValueError("the hmac scheme needs the route's hmac_config")
    return verify_generic_hmac(
        request_headers,
        body=body,
        secrets=secrets,
        now=now,
        config=hmac_config,
        replay_window_seconds=replay_window_seconds,
    )


def delivery_identity(
    scheme: SignatureScheme | str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    hmac_config: HmacSchemeConfig | None = None,
) -> DeliveryIdentity:
    """How ``scheme`` names the delivery (its id and replay key), WITHOUT checking its signature
    or its timestamp's window: for a dry run only, never to accept a delivery.

    Raises SignatureError when a header the identity needs is missing or malformed
    (``webhook-id`` for Standard Webhooks, the route's timestamp header for the generic scheme).
    """
    scheme = SignatureScheme(scheme)
    request_headers = RequestHeaders(headers)
    if scheme is SignatureScheme.STANDARD_WEBHOOKS:
        return standard_delivery_identity(request_headers, body=body)
    if scheme is SignatureScheme.GITHUB:
        return github_delivery_identity(request_headers, body=body)
    if hmac_config is None:
        raise ValueError("the hmac scheme needs the route's hmac_config")
    return generic_hmac_delivery_identity(request_headers, body=body, config=hmac_config)


def _check_call(*, body: bytes, now: datetime) -> None:
    if not isinstance(body, bytes):
        raise TypeError(f"body must be the raw bytes of the request, not {type(body).__name__}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
