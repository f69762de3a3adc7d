"""One entry point that verifies a webhook delivery under the route's signature scheme."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from dagtrigger.sources.webhooks.generic_hmac import verify_generic_hmac
from dagtrigger.sources.webhooks.github import verify_github
from dagtrigger.sources.webhooks.signing import (
    HmacSchemeConfig,
    RequestHeaders,
    SignatureScheme,
    VerifiedDelivery,
)
from dagtrigger.sources.webhooks.standard import verify_standard_webhooks


def verify(
    scheme: SignatureScheme | str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    now: datetime,
    hmac_config: HmacSchemeConfig | None = None,
) -> VerifiedDelivery:
    """Check that ``body`` and ``headers`` were signed with one of ``secrets``.

    ``body`` is the raw request body exactly as sent (decode API Gateway's base64 first),
    ``headers`` the request headers (any case; repeated ones comma-joined, as API Gateway
    HTTP APIs deliver them), ``secrets`` every secret the route accepts (several while
    rotating), ``now`` the aware current time that signed timestamps are checked against.

    Raises SignatureError (answer 401, log its ``reason``) when the delivery is not shown
    authentic, WebhookSecretError (a server fault) when the secrets are unusable, and
    ValueError or TypeError when called wrongly.
    """
    scheme = SignatureScheme(scheme)
    _check_call(body=body, now=now)
    request_headers = RequestHeaders(headers)
    if hmac_config is not None and scheme is not SignatureScheme.HMAC:
        raise ValueError(f"hmac_config applies to the hmac scheme only, not to {scheme.value}")
    if scheme is SignatureScheme.STANDARD_WEBHOOKS:
        return verify_standard_webhooks(request_headers, body=body, secrets=secrets, now=now)
    if scheme is SignatureScheme.GITHUB:
        return verify_github(request_headers, body=body, secrets=secrets)
    if hmac_config is None:
        raise ValueError("the hmac scheme needs the route's hmac_config")
    return verify_generic_hmac(
        request_headers, body=body, secrets=secrets, now=now, config=hmac_config
    )


def _check_call(*, body: bytes, now: datetime) -> None:
    if not isinstance(body, bytes):
        raise TypeError(f"body must be the raw bytes of the request, not {type(body).__name__}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
