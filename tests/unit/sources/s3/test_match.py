"""check_s3_routes: which routes an S3 object matches, and what refuses it in the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dagtrigger.routes import RoutesFile
from dagtrigger.sources.s3.match import (
    FOLDER_PLACEHOLDER_REASON,
    check_s3_routes,
    glob_to_regex,
    is_folder_placeholder,
)
from dagtrigger.sources.s3.parse import S3ObjectEvent

BuildRoutes = Callable[..., RoutesFile]
MakeRoute = Callable[..., dict[str, Any]]
MakeEvent = Callable[..., S3ObjectEvent]


def matched(routes: RoutesFile, event: S3ObjectEvent) -> list[str]:
    return [check.route.name for check in check_s3_routes(routes, event) if check.matches]


@pytest.mark.parametrize(
    ("filters", "key", "expected"),
    [
        ({"prefix": "sales/"}, "sales/a.csv", True),
        ({"prefix": "sales/"}, "salesforce/a.csv", False),
        ({"suffix": ".csv"}, "sales/a.csv", True),
        ({"suffix": ".csv"}, "sales/a.csv.gz", False),
        ({"prefix": "sales/", "suffix": ".csv"}, "sales/a.json", False),
        ({"glob": "sales/*/*.csv"}, "sales/2026/a.csv", True),
        ({"glob": "sales/*/*.csv"}, "sales/2026/11/a.csv", False),  # '*' stays in one folder
        ({"glob": "sales/*.csv"}, "sales/x/y.csv", False),
        ({"glob": "sales/**/*.csv"}, "sales/2026/11/a.csv", True),  # '**' crosses folders
        ({"glob": "sales/**/*.csv"}, "sales/a.csv", True),  # ... or none
        ({"glob": "sales/**"}, "sales/x/y/z", True),
        ({"glob": "sales/day-?.csv"}, "sales/day-1.csv", True),
        ({"glob": "sales/day-?.csv"}, "sales/day-12.csv", False),
        ({"glob": "sales/[ab].csv"}, "sales/b.csv", True),
        ({"glob": "sales/[!ab].csv"}, "sales/c.csv", True),
        ({"glob": "sales/[!ab].csv"}, "sales/a.csv", False),
        ({"glob": "a[b"}, "a[b", True),  # an unclosed '[' is literal
        ({"glob": "c++ (copy).csv"}, "c++ (copy).csv", True),  # regex characters are literal
        ({"glob": "*.csv"}, "a/b.csv", False),  # the glob covers the whole key
        ({"regex": r"^sales/\d{4}-\d{2}-\d{2}\.csv$"}, "sales/2026-11-21.csv", True),
        ({"regex": r"^sales/\d{4}-\d{2}-\d{2}\.csv$"}, "sales/2026-11-21.csv.bak", False),
        ({"regex": r"\.csv$"}, "deep/in/a.csv", True),  # searched, not anchored by us
    ],
)
def test_key_filters(
    build_routes: BuildRoutes,
    make_route: MakeRoute,
    make_event: MakeEvent,
    filters: dict[str, str],
    key: str,
    expected: bool,
) -> None:
    # Given one route with the filters
    routes = build_routes(make_route("r", **filters))

    # When an object with the key is created
    result = matched(routes, make_event(key))

    # Then it matches exactly when every filter accepts the key
    assert result == (["r"] if expected else [])


@pytest.mark.parametrize(
    ("bounds", "size", "expected"),
    [
        ({"min_size": 1}, 1, True),
        ({"min_size": 1}, 0, False),
        ({"max_size": 100}, 100, True),
        ({"max_size": 100}, 101, False),
        ({"min_size": 10, "max_size": 20}, 15, True),
        ({"min_size": 1}, None, False),  # bounds that cannot be checked never match
        ({}, None, True),
    ],
)
def test_size_bounds_are_inclusive(
    build_routes: BuildRoutes,
    make_route: MakeRoute,
    make_event: MakeEvent,
    bounds: dict[str, int],
    size: int | None,
    expected: bool,
) -> None:
    routes = build_routes(make_route("r", **bounds))

    assert matched(routes, make_event("sales/a.csv", size=size)) == (["r"] if expected else [])


def test_only_listed_buckets_match(
    build_routes: BuildRoutes, make_route: MakeRoute, make_event: MakeEvent
) -> None:
    routes = build_routes(make_route("r", buckets=["landing", "archive"]))

    assert matched(routes, make_event(bucket="archive")) == ["r"]
    assert matched(routes, make_event(bucket="landing-2")) == []


@pytest.mark.parametrize(
    ("key", "size", "placeholder"),
    [
        ("sales/", 0, True),
        ("sales/", None, True),
        ("sales/", 12, False),  # an object really named "sales/" with content
        ("sales", 0, False),  # an empty file is still a file
    ],
)
def test_folder_placeholders_never_match(
    build_routes: BuildRoutes,
    make_route: MakeRoute,
    make_event: MakeEvent,
    key: str,
    size: int | None,
    placeholder: bool,
) -> None:
    # Given a route that would match any key in the bucket
    routes = build_routes(make_route("r"))
    event = make_event(key, size=size)

    # Then only the console's empty "folder/" objects are left out
    assert is_folder_placeholder(event) is placeholder
    assert matched(routes, event) == ([] if placeholder else ["r"])


def test_one_event_can_match_several_routes_in_file_order(
    build_routes: BuildRoutes, make_route: MakeRoute, make_event: MakeEvent
) -> None:
    routes = build_routes(
        make_route("audit-everything"),
        make_route("sales", prefix="sales/"),
        make_route("json-only", suffix=".json"),
        make_route("csv", suffix=".csv"),
    )

    assert matched(routes, make_event("sales/a.csv")) == ["audit-everything", "sales", "csv"]


def test_regex_named_groups_are_captured(
    build_routes: BuildRoutes, make_route: MakeRoute, make_event: MakeEvent
) -> None:
    routes = build_routes(
        make_route(
            "r", regex=r"^(?P<area>[a-z]+)/(?P<day>\d{4}-\d{2}-\d{2})(?:-(?P<part>\d+))?\.csv$"
        )
    )

    (check,) = check_s3_routes(routes, make_event("sales/2026-11-21.csv"))

    assert check.groups == {"area": "sales", "day": "2026-11-21", "part": None}


def test_a_route_without_regex_captures_nothing(
    build_routes: BuildRoutes, make_route: MakeRoute, make_event: MakeEvent
) -> None:
    (check,) = check_s3_routes(build_routes(make_route("r")), make_event())

    assert check.groups == {}


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [
        ("a/*.csv", r"a/[^/]*\.csv"),
        ("a/**/b", r"a/(?:.*/)?b"),
        ("a/**", r"a/.*"),
        ("?", r"[^/]"),
        ("[]x]", r"(?!/)[\]x]"),
        ("[!^a]", r"[^/\^a]"),
    ],
)
def test_glob_translation(pattern: str, regex: str) -> None:
    assert glob_to_regex(pattern).pattern == regex


def test_the_first_refusing_filter_is_named_and_every_one_when_asked(
    build_routes: BuildRoutes, make_route: MakeRoute, make_event: MakeEvent
) -> None:
    # Given a route that an object in another bucket, with another prefix, fails twice
    routes = build_routes(make_route("r", prefix="sales/"))
    event = make_event("archive/a.csv", bucket="archive")

    # When it is checked the way the s3 function checks it, and the way a dry run does
    (first,) = check_s3_routes(routes, event)
    (every,) = check_s3_routes(routes, event, every_reason=True)

    # Then the first names the bucket only, the second both refusals, in filter order
    assert first.mismatches == ("bucket 'archive' is not one of the route's buckets (landing)",)
    assert every.mismatches == (
        "bucket 'archive' is not one of the route's buckets (landing)",
        "the key does not start with prefix 'sales/'",
    )


def test_a_folder_placeholder_is_refused_by_every_route_for_that_reason(
    build_routes: BuildRoutes, make_route: MakeRoute, make_event: MakeEvent
) -> None:
    routes = build_routes(make_route("a"), make_route("b", prefix="sales/"))

    checks = check_s3_routes(routes, make_event("sales/", size=0), every_reason=True)

    assert [check.mismatches for check in checks] == [(FOLDER_PLACEHOLDER_REASON,)] * 2
