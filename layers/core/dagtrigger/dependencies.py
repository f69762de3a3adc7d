"""The composition root: what the services need, built from the settings once per Lambda
instance and passed in explicitly.

This is the only module that reads the settings to build things: the ledger, the routes
loader, the transports and every AWS client. The modules below receive what they need.
Handlers call ``get_dependencies()``; tests build ``Dependencies`` themselves with fakes or
moto-backed resources, so nothing is patched or imported behind their back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from typing import Any

import boto3
from botocore.config import Config

from dagtrigger.clock import utc_now
from dagtrigger.ledger import TriggerLedger
from dagtrigger.ledger.file_sets import FileSetLedger
from dagtrigger.redelivery import Backoff, Redelivery
from dagtrigger.routes.loader import RoutesLoader
from dagtrigger.settings import Settings, get_settings
from dagtrigger.transports.base import AirflowTransport, EnvironmentRef
from dagtrigger.transports.factory import TransportCache, TransportParts
from dagtrigger.transports.ratelimit import RateLimiter

# One retry layer for MWAA calls is ours (tenacity, inside a time budget); botocore's own
# retries would multiply it, so MWAA calls make one attempt in all ("total_max_attempts": botocore
# reads "max_attempts" as retries after the first). Other services keep botocore's standard
# retry mode.
_STANDARD_RETRIES = {"mode": "standard", "max_attempts": 5}
_SINGLE_ATTEMPT = {"mode": "standard", "total_max_attempts": 1}


class AwsClients:
    """boto3 clients and tables, created on first use and reused across invocations.

    Endpoints follow botocore's own variables (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_MWAA
    ...), so the same code talks to AWS or to the local stack with no switch of its own.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._clients: dict[str, Any] = {}
        self._tables: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """A boto3 client for ``service``; the MWAA one makes single attempts (retries are ours)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service, config=self._config(service))
            return self._clients[service]

    def table(self, name: str) -> Any:
        with self._lock:
            if name not in self._tables:
                resource = boto3.resource("dynamodb", config=self._config("dynamodb"))
                self._tables[name] = resource.Table(name)
            return self._tables[name]

    def _config(self, service: str) -> Config:
        timeouts = {
            "connect_timeout": self._settings.connect_timeout_seconds,
            "read_timeout": self._settings.read_timeout_seconds,
        }
        if service != "mwaa":
            return Config(retries=_STANDARD_RETRIES, **timeouts)
        return Config(
            retries=_SINGLE_ATTEMPT,
            # MWAA prefixes hosts with "env."/"api."; an emulator on 127.0.0.1 cannot answer that.
            inject_host_prefix=self._settings.mwaa_inject_host_prefix,
            **timeouts,
        )


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    ledger: TriggerLedger
    routes: RoutesLoader
    transport_for: Callable[[EnvironmentRef], AirflowTransport]
    limiter: RateLimiter
    clock: Callable[[], datetime] = utc_now
    #: the EventBridge Scheduler client (schedule management, in the api function only)
    scheduler_client: Callable[[], Any] = field(default=lambda: _not_configured("scheduler"))
    #: a Powertools parameters provider for Secrets Manager (webhook secrets)
    secrets_provider: Callable[[], Any] = field(default=lambda: _not_configured("secrets_provider"))
    #: EventBridge and SNS clients: how the reconciler tells others that a run finished
    events_client: Callable[[], Any] = field(default=lambda: _not_configured("events client"))
    sns_client: Callable[[], Any] = field(default=lambda: _not_configured("sns client"))
    #: shortens the retry wait of failed SQS messages (the S3 function); None: not shortened
    redelivery: Redelivery | None = None
    #: file sets in the history table (the S3 function and the reconciler)
    file_sets: FileSetLedger | None = None
    #: an S3 client: a set's marker lists its folder, a large set's object list is written out
    s3_client: Callable[[], Any] = field(default=lambda: _not_configured("s3 client"))


def _not_configured(what: str) -> Any:
    raise RuntimeError(f"these dependencies were built without a {what}")


def ledger_from_settings(settings: Settings, *, table: Any) -> TriggerLedger:
    """The ledger the Lambda functions use: limits from the validated settings."""
    return TriggerLedger(
        table,
        history_ttl_days=settings.history_ttl_days,
        ignored_ttl_days=settings.ignored_ttl_days,
        conf_max_bytes=settings.conf_max_bytes,
        lease_seconds=settings.trigger_lease_seconds,
    )


def build_dependencies(settings: Settings, clients: AwsClients) -> Dependencies:
    """Everything a function needs, from the settings and lazily created clients."""
    secrets = cache(partial(_secrets_provider, clients))
    return Dependencies(
        settings=settings,
        ledger=ledger_from_settings(settings, table=clients.table(settings.table_name)),
        file_sets=FileSetLedger(
            clients.table(settings.table_name), history_ttl_days=settings.history_ttl_days
        ),
        s3_client=lambda: clients.client("s3"),
        routes=RoutesLoader(
            settings.routes_location,
            cache_seconds=settings.routes_cache_seconds,
            ssm_client_factory=lambda: clients.client("ssm"),
            s3_client_factory=lambda: clients.client("s3"),
            allowed_environment_names=settings.mwaa_environment_names,
            granted_manifest_location=settings.set_manifest_location,
        ),
        transport_for=TransportCache(
            TransportParts(
                settings=settings,
                mwaa_client=lambda: clients.client("mwaa"),
                table=lambda: clients.table(settings.table_name),
                http_session=cache(_http_session),
                secrets_provider=secrets,
            )
        ),
        limiter=RateLimiter(rate_per_second=settings.rest_api_max_tps),
        scheduler_client=lambda: clients.client("scheduler"),
        secrets_provider=secrets,
        events_client=lambda: clients.client("events"),
        sns_client=lambda: clients.client("sns"),
        redelivery=Redelivery(
            lambda: clients.client("sqs"),
            Backoff(
                base_seconds=settings.retry_backoff_base_seconds,
                max_seconds=settings.retry_backoff_max_seconds,
            ),
        ),
    )


@cache
def get_dependencies() -> Dependencies:
    """The dependencies of this Lambda instance, built on its first invocation."""
    settings = get_settings()
    return build_dependencies(settings, AwsClients(settings))


def check_configuration(dependencies: Dependencies | None = None) -> None:
    """Fail a cold start, loudly and by name, on what is wrong before any event arrives: the
    settings, and a routes file bundled with the code (a remote one can be fixed without a
    deployment, so it is checked, and reported, when it is read)."""
    dependencies = dependencies or get_dependencies()
    if dependencies.routes.bundled:
        dependencies.routes.get()


def reset_instance_state() -> None:
    """Forget the settings, clients and transports, as a fresh Lambda instance starts without
    them (the local stack's runner calls this for each simulated cold start)."""
    get_dependencies.cache_clear()
    get_settings.cache_clear()


def _http_session() -> Any:
    # Imported here: only the CLI and Airflow REST transports talk HTTP themselves.
    import requests

    from dagtrigger.observability import trace_http_calls

    trace_http_calls()
    return requests.Session()


def _secrets_provider(clients: AwsClients) -> Any:
    # Imported here: only webhooks and the Airflow REST transport read secrets.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    # Built on our own lazily created client, so it follows the same endpoint settings (and
    # instance resets) as every other client, rather than Powertools' global provider.
    return SecretsProvider(boto3_client=clients.client("secretsmanager"))
