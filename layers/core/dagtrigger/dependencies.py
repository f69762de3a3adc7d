"""What the services need, built once per Lambda instance and passed in explicitly.

Handlers call ``get_dependencies()``; tests build ``Dependencies`` themselves with fakes or
moto-backed resources, so nothing is patched or imported behind their back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from dagtrigger import aws
from dagtrigger.clock import utc_now
from dagtrigger.ledger import TriggerLedger
from dagtrigger.routes.loader import RoutesLoader
from dagtrigger.settings import Settings, get_settings
from dagtrigger.transports.base import AirflowTransport, EnvironmentRef
from dagtrigger.transports.factory import transport_for
from dagtrigger.transports.ratelimit import RateLimiter


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    ledger: TriggerLedger
    routes: RoutesLoader
    transport_for: Callable[[EnvironmentRef], AirflowTransport]
    limiter: RateLimiter
    clock: Callable[[], datetime] = utc_now


def ledger_from_settings(settings: Settings | None = None, *, table: Any = None) -> TriggerLedger:
    """The ledger the Lambda functions use: table and limits from the validated settings."""
    settings = settings or get_settings()
    return TriggerLedger(
        table if table is not None else aws.dynamodb_table(settings.table_name),
        history_ttl_days=settings.history_ttl_days,
        ignored_ttl_days=settings.ignored_ttl_days,
        conf_max_bytes=settings.conf_max_bytes,
        lease_seconds=settings.trigger_lease_seconds,
    )


@cache
def get_dependencies() -> Dependencies:
    settings = get_settings()
    return Dependencies(
        settings=settings,
        ledger=ledger_from_settings(settings),
        routes=RoutesLoader(
            settings.routes_location,
            cache_seconds=settings.routes_cache_seconds,
        ),
        transport_for=transport_for,
        limiter=RateLimiter(rate_per_second=settings.rest_api_max_tps),
    )
