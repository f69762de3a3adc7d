"""Fixtures for the HTTP API: real-shaped HTTP API v2 events driven through the resolver, a moto
history table, moto Secrets Manager and Scheduler, and the recording transport for Airflow."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from dagtrigger.dependencies import Dependencies
from functions.api.app import handle

REPO = Path(__file__).resolve().parents[3]
EVENTS = REPO / "events" / "api"
ACCOUNT = "111122223333"
CALLER_ARN = f"arn:aws:iam::{ACCOUNT}:user/data-engineer"
OTHER_CALLER_ARN = f"arn:aws:iam::{ACCOUNT}:user/someone-else"
GITHUB_SECRET_NAME = "dagtrigger/webhooks/github"
GITHUB_SECRET = "It's a Secret to Everybody"
STANDARD_SECRET_NAME = "dagtrigger/webhooks/payments"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SCHEDULE_GROUP = "dagtrigger-schedules"
SCHEDULE_TARGET_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:dagtrigger-schedules"
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/dagtrigger-scheduler"
SCHEDULE_DLQ_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dagtrigger-schedules-dlq"

API_ROUTES_YAML = f"""\
version: 1
environments:
  prod:
    name: analytics-prod
    transport: invoke_rest_api
    airflow_major: 3
  staging:
    name: analytics-staging
    transport: invoke_rest_api
    airflow_major: 3
webhooks:
  - name: github-push
    scheme: github
    secret: {GITHUB_SECRET_NAME}
    environment: prod
    dag_id: build_docs
    filter: "headers.\\"x-github-event\\" == 'push' && payload.ref == 'refs/heads/main'"
    conf:
      repository: "{{{{ payload.repository.full_name }}}}"
      after: "{{{{ payload.after }}}}"
      delivery: "{{{{ delivery_id }}}}"
  - name: payments
    scheme: standard-webhooks
    secret: {STANDARD_SECRET_NAME}
    environment: prod
    dag_id: sync_payments
    conf_jmespath: "{{id: payload.id, kind: payload.type}}"
  - name: payments-raw
    scheme: standard-webhooks
    secret: {STANDARD_SECRET_NAME}
    environment: prod
    dag_id: sync_payments
    conf_jmespath: "payload.items"
  - name: paused-hook
    scheme: github
    secret: {GITHUB_SECRET_NAME}
    environment: prod
    dag_id: never_runs
    paused: true
schedules:
  - name: nightly
    environment: prod
    dag_id: nightly_report
"""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


def http_api_event(
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bool = False,
    caller_arn: str | None = CALLER_ARN,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event as Lambda receives it."""
    query = query or {}
    raw_query = "&".join(f"{name}={value}" for name, value in query.items())
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com", **lowered},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "pytest",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:10:15:00 +0000",
            "timeEpoch": 1795256100000,
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = query
    if caller_arn is not None:
        event["requestContext"]["authorizer"] = {
            "iam": {
                "accessKey": "AKIAIOSFODNN7EXAMPLE",
                "accountId": ACCOUNT,
                "callerId": "AIDACKCEVSQ6C2EXAMPLE",
                "principalOrgId": None,
                "userArn": caller_arn,
                "userId": "AIDACKCEVSQ6C2EXAMPLE",
            }
        }
    if body is not None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        event["body"] = base64.b64encode(data).decode("ascii") if base64_body else data.decode()
    return event


class LambdaContextStub:
    function_name = "dagtrigger-api"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:dagtrigger-api"
    aws_request_id = "4a1f1c0e-2d7b-4f6e-9b1a-3c5d7e9f1a2b"


class ApiClient:
    """Sends events through the real resolver with the test's dependencies."""

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    def send(self, event: dict[str, Any]) -> HttpAnswer:
        response = handle(event, LambdaContextStub(), self.deps)  # type: ignore[arg-type]
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8")
        return HttpAnswer(response["statusCode"], dict(response.get("headers") or {}), body)

    def request(self, method: str, path: str, **kwargs: Any) -> HttpAnswer:
        return self.send(http_api_event(method, path, **kwargs))

    def post_json(
        self, path: str, document: Any, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> HttpAnswer:
        return self.request(
            "POST",
            path,
            body=json.dumps(document),
            headers={"content-type": "application/json", **(headers or {})},
            **kwargs,
        )


@pytest.fixture
def routes_yaml() -> str:
    return API_ROUTES_YAML


@pytest.fixture
def secrets_client(dynamodb: Any) -> Iterator[Any]:
    """moto Secrets Manager (inside the module's mock_aws) holding the webhook secrets."""
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name=GITHUB_SECRET_NAME, SecretString=GITHUB_SECRET)
    client.create_secret(
        Name=STANDARD_SECRET_NAME, SecretString=json.dumps({"secrets": [STANDARD_SECRET]})
    )
    yield client
    for name in (GITHUB_SECRET_NAME, STANDARD_SECRET_NAME):
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def scheduler_client(dynamodb: Any) -> Iterator[Any]:
    client = boto3.client("scheduler", region_name="us-east-1")
    client.create_schedule_group(Name=SCHEDULE_GROUP)
    yield client
    for schedule in client.list_schedules(GroupName=SCHEDULE_GROUP).get("Schedules", []):
        client.delete_schedule(Name=schedule["Name"], GroupName=SCHEDULE_GROUP)
    client.delete_schedule_group(Name=SCHEDULE_GROUP)


@pytest.fixture
def api_settings() -> dict[str, Any]:
    """The api function's settings (fields of dagtrigger.settings.Settings)."""
    return {
        "schedule_group_name": SCHEDULE_GROUP,
        "schedule_target_arn": SCHEDULE_TARGET_ARN,
        "scheduler_role_arn": SCHEDULER_ROLE_ARN,
        "schedule_dlq_arn": SCHEDULE_DLQ_ARN,
        "retry_after_seconds": 7,
    }


@pytest.fixture
def make_api_deps(
    make_deps: Callable[..., Dependencies],
    secrets_client: Any,
    scheduler_client: Any,
    api_settings: dict[str, Any],
) -> Callable[..., Dependencies]:
    def factory(**settings_overrides: Any) -> Dependencies:
        secrets = SecretsProvider(boto3_client=secrets_client)
        return replace(
            make_deps(**{**api_settings, **settings_overrides}),
            scheduler_client=lambda: scheduler_client,
            secrets_provider=lambda: secrets,
        )

    return factory


@pytest.fixture
def api_deps(make_api_deps: Callable[..., Dependencies]) -> Dependencies:
    return make_api_deps()


@pytest.fixture
def api(api_deps: Dependencies) -> ApiClient:
    return ApiClient(api_deps)


@pytest.fixture
def events_dir() -> Path:
    return EVENTS
