"""GitHub's ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``.

GitHub signs the body only: no timestamp, and ``X-GitHub-Delivery`` (kept the same on
redeliveries, hence the idempotency key) is not covered by the signature. A captured delivery
can therefore be replayed; the ledger's dedupe on the delivery id is what stops the replay
from triggering twice, as long as the replayer keeps the id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dagtrigger.sources.webhooks.digests import any_signature_matches, hmac_digest
from dagtrigger.sources.webhooks.errors import SignatureError, SignatureFailure
from dagtrigger.sources.webhooks.headers import RequestHeaders, optional_identifier, split_list
from dagtrigger.sources.webhooks.keys import utf8_keys
from dagtrigger.sources.webhooks.models import SignatureScheme, VerifiedDelivery

SIGNATURE_HEADER = "x-hub-signature-256"
DELIVERY_HEADER = "x-github-delivery"
_PREFIX = "sha256="
# GitHub writes lower-case hex; other spellings are not what GitHub sent.
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")


def received_signatures(value: str) -> list[bytes]:
    """The hex signatures of ``x-hub-signature-256`` (comma-joined when repeated)."""
    entries = split_list(value)
    if not entries or not all(_SIGNATURE.fullmatch(entry) for entry in entries):
        raise SignatureError(
            SignatureFailure.BAD_FORMAT,
            f"the {SIGNATURE_HEADER} header is not {_PREFIX} followed by 64 lower-case hex digits",
        )
    return [entry.removeprefix(_PREFIX).encode("ascii") for entry in entries]


def signature_for(key: bytes, body: bytes) -> bytes:
    return hmac_digest("sha256", key, body).hex().encode("ascii")


def verify_github(
    headers: RequestHeaders, *, body: bytes, secrets: Sequence[str]
) -> VerifiedDelivery:
    keys = utf8_keys(secrets)
    received = received_signatures(headers.required(SIGNATURE_HEADER))
    delivery_id = optional_identifier(headers, DELIVERY_HEADER)
    if not any_signature_matches((signature_for(key, body) for key in keys), received):
        raise SignatureError(SignatureFailure.MISMATCH, f"no {SIGNATURE_HEADER} entry matches")
    return VerifiedDelivery(delivery_id=delivery_id, timestamp=None, scheme=SignatureScheme.GITHUB)


def sign_github(body: bytes, *, secret: str, delivery_id: str | None = None) -> dict[str, str]:
    """The headers GitHub would send with ``body``."""
    (key,) = utf8_keys([secret])
    headers = {SIGNATURE_HEADER: _PREFIX + signature_for(key, body).decode("ascii")}
    if delivery_id is not None:
        headers[DELIVERY_HEADER] = delivery_id
    return headers
