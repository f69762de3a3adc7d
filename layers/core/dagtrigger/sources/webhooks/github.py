"""GitHub's ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``.

GitHub signs the body only: no timestamp, and ``X-GitHub-Delivery`` is not covered by the
signature, so a replayer can send any id it likes. The replay key is therefore the body alone:
a captured delivery replayed, with or without a new id, is the same delivery for as long as the
ledger keeps its record. Each GitHub payload describes one event (its commits, ids and times),
so in practice two genuine deliveries never share a key; a redelivery from GitHub (same body,
same id) is rightly the same delivery.

The scheme is the generic HMAC scheme with one fixed configuration, so it signs and computes
signatures through that module; it keeps its own name in results and its own wording in errors.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagtrigger.sources.webhooks.generic_hmac import (
    sign_generic_hmac,
    signature_for,
    signature_pattern,
)
from dagtrigger.sources.webhooks.signing import (
    DeliveryIdentity,
    HmacSchemeConfig,
    RequestHeaders,
    SignatureScheme,
    VerifiedDelivery,
    optional_identifier,
    prefixed_signatures,
    replay_key,
    require_match,
    utf8_keys,
)

SIGNATURE_HEADER = "x-hub-signature-256"
DELIVERY_HEADER = "x-github-delivery"
# HMAC-SHA256 of the body, "sha256=" then lower-case hex (other spellings are not GitHub's).
AS_HMAC = HmacSchemeConfig(
    header=SIGNATURE_HEADER, prefix="sha256=", delivery_id_header=DELIVERY_HEADER
)


def received_signatures(value: str) -> list[bytes]:
    """The hex signatures of ``x-hub-signature-256`` (comma-joined when repeated)."""
    return prefixed_signatures(
        value,
        header=SIGNATURE_HEADER,
        pattern=signature_pattern(AS_HMAC),
        prefix=AS_HMAC.prefix,
        shape=f"{AS_HMAC.prefix} followed by 64 lower-case hex digits",
    )


def github_delivery_identity(headers: RequestHeaders, *, body: bytes) -> DeliveryIdentity:
    """The delivery id header (unsigned: information only) and the replay key over the body."""
    return DeliveryIdentity(
        optional_identifier(headers, DELIVERY_HEADER), replay_key(("body", body))
    )


def verify_github(
    headers: RequestHeaders, *, body: bytes, secrets: Sequence[str]
) -> VerifiedDelivery:
    keys = utf8_keys(secrets)
    received = received_signatures(headers.required(SIGNATURE_HEADER))
    identity = github_delivery_identity(headers, body=body)
    expected = (signature_for(AS_HMAC, key, body) for key in keys)
    require_match(expected, received, header=SIGNATURE_HEADER)
    return VerifiedDelivery(
        delivery_id=identity.delivery_id,
        timestamp=None,
        scheme=SignatureScheme.GITHUB,
        replay_key=identity.replay_key,
    )


def sign_github(body: bytes, *, secret: str, delivery_id: str | None = None) -> dict[str, str]:
    """The headers GitHub would send with ``body``."""
    return sign_generic_hmac(body, config=AS_HMAC, secret=secret, delivery_id=delivery_id)
