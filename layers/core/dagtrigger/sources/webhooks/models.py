"""The signature schemes, the per-route configuration of the generic HMAC scheme, the result."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

HmacAlgorithm = Literal["sha256", "sha512", "sha1"]
SignatureEncoding = Literal["hex", "base64"]

_ALGORITHMS: frozenset[str] = frozenset({"sha256", "sha512", "sha1"})
_ENCODINGS: frozenset[str] = frozenset({"hex", "base64"})
# An HTTP field name (RFC 9110 "token").
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# A prefix may not hold what separates repeated header values, or what is stripped around them.
_PREFIX = re.compile(r"[\x21-\x2b\x2d-\x7e]*")  # printable ASCII except "," and " "
_MAX_TOLERANCE_SECONDS = 24 * 3600


class SignatureScheme(StrEnum):
    STANDARD_WEBHOOKS = "standard-webhooks"
    GITHUB = "github"
    HMAC = "hmac"


@dataclass(frozen=True)
class HmacSchemeConfig:
    """The generic HMAC scheme, configured per webhook route.

    The signature is ``prefix`` + the hex or base64 HMAC of the raw body, or, when
    ``timestamp_header`` is set, of ``f"{timestamp}.{body}"`` (integer Unix seconds, checked
    against ``tolerance_seconds`` both ways). Header names match case-insensitively.
    """

    header: str
    algorithm: HmacAlgorithm = "sha256"
    encoding: SignatureEncoding = "hex"
    prefix: str = ""
    timestamp_header: str | None = None
    tolerance_seconds: int = 300
    delivery_id_header: str | None = None

    def __post_init__(self) -> None:
        _check_header_name("header", self.header)
        if self.timestamp_header is not None:
            _check_header_name("timestamp_header", self.timestamp_header)
        if self.delivery_id_header is not None:
            _check_header_name("delivery_id_header", self.delivery_id_header)
        if self.algorithm not in _ALGORITHMS:
            raise ValueError(
                f"algorithm must be one of {sorted(_ALGORITHMS)}, not {self.algorithm!r}"
            )
        if self.encoding not in _ENCODINGS:
            raise ValueError(f"encoding must be one of {sorted(_ENCODINGS)}, not {self.encoding!r}")
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError("prefix must be printable ASCII without commas or spaces")
        if isinstance(self.tolerance_seconds, bool) or not isinstance(self.tolerance_seconds, int):
            raise ValueError("tolerance_seconds must be an integer")
        if not 1 <= self.tolerance_seconds <= _MAX_TOLERANCE_SECONDS:
            raise ValueError(
                f"tolerance_seconds must be between 1 and {_MAX_TOLERANCE_SECONDS}, "
                f"not {self.tolerance_seconds}"
            )


@dataclass(frozen=True)
class VerifiedDelivery:
    """An authentic delivery. ``timestamp`` is None for schemes that sign none (GitHub)."""

    delivery_id: str | None
    timestamp: datetime | None
    scheme: SignatureScheme


def _check_header_name(field: str, name: str) -> None:
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"{field} must be an HTTP header name, not {name!r}")
