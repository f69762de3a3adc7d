"""Builders shared by the routing tests: S3 events and small routes files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from dagtrigger.models import S3ObjectEvent
from dagtrigger.routing import RoutesFile, parse_routes

EnvironmentBlock = dict[str, Any]

DEFAULT_ENVIRONMENTS: dict[str, EnvironmentBlock] = {
    "prod": {"name": "my-mwaa-env", "transport": "invoke_rest_api"},
}


def s3_event(
    key: str = "sales/2026-11-21.csv",
    *,
    bucket: str = "landing",
    size: int | None = 1234,
    version_id: str | None = "v1",
) -> S3ObjectEvent:
    return S3ObjectEvent(
        bucket=bucket,
        key=key,
        size=size,
        etag="d41d8cd98f00b204e9800998ecf8427e",
        version_id=version_id,
        sequencer="0062E99A88DC407460",
        event_time=datetime(2026, 11, 21, 10, 15, tzinfo=UTC),
        region="us-east-1",
        event_name="ObjectCreated:Put",
        source_format="eventbridge",
    )


def routes_yaml(*s3_routes: dict[str, Any], environments: dict[str, Any] | None = None) -> str:
    document = {
        "version": 1,
        "environments": environments if environments is not None else DEFAULT_ENVIRONMENTS,
        "s3": list(s3_routes),
    }
    return yaml.safe_dump(document, sort_keys=False)


def s3_route(name: str = "sales-csv", **fields: Any) -> dict[str, Any]:
    route: dict[str, Any] = {
        "name": name,
        "buckets": ["landing"],
        "environment": "prod",
        "dag_id": "ingest_sales",
    }
    route.update(fields)
    return route


@pytest.fixture
def build_routes() -> Callable[..., RoutesFile]:
    def build(*s3_routes: dict[str, Any]) -> RoutesFile:
        return parse_routes(routes_yaml(*s3_routes), source="test")

    return build


@pytest.fixture
def make_event() -> Callable[..., S3ObjectEvent]:
    return s3_event


@pytest.fixture
def make_route() -> Callable[..., dict[str, Any]]:
    return s3_route


@pytest.fixture
def make_routes_yaml() -> Callable[..., str]:
    return routes_yaml
