"""How the ledger writes times: ISO-8601 UTC with microseconds and a ``Z`` (sorts as text)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_aware(moment: datetime, what: str) -> datetime:
    """Refuse naive datetimes: a ledger time must name its time zone to be comparable."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive datetime {moment.isoformat()})")
    return moment


def to_timestamp(moment: datetime, what: str = "time") -> str:
    """``2026-11-21T02:00:00.000000Z``: fixed width, so text order is time order."""
    return require_aware(moment, what).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_day(moment: datetime) -> str:
    return require_aware(moment, "time").astimezone(UTC).strftime("%Y-%m-%d")


def to_epoch_seconds(moment: datetime) -> int:
    return int(require_aware(moment, "time").timestamp())
