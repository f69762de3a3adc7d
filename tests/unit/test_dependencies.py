"""The composition root's clients: one attempt per MWAA call, and timeouts from the settings,
tried against loopback endpoints that fail the way real ones do."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError, ConnectTimeoutError

from dagtrigger.dependencies import AwsClients, build_dependencies, check_configuration
from dagtrigger.errors import RoutesConfigError, TransientTriggerError
from dagtrigger.routes.loader import RoutesLoader
from dagtrigger.settings import Settings
from dagtrigger.transports.base import EnvironmentRef, TransportKind, TriggerRequest
from dagtrigger.transports.factory import TransportParts, build_transport

#: far below botocore's default connect timeout (60 s), far above a loopback connect
CONNECT_TIMEOUT = 0.5


def settings(**overrides: Any) -> Settings:
    return Settings(
        table_name="dagtrigger-history",
        mwaa_inject_host_prefix=False,
        connect_timeout_seconds=CONNECT_TIMEOUT,
        read_timeout_seconds=2,
        **overrides,
    )


class _FailingMwaa(BaseHTTPRequestHandler):
    """Answers every request as MWAA does when it fails on its side (HTTP 500)."""

    requests: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests.append(self.path)
        body = json.dumps({"message": "internal error"}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-ErrorType", "InternalServerException")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def failing_mwaa(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    handler = type("Handler", (_FailingMwaa,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", f"http://127.0.0.1:{server.server_port}")
    yield handler.requests
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A loopback port that never accepts: its listen queue is full, so new SYNs are dropped."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


def test_an_mwaa_call_is_sent_once_whatever_botocore_would_retry(failing_mwaa: list[str]) -> None:
    # Given MWAA answering 500, which botocore's standard mode would retry
    client = AwsClients(settings()).client("mwaa")

    # When one InvokeRestApi call is made
    with pytest.raises(ClientError):
        client.invoke_rest_api(Name="prod", Path="/dags/etl/dagRuns", Method="POST", Body={})

    # Then it reached MWAA once: the retries are ours (tenacity, inside the trigger's budget)
    assert len(failing_mwaa) == 1


def test_other_aws_clients_keep_botocore_standard_retries(failing_mwaa: list[str]) -> None:
    clients = AwsClients(settings())
    assert clients.client("mwaa").meta.config.retries["total_max_attempts"] == 1
    assert clients.client("sqs").meta.config.retries["total_max_attempts"] == 6


def test_every_client_takes_its_timeouts_from_the_settings() -> None:
    clients = AwsClients(settings())
    for config in (
        clients.client("mwaa").meta.config,
        clients.client("secretsmanager").meta.config,
        clients.table("dagtrigger-history").meta.client.meta.config,
    ):
        assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT, 2)


def test_a_black_holed_mwaa_endpoint_fails_at_the_connect_timeout(
    black_hole: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an MWAA endpoint whose port never accepts a connection
    monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", f"http://127.0.0.1:{black_hole}")
    client = AwsClients(settings()).client("mwaa")

    # When a call is made
    started = time.monotonic()
    with pytest.raises(ConnectTimeoutError):
        client.get_environment(Name="prod")

    # Then it gave up at the connect timeout, once: not after botocore's 60 s default
    assert time.monotonic() - started < 10 * CONNECT_TIMEOUT


def test_a_black_holed_airflow_is_a_transient_failure_at_the_connect_timeout(
    black_hole: int, table: Any
) -> None:
    # Given a self-managed Airflow whose port never accepts a connection
    environment = EnvironmentRef(
        alias="self-managed",
        name="airflow",
        transport=TransportKind.AIRFLOW_REST,
        airflow_major=3,
        base_url=f"http://127.0.0.1:{black_hole}",
    )
    transport = build_transport(
        environment,
        TransportParts(
            settings=settings(),
            mwaa_client=lambda: None,
            table=lambda: table,  # the shared rate budget's counters
            http_session=requests.Session,
            secrets_provider=lambda: None,
        ),
    )
    request = TriggerRequest(environment, "etl", "dagtrigger__api__x__1", {})

    # When a trigger is sent
    started = time.monotonic()
    with pytest.raises(TransientTriggerError):
        transport.trigger(request)

    # Then it is a failure worth retrying, known within the connect timeout
    assert time.monotonic() - started < 10 * CONNECT_TIMEOUT


BROKEN_ROUTES = """\
version: 1
environments:
  prod:
    name: analytics-prod
s3:
  - name: sales
    buckets: [landing]
    environment: prod
    dag_id: ingest_sales
    sufix: .csv
"""


def test_a_broken_bundled_routes_file_fails_the_cold_start_naming_field_and_line(
    make_deps: Any, tmp_path: Path
) -> None:
    # Given routes bundled with the code, with a misspelt key
    (tmp_path / "routes.yaml").write_text(BROKEN_ROUTES, encoding="utf-8")
    routes = RoutesLoader("bundled:routes.yaml", cache_seconds=60, bundled_root=tmp_path)
    deps = replace(make_deps(), routes=routes)

    # When a function starts, Then it fails before any event, saying where
    with pytest.raises(RoutesConfigError, match=r"s3\[0\]\.sufix \(line 10\)"):
        check_configuration(deps)


def test_remote_routes_are_not_read_at_cold_start(make_deps: Any) -> None:
    # Given routes in SSM (fixable without a deployment)
    asked: list[str] = []
    routes = RoutesLoader(
        "ssm:/dagtrigger/routes", cache_seconds=60, ssm_client_factory=lambda: asked.append("ssm")
    )

    # When a function starts
    check_configuration(replace(make_deps(), routes=routes))

    # Then nothing was read: the routes are read, and reported, when an event needs them
    assert asked == []


def test_the_run_event_clients_are_made_on_first_use_and_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the dependencies of a cold start, with every boto3 client creation noted
    made: list[str] = []
    make_client = boto3.client

    def noting(service: str, **options: Any) -> Any:
        made.append(service)
        return make_client(service, **options)

    monkeypatch.setattr(boto3, "client", noting)
    deps = build_dependencies(settings(), AwsClients(settings()))
    assert made == []

    # When the reconciler asks for the EventBridge client twice and the SNS client once
    events, events_again, sns = deps.events_client(), deps.events_client(), deps.sns_client()

    # Then each was made once, when first asked for, with botocore's standard retries
    assert made == ["events", "sns"]
    assert events is events_again
    assert events.meta.service_model.service_name == "events"
    assert sns.meta.config.retries["total_max_attempts"] == 6
