"""What the signature schemes share, read top-down.

Why a delivery is refused; the schemes, the generic scheme's configuration and the result;
request headers as API Gateway delivers them; signed timestamps and the replay window; the
replay key of a verified delivery; the secrets a route accepts; signatures read from their
header, HMAC digests and their constant-time comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from dagtrigger.errors import DagTriggerError, UnauthenticatedError

# --- why a delivery is refused, and what is wrong with its configured secrets -------------


class SignatureFailure(StrEnum):
    """Reason codes for logs and metrics.

    The HTTP answer is a bare 401 whatever the reason, except for a StaleTimestampError (an
    authentic delivery outside the replay window), which may say what is wrong.
    """

    MISSING_HEADER = "missing_header"
    BAD_FORMAT = "bad_format"
    TIMESTAMP_OUT_OF_TOLERANCE = "timestamp_out_of_tolerance"
    MISMATCH = "mismatch"


class SignatureError(UnauthenticatedError):
    """The delivery is not authentic (or cannot be shown to be).

    ``reason`` is the code to log and count; ``detail`` names the header at fault. Neither ever
    holds a secret, an expected signature or a header's value, so both are safe to log, but
    neither belongs in the HTTP response: telling a forger what failed helps the forger.
    """

    def __init__(self, reason: SignatureFailure, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class StaleTimestampError(SignatureError):
    """An authentic delivery whose signed timestamp is outside the replay window.

    Raised only once a signature matched, so what it says (which header, how far off the clock,
    the window) tells a forger nothing and may be told to the sender; a forged delivery with a
    stale timestamp is a plain mismatch. ``header`` names the timestamp header.
    """

    def __init__(self, detail: str, *, header: str, window_seconds: int) -> None:
        super().__init__(SignatureFailure.TIMESTAMP_OUT_OF_TOLERANCE, detail)
        self.header = header
        self.window_seconds = window_seconds


class WebhookSecretError(DagTriggerError):
    """The configured secrets are unusable (missing, empty, malformed): a server-side fault.

    Messages name the secret (by its Secrets Manager name or its position), never its value.
    """


# --- the schemes, the per-route configuration of the generic HMAC scheme, the result ------

HmacAlgorithm = Literal["sha256", "sha512", "sha1"]
SignatureEncoding = Literal["hex", "base64"]

_ALGORITHMS: frozenset[str] = frozenset({"sha256", "sha512", "sha1"})
_ENCODINGS: frozenset[str] = frozenset({"hex", "base64"})
# An HTTP field name (RFC 9110 "token").
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# A prefix may not hold what separates repeated header values, or what is stripped around them.
_PREFIX = re.compile(r"[\x21-\x2b\x2d-\x7e]*")  # printable ASCII except "," and " "
_MAX_TOLERANCE_SECONDS = 24 * 3600
#: how far a signed timestamp may be from the clock, unless the caller says otherwise
DEFAULT_REPLAY_WINDOW_SECONDS = 300


class SignatureScheme(StrEnum):
    STANDARD_WEBHOOKS = "standard-webhooks"
    GITHUB = "github"
    HMAC = "hmac"


@dataclass(frozen=True)
class HmacSchemeConfig:
    """The generic HMAC scheme, configured per webhook route.

    The signature is ``prefix`` + the hex or base64 HMAC of the raw body, or, when
    ``timestamp_header`` is set, of ``f"{timestamp}.{body}"`` (integer Unix seconds, checked
    both ways against ``tolerance_seconds`` or the caller's replay window, whichever is
    smaller). Header names match case-insensitively.
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
        check_window_seconds("tolerance_seconds", self.tolerance_seconds)


@dataclass(frozen=True)
class VerifiedDelivery:
    """An authentic delivery.

    ``timestamp`` is None for schemes that sign none (GitHub, the generic scheme without a
    timestamp header). ``delivery_id`` is the sender's id as received: signed by Standard
    Webhooks only, so for GitHub and the generic scheme it is information, not evidence.
    ``replay_key`` (see ``replay_key``) names the delivery by what its signature covers: the
    same key is the same delivery, whatever unsigned headers came with it.
    """

    delivery_id: str | None
    timestamp: datetime | None
    scheme: SignatureScheme
    replay_key: str

    @property
    def identity(self) -> DeliveryIdentity:
        return DeliveryIdentity(self.delivery_id, self.replay_key)


@dataclass(frozen=True)
class DeliveryIdentity:
    """What names a delivery: the sender's delivery id as received (None when it sent none),
    and the replay key over what the scheme signs. Each scheme reads it from a delivery in one
    function that its verification uses too, so a dry run, which checks no signature, names a
    delivery exactly as the real path does."""

    delivery_id: str | None
    replay_key: str


def check_window_seconds(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer")
    if not 1 <= value <= _MAX_TOLERANCE_SECONDS:
        raise ValueError(f"{field} must be between 1 and {_MAX_TOLERANCE_SECONDS}, not {value}")
    return value


def _check_header_name(field: str, name: str) -> None:
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"{field} must be an HTTP header name, not {name!r}")


# --- request headers as API Gateway HTTP APIs deliver them --------------------------------
# Names arrive lower-cased and a repeated header arrives once, its values joined by commas
# (HTTP's own rule for combining field lines). Callers may still pass mixed-case names.

# What HTTP strips around a field value (optional whitespace).
_OPTIONAL_WHITESPACE = " \t"
# Identifiers (delivery ids) are visible ASCII: the ledger keys on them and logs show them.
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,256}")


def split_list(value: str) -> list[str]:
    """The non-empty members of a comma-separated header value, stripped of whitespace."""
    members = (member.strip(_OPTIONAL_WHITESPACE) for member in value.split(","))
    return [member for member in members if member]


class RequestHeaders:
    """Case-insensitive, read-only access to one request's headers."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._values: dict[str, str] = {}
        for name, value in headers.items():
            key = name.lower()
            self._values[key] = f"{self._values[key]},{value}" if key in self._values else value

    def required(self, name: str) -> str:
        """The value of ``name``, stripped; a missing or blank header is a SignatureError."""
        value = self._values.get(name.lower(), "").strip(_OPTIONAL_WHITESPACE)
        if not value:
            raise SignatureError(SignatureFailure.MISSING_HEADER, f"the {name} header is missing")
        return value

    def required_single(self, name: str) -> str:
        """A header that must carry one value; identical repeats (joined by commas) collapse."""
        distinct = set(split_list(self.required(name)))
        if len(distinct) != 1:
            raise SignatureError(
                SignatureFailure.BAD_FORMAT, f"the {name} header must carry exactly one value"
            )
        return distinct.pop()

    def has(self, name: str) -> bool:
        return bool(self._values.get(name.lower(), "").strip(_OPTIONAL_WHITESPACE))


def required_identifier(headers: RequestHeaders, name: str) -> str:
    return _checked_identifier(headers.required_single(name), name)


def optional_identifier(headers: RequestHeaders, name: str | None) -> str | None:
    if name is None or not headers.has(name):
        return None
    return required_identifier(headers, name)


def _checked_identifier(value: str, name: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise SignatureError(
            SignatureFailure.BAD_FORMAT,
            f"the {name} header is not 1 to 256 visible ASCII characters",
        )
    return value


# --- signed timestamps: integer Unix seconds, checked against the caller's clock ----------

# ASCII digits only (int() would also take "+5", " 5", "5_0" and non-ASCII digits), no leading
# zero (so the value signed is the value read), at most 19 digits (int64 seconds).
_UNIX_SECONDS = re.compile(r"[1-9][0-9]{0,18}")


def parse_unix_seconds(value: str, *, header: str) -> int:
    if not _UNIX_SECONDS.fullmatch(value):
        raise SignatureError(
            SignatureFailure.BAD_FORMAT, f"the {header} header is not integer Unix seconds"
        )
    return int(value)


def within_replay_window(
    seconds: int, *, now: datetime, window_seconds: int, header: str
) -> datetime:
    """The timestamp as a UTC datetime, if it is at most ``window_seconds`` from ``now``.

    Both directions count: a timestamp far in the future is as suspect as a replayed old one.
    Call it only once the signature over the timestamp matched (see StaleTimestampError).
    """
    skew = seconds - now.timestamp()
    if abs(skew) > window_seconds:
        direction = "ahead of" if skew > 0 else "behind"
        raise StaleTimestampError(
            f"the signed {header} is {abs(skew):.0f} s {direction} the clock, outside the "
            f"replay window of {window_seconds} s",
            header=header,
            window_seconds=window_seconds,
        )
    return datetime.fromtimestamp(seconds, tz=UTC)


# --- the replay key: what a signature covers, hashed, names the delivery ------------------


def replay_key(*signed: tuple[str, bytes]) -> str:
    """Hex SHA-256 over the named parts a signature covers (``("body", raw)``, ...).

    Each part is hashed with its name and length, so no two lists of parts hash alike. The
    key depends only on signed material: a replay with new unsigned headers has the same key.
    """
    digest = hashlib.sha256(b"dagtrigger.webhook.replay-key.v1")
    for name, value in signed:
        label = name.encode("ascii")
        for field in (label, value):
            digest.update(len(field).to_bytes(8, "big"))
            digest.update(field)
    return digest.hexdigest()


# --- the secrets a route accepts: several while a key is being rotated --------------------


def secret_list(secrets: Sequence[str]) -> list[str]:
    """``secrets`` checked: a non-empty sequence of non-empty strings.

    A bare string is refused: it is a sequence of one-character strings, and accepting it
    would turn one secret into a list of trivially forgeable one-letter keys.
    """
    if isinstance(secrets, str | bytes):
        raise TypeError("secrets must be a sequence of strings, not a single string")
    checked = list(secrets)
    if not checked:
        raise WebhookSecretError("no webhook secret is configured")
    for position, secret in enumerate(checked, 1):
        if not isinstance(secret, str) or not secret:
            raise WebhookSecretError(
                f"webhook secret {position} of {len(checked)} is empty or not a string"
            )
    return checked


def utf8_keys(secrets: Sequence[str]) -> list[bytes]:
    """HMAC keys for the schemes that use the secret's text as the key (GitHub, generic)."""
    return [secret.encode() for secret in secret_list(secrets)]


# --- signatures: read from their header, computed, compared in constant time --------------


def prefixed_signatures(
    value: str, *, header: str, pattern: re.Pattern[str], prefix: str, shape: str
) -> list[bytes]:
    """The comma-separated signatures in ``value``, each without ``prefix``, as ASCII bytes.

    Every entry must match ``pattern`` whole; ``shape`` says in words what it should be.
    """
    entries = split_list(value)
    if not entries or not all(pattern.fullmatch(entry) for entry in entries):
        raise SignatureError(SignatureFailure.BAD_FORMAT, f"the {header} header is not {shape}")
    return [entry.removeprefix(prefix).encode("ascii") for entry in entries]


def hmac_digest(algorithm: str, key: bytes, content: bytes) -> bytes:
    return hmac.digest(key, content, algorithm)


def require_match(expected: Iterable[bytes], received: Sequence[bytes], *, header: str) -> None:
    """Refuse the delivery unless an expected signature (one per secret) equals a received one.

    Signatures are compared as their encoded text (ASCII bytes), never decoded first: base64
    decoders ignore the unused low bits of the last character, so decoded comparison would
    accept several spellings of one signature.
    """
    if not any(
        hmac.compare_digest(candidate, signature)
        for candidate in expected
        for signature in received
    ):
        raise SignatureError(SignatureFailure.MISMATCH, f"no {header} entry matches")
