"""Signed timestamps: integer Unix seconds, checked against the caller's clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dagtrigger.sources.webhooks.errors import SignatureError, SignatureFailure

# ASCII digits only (int() would also take "+5", " 5", "5_0" and non-ASCII digits), no leading
# zero (so the value signed is the value read), at most 19 digits (int64 seconds).
_UNIX_SECONDS = re.compile(r"[1-9][0-9]{0,18}")


def parse_unix_seconds(value: str, *, header: str) -> int:
    if not _UNIX_SECONDS.fullmatch(value):
        raise SignatureError(
            SignatureFailure.BAD_FORMAT, f"the {header} header is not integer Unix seconds"
        )
    return int(value)


def within_tolerance(seconds: int, *, now: datetime, tolerance_seconds: int) -> datetime:
    """The timestamp as a UTC datetime, if it is at most ``tolerance_seconds`` from ``now``.

    Both directions count: a timestamp far in the future is as suspect as a replayed old one.
    """
    skew = seconds - now.timestamp()
    if abs(skew) > tolerance_seconds:
        direction = "ahead of" if skew > 0 else "behind"
        raise SignatureError(
            SignatureFailure.TIMESTAMP_OUT_OF_TOLERANCE,
            f"the signed timestamp is {abs(skew):.0f} s {direction} the clock "
            f"(tolerance {tolerance_seconds} s)",
        )
    return datetime.fromtimestamp(seconds, tz=UTC)
