"""Declarative routes: which events start which DAG runs (see ``routes.yaml`` in the layer)."""

from dagtrigger.routes.loader import RoutesLoader, parse_location, parse_routes
from dagtrigger.routes.model import (
    EnvironmentConfig,
    RouteBase,
    RoutesFile,
    S3Route,
    ScheduleRoute,
    WebhookHmacConfig,
    WebhookRoute,
)
from dagtrigger.sources.s3.match import RouteMatch, is_folder_placeholder, match_s3_routes

__all__ = [
    "EnvironmentConfig",
    "RouteBase",
    "RouteMatch",
    "RoutesFile",
    "RoutesLoader",
    "S3Route",
    "ScheduleRoute",
    "WebhookHmacConfig",
    "WebhookRoute",
    "is_folder_placeholder",
    "match_s3_routes",
    "parse_location",
    "parse_routes",
]
