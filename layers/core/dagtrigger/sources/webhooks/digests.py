"""HMAC digests and their constant-time comparison."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence


def hmac_digest(algorithm: str, key: bytes, content: bytes) -> bytes:
    return hmac.digest(key, content, algorithm)


def any_signature_matches(expected: Iterable[bytes], received: Sequence[bytes]) -> bool:
    """Whether any expected signature (one per secret) equals any received one.

    Signatures are compared as their encoded text (ASCII bytes), never decoded first: base64
    decoders ignore the unused low bits of the last character, so decoded comparison would
    accept several spellings of one signature.
    """
    return any(
        hmac.compare_digest(candidate, signature)
        for candidate in expected
        for signature in received
    )
