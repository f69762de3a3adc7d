"""The generic HMAC scheme, shaped per route by an HmacSchemeConfig.

The signed content is the raw body, or ``{timestamp}.{body}`` when the route names a
timestamp header (the Stripe/Slack defence against replays: the timestamp must then be within
the replay window). The delivery id, when the route names a header for it, is not signed, so it
is information only: the replay key covers the body and, when there is one, the timestamp.
Without a timestamp, two identical bodies are one delivery.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import datetime

from dagtrigger.sources.webhooks.signing import (
    DeliveryIdentity,
    HmacSchemeConfig,
    RequestHeaders,
    SignatureScheme,
    VerifiedDelivery,
    hmac_digest,
    optional_identifier,
    parse_unix_seconds,
    prefixed_signatures,
    replay_key,
    require_match,
    utf8_keys,
    within_replay_window,
)

_DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha512": 64}


def signature_pattern(config: HmacSchemeConfig) -> re.Pattern[str]:
    """The exact shape of one signature: prefix, then lower-case hex or padded base64."""
    size = _DIGEST_SIZES[config.algorithm]
    if config.encoding == "hex":
        body = f"[0-9a-f]{{{2 * size}}}"
    else:
        padding = -size % 3
        body = f"[A-Za-z0-9+/]{{{4 * -(-size // 3) - padding}}}={{{padding}}}"
    return re.compile(re.escape(config.prefix) + body)


def signature_for(config: HmacSchemeConfig, key: bytes, content: bytes) -> bytes:
    """The hex or base64 HMAC of ``content`` (without the prefix) as ASCII bytes."""
    digest = hmac_digest(config.algorithm, key, content)
    return digest.hex().encode("ascii") if config.encoding == "hex" else base64.b64encode(digest)


def signed_content(body: bytes, timestamp: str | None) -> bytes:
    return body if timestamp is None else f"{timestamp}.".encode() + body


def received_signatures(config: HmacSchemeConfig, value: str) -> list[bytes]:
    return prefixed_signatures(
        value,
        header=config.header,
        pattern=signature_pattern(config),
        prefix=config.prefix,
        shape=f"the configured prefix followed by a {config.encoding} {config.algorithm} HMAC"
        + (" (lower-case hex)" if config.encoding == "hex" else ""),
    )


def verify_generic_hmac(
    headers: RequestHeaders,
    *,
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    config: HmacSchemeConfig,
    replay_window_seconds: int,
) -> VerifiedDelivery:
    keys = utf8_keys(secrets)
    received = received_signatures(config, headers.required(config.header))
    delivery_id = optional_identifier(headers, config.delivery_id_header)
    raw_timestamp = _raw_timestamp(headers, config)
    content = signed_content(body, raw_timestamp)
    expected = (signature_for(config, key, content) for key in keys)
    require_match(expected, received, header=config.header)
    timestamp = None
    if config.timestamp_header is not None and raw_timestamp is not None:
        timestamp = within_replay_window(
            int(raw_timestamp),
            now=now,
            window_seconds=min(config.tolerance_seconds, replay_window_seconds),
            header=config.timestamp_header,
        )
    identity = _identity(delivery_id, raw_timestamp, body)
    return VerifiedDelivery(
        delivery_id=identity.delivery_id,
        timestamp=timestamp,
        scheme=SignatureScheme.HMAC,
        replay_key=identity.replay_key,
    )


def generic_hmac_delivery_identity(
    headers: RequestHeaders, *, body: bytes, config: HmacSchemeConfig
) -> DeliveryIdentity:
    """The delivery id header (unsigned: information only) and the replay key over the signed
    timestamp, when the route names one, and the body."""
    delivery_id = optional_identifier(headers, config.delivery_id_header)
    return _identity(delivery_id, _raw_timestamp(headers, config), body)


def _identity(delivery_id: str | None, raw_timestamp: str | None, body: bytes) -> DeliveryIdentity:
    signed: list[tuple[str, bytes]] = [("body", body)]
    if raw_timestamp is not None:
        signed.insert(0, ("timestamp", raw_timestamp.encode("ascii")))
    return DeliveryIdentity(delivery_id, replay_key(*signed))


def sign_generic_hmac(
    body: bytes,
    *,
    config: HmacSchemeConfig,
    secret: str,
    timestamp: int | None = None,
    delivery_id: str | None = None,
) -> dict[str, str]:
    """The headers a sender configured like ``config`` would add to ``body``."""
    if (timestamp is None) != (config.timestamp_header is None):
        raise ValueError("give a timestamp exactly when the config names a timestamp header")
    (key,) = utf8_keys([secret])
    raw_timestamp = None if timestamp is None else str(timestamp)
    signature = signature_for(config, key, signed_content(body, raw_timestamp)).decode("ascii")
    headers = {config.header.lower(): config.prefix + signature}
    if config.timestamp_header is not None and raw_timestamp is not None:
        headers[config.timestamp_header.lower()] = raw_timestamp
    if config.delivery_id_header is not None and delivery_id is not None:
        headers[config.delivery_id_header.lower()] = delivery_id
    return headers


def _raw_timestamp(headers: RequestHeaders, config: HmacSchemeConfig) -> str | None:
    """The timestamp header's value, checked to be integer Unix seconds (as it is signed)."""
    if config.timestamp_header is None:
        return None
    raw = headers.required_single(config.timestamp_header)
    parse_unix_seconds(raw, header=config.timestamp_header)
    return raw
