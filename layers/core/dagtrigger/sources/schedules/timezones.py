"""Time zones a schedule may name: IANA names (``Europe/Paris``, ``UTC``), checked with zoneinfo.

The names come from the system's zone database or, where a system has none (Lambda's runtime
image may not), from the ``tzdata`` package bundled in the layer.
"""

from __future__ import annotations

import difflib
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

#: ``ScheduleExpressionTimezone`` is at most 50 characters
MAX_TIMEZONE_LENGTH = 50


class TimezoneError(ValueError):
    """Not an IANA time zone name; the message suggests the closest names."""


#: entries of a zone database that are files, not time zones a schedule can be read in
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


@cache
def _zones_by_lower_case() -> dict[str, str]:
    return {name.lower(): name for name in _known_zones()}


def validate_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone zoneinfo can load, else ``TimezoneError``."""
    if not name:
        raise TimezoneError("the time zone is empty; use an IANA name such as UTC or Europe/Paris")
    if len(name) > MAX_TIMEZONE_LENGTH:
        raise TimezoneError(
            f"the time zone is {len(name)} characters long; the limit is {MAX_TIMEZONE_LENGTH}"
        )
    if name not in _known_zones():
        raise TimezoneError(f"{name!r} is not an IANA time zone name{_suggestion(name)}")
    ZoneInfo(name)  # the name is listed, so this loads; a broken database fails loudly here
    return name


def _suggestion(name: str) -> str:
    same_but_case = _zones_by_lower_case().get(name.lower())
    if same_but_case:
        return f" (names are case-sensitive: did you mean {same_but_case!r}?)"
    close = difflib.get_close_matches(name, sorted(_known_zones()), n=3, cutoff=0.7)
    if close:
        return " (did you mean " + " or ".join(repr(zone) for zone in close) + "?)"
    return " (such as UTC, Europe/Paris or America/New_York)"
