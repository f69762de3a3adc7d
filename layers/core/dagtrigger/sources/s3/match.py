"""Which S3 routes an ``Object Created`` event matches, and what refuses it in the others."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from dagtrigger.routes.model import RoutesFile, S3Route
from dagtrigger.sources.s3.parse import S3ObjectEvent

#: why a folder placeholder matches no route (kept beside the test that decides it)
FOLDER_PLACEHOLDER_REASON = (
    "the key ends with '/' and the object is empty: a folder placeholder, which no route matches"
)


def is_folder_placeholder(event: S3ObjectEvent) -> bool:
    """The empty ``folder/`` objects the S3 console creates: never a file to process."""
    return event.key.endswith("/") and not event.size


@dataclass(frozen=True)
class RouteCheck:
    """One route's filters against one event: every filter that refuses it, or the regex's
    named groups when none does."""

    route: S3Route
    mismatches: tuple[str, ...]
    groups: dict[str, str | None] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return not self.mismatches


def check_s3_routes(
    routes: RoutesFile, event: S3ObjectEvent, *, every_reason: bool = False
) -> list[RouteCheck]:
    """Every S3 route of the file, in order, checked against the event (see ``check_s3_route``)."""
    if is_folder_placeholder(event):
        return [RouteCheck(route, (FOLDER_PLACEHOLDER_REASON,)) for route in routes.s3]
    return [check_s3_route(route, event, every_reason=every_reason) for route in routes.s3]


def check_s3_route(
    route: S3Route, event: S3ObjectEvent, *, every_reason: bool = False
) -> RouteCheck:
    """The filters of ``route`` that refuse ``event``: the first one, or with ``every_reason``
    all of them (a dry run shows each); the regex's named groups when none refuses it."""
    mismatches: list[str] = []
    for mismatch in _mismatches(route, event):
        mismatches.append(mismatch)
        if not every_reason:
            break
    if mismatches:
        return RouteCheck(route, tuple(mismatches))
    found = re.search(route.regex, event.key) if route.regex is not None else None
    return RouteCheck(route, (), found.groupdict() if found is not None else {})


def _mismatches(route: S3Route, event: S3ObjectEvent) -> Iterator[str]:
    """Each filter that refuses the event, cheapest first."""
    key = event.key
    if event.bucket not in route.buckets:
        listed = ", ".join(route.buckets)
        yield f"bucket {event.bucket!r} is not one of the route's buckets ({listed})"
    if route.prefix is not None and not key.startswith(route.prefix):
        yield f"the key does not start with prefix {route.prefix!r}"
    if route.suffix is not None and not key.endswith(route.suffix):
        yield f"the key does not end with suffix {route.suffix!r}"
    size_problem = _size_problem(route, event.size)
    if size_problem is not None:
        yield size_problem
    if route.glob is not None and glob_to_regex(route.glob).fullmatch(key) is None:
        yield f"the key does not match glob {route.glob!r}"
    if route.regex is not None and re.search(route.regex, key) is None:
        yield f"the key does not match regex '{route.regex}'"


def _size_problem(route: S3Route, size: int | None) -> str | None:
    """Why the size is outside the route's bounds (inclusive), or None when it is within."""
    if route.min_size is None and route.max_size is None:
        return None
    if size is None:
        return "the size is unknown, and a route with size bounds matches only a known size"
    if route.min_size is not None and size < route.min_size:
        return f"size {size} is below min_size {route.min_size}"
    if route.max_size is not None and size > route.max_size:
        return f"size {size} is above max_size {route.max_size}"
    return None


@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a key glob: ``*`` and ``?`` stay within a ``/`` segment, ``**`` crosses them.

    ``**/`` also matches no folder at all, so ``sales/**/*.csv`` matches ``sales/a.csv`` and
    ``sales/2026/11/a.csv``. ``[abc]``, ``[a-z]`` and ``[!abc]`` are character classes (never
    matching ``/``); a ``[`` without its ``]`` is literal.
    """
    parts: list[str] = []
    index, length = 0, len(pattern)
    while index < length:
        char = pattern[index]
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif char == "*":
            parts.append("[^/]*")
            index += 1
        elif char == "?":
            parts.append("[^/]")
            index += 1
        elif char == "[":
            # The first character of a class (after any "!") is never its end: "[]a]" holds "]".
            first = index + 2 if pattern.startswith("[!", index) else index + 1
            end = pattern.find("]", first + 1)
            if end == -1:
                parts.append(re.escape(char))
                index += 1
            else:
                parts.append(_character_class(pattern[index + 1 : end]))
                index = end + 1
        else:
            parts.append(re.escape(char))
            index += 1
    return re.compile("".join(parts), re.DOTALL)


def _character_class(body: str) -> str:
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    escaped = "".join("\\" + char if char in "\\^[]" else char for char in body)
    return f"[^/{escaped}]" if negated else f"(?!/)[{escaped}]"
