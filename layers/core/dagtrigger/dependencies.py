"""What the services need, built once per Lambda instance and passed in explicitly.

Handlers call ``get_dependencies()``; tests build ``Dependencies`` themselves with fakes or
moto-backed resources, so nothing is patched or imported behind their back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from dagtrigger.ledger import TriggerLedger, ledger_from_settings, utc_now
from dagtrigger.models import EnvironmentRef
from dagtrigger.ratelimit import RateLimiter
from dagtrigger.routing.loader import RoutesLoader
from dagtrigger.settings import Settings, get_settings
from dagtrigger.transports.base import AirflowTransport
from dagtrigger.transports.factory import transport_for


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
