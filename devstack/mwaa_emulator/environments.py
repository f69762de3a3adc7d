"""Emulated MWAA environments: each bound to one Airflow, with its own web server and limits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.mwaa_emulator.backend import AirflowBackend, AirflowRestClient
from devstack.mwaa_emulator.http_base import LoopbackHttpServer
from devstack.mwaa_emulator.throttle import TokenBucket

NAME_PATTERN = r"[a-zA-Z][0-9a-zA-Z_-]*"
NAME_MAX_LENGTH = 80


@dataclass
class Environment:
    name: str
    arn: str
    backend: AirflowBackend
    airflow_version: str
    created_at: float  # seconds since the epoch
    rest_client: AirflowRestClient
    rate_limiter: TokenBucket
    cli_slots: threading.BoundedSemaphore
    settings: dict[str, Any] = field(default_factory=dict)
    web_server: LoopbackHttpServer | None = None

    @property
    def web_server_hostname(self) -> str:
        if self.web_server is None:
            raise RuntimeError(f"environment {self.name!r}: the emulator is not started")
        return self.web_server.host_port


class EnvironmentRegistry:
    """Thread-safe name -> Environment map."""

    def __init__(self) -> None:
        self._environments: dict[str, Environment] = {}
        self._lock = threading.Lock()

    def add(self, environment: Environment, *, on_added: Callable[[Environment], None]) -> bool:
        """Add unless the name is taken (then False); `on_added` runs under the lock."""
        with self._lock:
            if environment.name in self._environments:
                return False
            self._environments[environment.name] = environment
            on_added(environment)
            return True

    def get(self, name: str) -> Environment | None:
        with self._lock:
            return self._environments.get(name)

    def remove(self, name: str) -> Environment | None:
        with self._lock:
            return self._environments.pop(name, None)

    def all(self) -> list[Environment]:
        with self._lock:
            return sorted(self._environments.values(), key=lambda environment: environment.name)
