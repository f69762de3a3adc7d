"""Build the transport an environment asks for, with its clients passed in.

``build_transport`` takes every client explicitly (tests pass stubs and fakes);
``transport_for`` is what Lambda code calls: one transport per environment per instance, built
on first use with clients from ``dagtrigger.aws`` and one shared ``requests.Session``.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import requests

from dagtrigger import aws
from dagtrigger.settings import Settings, get_settings
from dagtrigger.transports.airflow_rest import (
    AirflowRestTransport,
    CredentialsProvider,
    secrets_manager_credentials,
)
from dagtrigger.transports.base import AirflowTransport, EnvironmentRef, TransportKind
from dagtrigger.transports.cli_lock import DynamoDbLeaseLock
from dagtrigger.transports.invoke_rest_api import InvokeRestApiTransport
from dagtrigger.transports.mwaa_cli import MwaaCliTransport

#: how long a CLI request waits for another caller's command on the same environment
CLI_LOCK_WAIT_SECONDS = 10.0


def build_transport(
    env: EnvironmentRef,
    *,
    settings: Settings,
    mwaa_client: Any | None,
    http_session: requests.Session | None,
    table: Any | None,
    secrets_provider: CredentialsProvider | None = None,
) -> AirflowTransport:
    """The transport ``env.transport`` names; clients a transport does not use may be None."""
    if env.transport is TransportKind.INVOKE_REST_API:
        return InvokeRestApiTransport(env, _required(mwaa_client, "mwaa_client", env))
    if env.transport is TransportKind.CLI:
        lock = DynamoDbLeaseLock(
            _required(table, "table", env),
            lease_seconds=settings.cli_lock_seconds,
            wait_seconds=min(CLI_LOCK_WAIT_SECONDS, settings.trigger_budget_seconds),
        )
        return MwaaCliTransport(
            env,
            _required(mwaa_client, "mwaa_client", env),
            _required(http_session, "http_session", env),
            lock,
            timeout=(5.0, max(1.0, settings.cli_lock_seconds - 5.0)),
        )
    if env.transport is TransportKind.AIRFLOW_REST:
        return AirflowRestTransport(
            env,
            _required(http_session, "http_session", env),
            credentials_provider=secrets_provider or secrets_manager_credentials,
        )
    raise ValueError(f"environment {env.alias!r}: unknown transport {env.transport!r}")


def _required(client: Any | None, name: str, env: EnvironmentRef) -> Any:
    if client is None:
        raise ValueError(f"environment {env.alias!r} ({env.transport}) needs {name}")
    return client


_cache_lock = threading.Lock()


@cache
def shared_http_session() -> requests.Session:
    """One connection pool for every Airflow web server this instance talks to."""
    return requests.Session()


def transport_for(env: EnvironmentRef) -> AirflowTransport:
    """The transport for ``env``, built once per Lambda instance (thread-safe)."""
    with _cache_lock:
        return _cached_transport(env)


@cache
def _cached_transport(env: EnvironmentRef) -> AirflowTransport:
    settings = get_settings()
    uses_mwaa = env.transport in (TransportKind.INVOKE_REST_API, TransportKind.CLI)
    uses_http = env.transport in (TransportKind.CLI, TransportKind.AIRFLOW_REST)
    return build_transport(
        env,
        settings=settings,
        mwaa_client=aws.client("mwaa") if uses_mwaa else None,
        http_session=shared_http_session() if uses_http else None,
        table=aws.dynamodb_table(settings.table_name)
        if env.transport is TransportKind.CLI
        else None,
    )


def reset_transports() -> None:
    """Forget cached transports (tests that change settings or endpoints call this)."""
    with _cache_lock:
        _cached_transport.cache_clear()
        shared_http_session.cache_clear()
