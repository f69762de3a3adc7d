"""Build the transport an environment names, from parts handed in by the composition root.

Each transport module is imported only when an environment uses it, so a function whose
environments all use InvokeRestApi never loads the CLI or the REST client code. Adding a
transport: one module with ``build(environment, parts)`` and one line in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagtrigger.settings import Settings
from dagtrigger.transports.base import AirflowTransport, EnvironmentRef, TransportKind
from dagtrigger.transports.keyed_cache import KeyedCache

_MODULES: dict[TransportKind, str] = {
    TransportKind.INVOKE_REST_API: "dagtrigger.transports.invoke_rest_api",
    TransportKind.CLI: "dagtrigger.transports.mwaa_cli",
    TransportKind.AIRFLOW_REST: "dagtrigger.transports.airflow_rest",
}


@dataclass(frozen=True)
class TransportParts:
    """What transports are built from; a client is created only when a transport asks for it."""

    settings: Settings
    mwaa_client: Callable[[], Any]
    #: the history table (the CLI transport keeps its per-environment lock there)
    table: Callable[[], Any]
    #: one ``requests.Session`` shared by every web server this instance talks to
    http_session: Callable[[], Any]
    #: a Powertools parameters provider for Secrets Manager (Airflow REST credentials)
    secrets_provider: Callable[[], Any]


def build_transport(environment: EnvironmentRef, parts: TransportParts) -> AirflowTransport:
    """The transport ``environment.transport`` names."""
    module_name = _MODULES.get(environment.transport)
    if module_name is None:
        raise ValueError(
            f"environment {environment.alias!r}: unknown transport {environment.transport!r}"
        )
    build: Callable[[EnvironmentRef, TransportParts], AirflowTransport]
    build = importlib.import_module(module_name).build
    return build(environment, parts)


class TransportCache:
    """One transport per environment, built on first use and kept for the instance's life."""

    def __init__(self, parts: TransportParts) -> None:
        self._transports: KeyedCache[EnvironmentRef, AirflowTransport] = KeyedCache(
            lambda environment: build_transport(environment, parts)
        )

    def __call__(self, environment: EnvironmentRef) -> AirflowTransport:
        return self._transports.get(environment)
