"""What the HTTP API needs beyond the core dependencies: the Scheduler client and secrets.

Settings are the one ``dagtrigger.settings.Settings`` model (``deps.settings``). Tests build
``ApiDependencies`` themselves with moto-backed clients and a recording transport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import BaseProvider

from dagtrigger.dependencies import Dependencies, get_dependencies
from dagtrigger.settings import Settings


@dataclass(frozen=True)
class ApiDependencies:
    core: Dependencies
    scheduler_client: Callable[[], Any]
    #: reads webhook secrets (Powertools parameters: cached for WEBHOOK_SECRET_MAX_AGE_SECONDS)
    secrets_provider: BaseProvider | None = None

    @property
    def settings(self) -> Settings:
        return self.core.settings


@cache
def get_api_dependencies() -> ApiDependencies:
    core = get_dependencies()
    return ApiDependencies(
        core=core,
        secrets_provider=core.secrets_provider(),
        scheduler_client=core.scheduler_client,
    )


def reset_instance_state() -> None:
    get_api_dependencies.cache_clear()
