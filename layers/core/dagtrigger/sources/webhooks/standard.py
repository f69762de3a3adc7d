"""Standard Webhooks (https://www.standardwebhooks.com), symmetric ``v1`` signatures.

The signed content is ``{webhook-id}.{webhook-timestamp}.{raw body}``, the key is the secret
``whsec_<base64>`` decoded, the signature ``v1,<base64 HMAC-SHA256>``; ``webhook-signature``
holds several, space-delimited, so that senders can sign with an old and a new key while
rotating. Asymmetric ``v1a`` and unknown versions are skipped, as the spec asks.

The timestamp must be within the replay window of the clock. The replay key covers the signed
id and the body, not the timestamp: the spec keeps ``webhook-id`` when a sender retries a
message and signs each attempt with a fresh timestamp, so a retry is the same delivery (it
finds its record), while nobody without the secret can change the id.

Only the tests use ``standardwebhooks``: its ``verify`` reads the wall clock, wants a UTF-8 body.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import datetime

from dagtrigger.sources.webhooks.signing import (
    DeliveryIdentity,
    RequestHeaders,
    SignatureError,
    SignatureFailure,
    SignatureScheme,
    VerifiedDelivery,
    WebhookSecretError,
    hmac_digest,
    parse_unix_seconds,
    replay_key,
    require_match,
    required_identifier,
    secret_list,
    within_replay_window,
)

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's marker, not a secret

_SYMMETRIC_VERSION = "v1"
_VERSION = re.compile(r"v[0-9]+[a-z]*")
# Base64 of a 32-byte HMAC-SHA256: 43 characters and one "=" of padding.
_V1_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{43}=")
_SPACES = re.compile(r"[ \t]+")


def decode_secret(secret: str, *, position: int = 1, count: int = 1) -> bytes:
    """The HMAC key in ``whsec_<base64>`` (the prefix and the padding are optional)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        key = b""
    if not key:
        raise WebhookSecretError(
            f"webhook secret {position} of {count} is not a Standard Webhooks secret "
            f"({SECRET_PREFIX} followed by non-empty base64)"
        )
    return key


def decode_secrets(secrets: Sequence[str]) -> list[bytes]:
    checked = secret_list(secrets)
    return [
        decode_secret(secret, position=position, count=len(checked))
        for position, secret in enumerate(checked, 1)
    ]


def parse_signature_list(value: str) -> list[tuple[str, str]]:
    """``(version, signature)`` pairs from ``webhook-signature``.

    The spec delimits entries with spaces; API Gateway joins a repeated header with commas,
    which are also the separator inside an entry. Base64 holds neither, so each space-delimited
    chunk is a comma-separated run of version,signature pairs (a trailing comma comes from
    joining).
    """
    pairs: list[tuple[str, str]] = []
    for chunk in _SPACES.split(value.strip(" \t")):
        parts = chunk.strip(",").split(",")
        if len(parts) % 2 or not all(parts):
            raise _bad_signature_list()
        for version, signature in zip(parts[::2], parts[1::2], strict=True):
            if not _VERSION.fullmatch(version):
                raise _bad_signature_list()
            pairs.append((version, signature))
    return pairs


def symmetric_signatures(value: str) -> list[bytes]:
    """The ``v1`` signatures of a ``webhook-signature`` value, as ASCII bytes."""
    signatures = []
    for version, signature in parse_signature_list(value):
        if version != _SYMMETRIC_VERSION:
            continue
        if not _V1_SIGNATURE.fullmatch(signature):
            raise _bad_signature_list()
        signatures.append(signature.encode("ascii"))
    if not signatures:
        raise SignatureError(
            SignatureFailure.BAD_FORMAT, f"the {SIGNATURE_HEADER} header has no v1 signature"
        )
    return signatures


def signature_for(key: bytes, *, msg_id: str, timestamp: str, body: bytes) -> bytes:
    """The base64 ``v1`` signature (without its ``v1,``) as ASCII bytes."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac_digest("sha256", key, content))


def verify_standard_webhooks(
    headers: RequestHeaders,
    *,
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    replay_window_seconds: int,
) -> VerifiedDelivery:
    keys = decode_secrets(secrets)
    msg_id = required_identifier(headers, ID_HEADER)
    raw_timestamp = headers.required_single(TIMESTAMP_HEADER)
    seconds = parse_unix_seconds(raw_timestamp, header=TIMESTAMP_HEADER)
    received = symmetric_signatures(headers.required(SIGNATURE_HEADER))
    expected = (
        signature_for(key, msg_id=msg_id, timestamp=raw_timestamp, body=body) for key in keys
    )
    require_match(expected, received, header=SIGNATURE_HEADER)
    timestamp = within_replay_window(
        seconds, now=now, window_seconds=replay_window_seconds, header=TIMESTAMP_HEADER
    )
    identity = _identity(msg_id, body)
    return VerifiedDelivery(
        delivery_id=identity.delivery_id,
        timestamp=timestamp,
        scheme=SignatureScheme.STANDARD_WEBHOOKS,
        replay_key=identity.replay_key,
    )


def standard_delivery_identity(headers: RequestHeaders, *, body: bytes) -> DeliveryIdentity:
    """The signed ``webhook-id`` and the replay key over it and the body (see the module)."""
    return _identity(required_identifier(headers, ID_HEADER), body)


def _identity(msg_id: str, body: bytes) -> DeliveryIdentity:
    return DeliveryIdentity(msg_id, replay_key((ID_HEADER, msg_id.encode("ascii")), ("body", body)))


def sign_standard_webhooks(
    body: bytes, *, secrets: Sequence[str], msg_id: str, timestamp: int
) -> dict[str, str]:
    """The three headers a Standard Webhooks sender adds: one ``v1`` signature per secret."""
    keys = decode_secrets(secrets)
    signatures = [
        signature_for(key, msg_id=msg_id, timestamp=str(timestamp), body=body).decode("ascii")
        for key in keys
    ]
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(f"{_SYMMETRIC_VERSION},{signature}" for signature in signatures),
    }


def _bad_signature_list() -> SignatureError:
    return SignatureError(
        SignatureFailure.BAD_FORMAT,
        f"the {SIGNATURE_HEADER} header is not a list of version,base64 entries",
    )
