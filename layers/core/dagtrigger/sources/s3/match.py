"""Which S3 routes an ``Object Created`` event matches."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from dagtrigger.routes.model import RoutesFile, S3Route
from dagtrigger.sources.s3.parse import S3ObjectEvent


@dataclass(frozen=True)
class RouteMatch:
    """One route an event matched, with the regex's named groups (None for an unmatched group)."""

    route: S3Route
    groups: dict[str, str | None] = field(default_factory=dict)

    @property
    def paused(self) -> bool:
        """A paused route's events are recorded as IGNORED, never triggered."""
        return self.route.paused

    @property
    def paused_reason(self) -> str:
        return f"route {self.route.name} is paused"


def is_folder_placeholder(event: S3ObjectEvent) -> bool:
    """The empty ``folder/`` objects the S3 console creates: never a file to process."""
    return event.key.endswith("/") and not event.size


def match_s3_routes(routes: RoutesFile, event: S3ObjectEvent) -> list[RouteMatch]:
    """Every route the event matches, in file order; paused routes included, flagged."""
    if is_folder_placeholder(event):
        return []
    matches = []
    for route in routes.s3:
        groups = _match_route(route, event)
        if groups is not None:
            matches.append(RouteMatch(route=route, groups=groups))
    return matches


def _match_route(route: S3Route, event: S3ObjectEvent) -> dict[str, str | None] | None:
    """The regex's named groups if every filter of the route accepts the event, else None."""
    key = event.key
    if event.bucket not in route.buckets:
        return None
    if route.prefix is not None and not key.startswith(route.prefix):
        return None
    if route.suffix is not None and not key.endswith(route.suffix):
        return None
    if not _size_within(route, event.size):
        return None
    if route.glob is not None and glob_to_regex(route.glob).fullmatch(key) is None:
        return None
    if route.regex is None:
        return {}
    found = re.search(route.regex, key)
    return None if found is None else found.groupdict()


def _size_within(route: S3Route, size: int | None) -> bool:
    if route.min_size is None and route.max_size is None:
        return True
    if size is None:
        return False  # bounds we cannot check never match
    if route.min_size is not None and size < route.min_size:
        return False
    return route.max_size is None or size <= route.max_size


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
