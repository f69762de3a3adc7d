"""Fixtures for the `dagtrigger` command: typer's test runner on the real app, and a stack to
point it at whose HTTP API is the real api function behind the local stack's HTTP API server
(devstack.runner.http_api), over moto in-process, with the recording transport for Airflow."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

import dagtrigger_cli.target
from dagtrigger.dependencies import Dependencies
from dagtrigger_cli.main import app
from dagtrigger_cli.target import Target
from devstack.lambda_context import LambdaContext, error_document
from devstack.paths import REPO_ROOT
from devstack.runner.http_api import HttpApiServer, Route
from devstack.runner.invoke import InvocationResult
from devstack.runner.template import HttpApiRouteSpec, discover
from functions.api.app import handle
from tests.unit.conftest import RecordingTransport

API_FUNCTION = "ApiFunction"
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "landing"


class DagtriggerRunner(CliRunner):
    """typer's runner bound to the `dagtrigger` app."""

    def run(self, *args: str, **kwargs: Any) -> Any:
        """``dagtrigger ARGS...``: the result has ``exit_code``, ``stdout`` and ``stderr``."""
        return self.invoke(app, list(args), **kwargs)


@pytest.fixture
def cli_runner() -> DagtriggerRunner:
    return DagtriggerRunner()


@cache
def api_routes() -> tuple[HttpApiRouteSpec, ...]:
    """The api function's routes as template.yaml declares them (read once per session)."""
    template = discover(
        REPO_ROOT / "template.yaml", parameter_overrides={"MwaaEnvironmentNames": "local"}
    )
    return tuple(template.function(API_FUNCTION).http_routes)


@dataclass
class ApiStack:
    """A stack for the command to talk to: ``target`` is what ``target_of`` answers."""

    target: Target
    deps: Dependencies
    transport: RecordingTransport
    #: every HTTP API event the api function received, in order
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ledger(self) -> Any:
        return self.deps.ledger

    def queries(self, path: str) -> list[dict[str, str]]:
        """The query parameters of each request to ``path``."""
        return [
            dict(event.get("queryStringParameters") or {})
            for event in self.events
            if event["rawPath"] == path
        ]


@pytest.fixture
def api_stack(
    deps: Dependencies,
    transport: RecordingTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ApiStack]:
    """The real api function behind a loopback HTTP API, over the unit tests' moto table; its
    target also names moto's queues and bucket, reached in-process (no endpoints)."""
    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=REGION,
    )
    sqs = session.client("sqs")
    suffix = uuid.uuid4().hex[:8]
    dlq_url = sqs.create_queue(QueueName=f"dagtrigger-s3-dlq-{suffix}")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName=f"dagtrigger-s3-events-{suffix}")["QueueUrl"]
    session.client("s3").create_bucket(Bucket=BUCKET)
    events: list[dict[str, Any]] = []
    server = HttpApiServer(
        api_id="cliapi0001",
        routes=[Route(spec, API_FUNCTION) for spec in api_routes()],
        invoke=_api_function(deps, events),
        account_id=ACCOUNT,
        region=REGION,
    )
    server.start()
    target = Target(
        name="test",
        session=session,
        table=deps.settings.table_name,
        queue_url=queue_url,
        dlq_url=dlq_url,
        api_url=server.url,
        bucket=BUCKET,
    )
    monkeypatch.setattr(dagtrigger_cli.target, "resolve", lambda options: target)
    try:
        yield ApiStack(target=target, deps=deps, transport=transport, events=events)
    finally:
        server.stop()
        for url in (queue_url, dlq_url):
            sqs.delete_queue(QueueUrl=url)


def _api_function(
    deps: Dependencies, events: list[dict[str, Any]]
) -> Callable[[str, dict[str, Any]], InvocationResult]:
    """The api function's handler with the test's dependencies, invoked as the runner does."""

    def invoke(function_logical_id: str, event: dict[str, Any]) -> InvocationResult:
        events.append(event)
        request_id = str(uuid.uuid4())
        context = LambdaContext(
            function_name="dagtrigger-api",
            function_version="$LATEST",
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:dagtrigger-api",
            memory_limit_in_mb=512,
            aws_request_id=request_id,
            log_group_name="/aws/lambda/dagtrigger-api",
            log_stream_name="test",
            deadline_monotonic=time.monotonic() + 30,
        )
        try:
            payload = handle(event, context, deps)  # type: ignore[arg-type]
        except Exception as error:  # Lambda answers a raising handler with 500
            return InvocationResult(function_logical_id, request_id, error=error_document(error))
        return InvocationResult(function_logical_id, request_id, payload=payload)

    return invoke
