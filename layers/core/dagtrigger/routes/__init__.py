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

__all__ = [
    "EnvironmentConfig",
    "RouteBase",
    "RoutesFile",
    "RoutesLoader",
    "S3Route",
    "ScheduleRoute",
    "WebhookHmacConfig",
    "WebhookRoute",
    "parse_location",
    "parse_routes",
]
