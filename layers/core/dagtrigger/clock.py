"""The one clock: aware UTC ``datetime`` values and their ISO 8601 spelling."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``: ``2026-11-21T10:15:00Z`` (naive times are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _exists_in_utc(moment: datetime) -> datetime:
    """``moment`` unchanged if it has a UTC time (``0001-01-01T00:00:00+01:00`` has none)."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{moment.isoformat()} has no time in UTC: it falls outside years 1 to 9999"
        ) from None
    return moment


#: An aware datetime (a field or parameter) that can be converted to UTC, as every one we
#: keep or compare is: an offset can push year 1 or year 9999 out of ``datetime``'s range.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_exists_in_utc)]
