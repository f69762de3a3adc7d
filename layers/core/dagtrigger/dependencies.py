"""What the services need, built once per Lambda instance and passed in explicitly.

Handlers call ``get_dependencies()``; tests build ``Dependencies`` themselves with fakes or
moto-backed resources, so nothing is patched or imported behind their back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from dagtrigger import aws
from dagtrigger.ledger import TriggerLedger
from dagtrigger.models import EnvironmentRef
from dagtrigger.ratelimit import RateLimiter
from dagtrigger.routing.loader import RoutesLoader
from dagtrigger.settings import Settings, get_settings
from dagtrigger.transports.base import AirflowTransport
from dagtrigger.transports.factory import transport_for


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    ledger: TriggerLedger
    routes: RoutesLoader
    transport_for: Callable[[EnvironmentRef], AirflowTransport]
    limiter: RateLimiter
    clock: Callable[[], datetime] = utc_now


@cache
def get_dependencies() -> Dependencies:
    settings = get_settings()
    table = aws.dynamodb_table(settings.table_name)
    return Dependencies(
        settings=settings,
        ledger=TriggerLedger(
            table,
            history_ttl_days=settings.history_ttl_days,
            ignored_ttl_days=settings.ignored_ttl_days,
            conf_max_bytes=settings.conf_max_bytes,
            lease_seconds=settings.trigger_lease_seconds,
        ),
        routes=RoutesLoader(
            settings.routes_location,
            cache_seconds=settings.routes_cache_seconds,
            ssm_client_factory=lambda: aws.client("ssm"),
            s3_client_factory=lambda: aws.client("s3"),
        ),
        transport_for=transport_for,
        limiter=RateLimiter(rate_per_second=settings.rest_api_max_tps),
    )
