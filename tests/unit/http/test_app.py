"""The app as a whole: the OpenAPI document, health, problem+json errors, the sample events."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from dagtrigger.ledger import TriggerLedger
from tests.unit.http.conftest import ApiClient

#: every route the API serves: the OpenAPI document must describe each one
ROUTES = {
    ("post", "/v1/dags/{dag_id}/runs"),
    ("get", "/v1/triggers"),
    ("get", "/v1/triggers/{trigger_id}"),
    ("post", "/v1/triggers/{trigger_id}/replay"),
    ("get", "/v1/objects"),
    ("get", "/v1/sets/{set_id}"),
    ("get", "/v1/schedules"),
    ("post", "/v1/schedules"),
    ("get", "/v1/schedules/{name}"),
    ("put", "/v1/schedules/{name}"),
    ("delete", "/v1/schedules/{name}"),
    ("post", "/v1/webhooks/{name}"),
    ("post", "/v1/routes/test"),
    ("get", "/v1/health"),
    ("get", "/v1/openapi.json"),
}


def test_the_openapi_document_is_json_that_lists_every_route(api: ApiClient) -> None:
    answer = api.request("GET", "/v1/openapi.json")

    assert answer.status == 200
    assert answer.content_type == "application/json"
    document = json.loads(answer.text)
    assert document["openapi"].startswith("3.1")
    listed = {(method, path) for path, item in document["paths"].items() for method in item}
    assert listed == ROUTES


def test_the_openapi_document_says_which_routes_are_iam_signed(api: ApiClient) -> None:
    document = api.request("GET", "/v1/openapi.json").json

    security = {
        (method, path): operation.get("security")
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert security.pop(("post", "/v1/webhooks/{name}")) in (None, [])
    assert all(value == [{"sigv4": []}] for value in security.values())
    assert "sigv4" in document["components"]["securitySchemes"]


def test_the_openapi_document_describes_problem_answers(api: ApiClient) -> None:
    document = api.request("GET", "/v1/openapi.json").json

    runs = document["paths"]["/v1/dags/{dag_id}/runs"]["post"]
    assert "202" in runs["responses"]
    assert "application/problem+json" in runs["responses"]["413"]["content"]
    headers = [p["name"].lower() for p in runs["parameters"] if p["in"] == "header"]
    assert headers == ["idempotency-key"]


def test_health_is_ok_when_the_table_and_routes_are(api: ApiClient) -> None:
    answer = api.request("GET", "/v1/health")

    assert answer.status == 200
    assert answer.json["status"] == "ok"
    assert answer.json["checks"] == {"table": "ok", "routes": "ok"}
    assert answer.json["version"]


def test_health_is_degraded_when_the_table_is_missing(make_api_deps: Any) -> None:
    deps = make_api_deps()
    missing = boto3.resource("dynamodb", region_name="us-east-1").Table("no-such-table")
    api = ApiClient(replace(deps, ledger=TriggerLedger(missing)))

    answer = api.request("GET", "/v1/health")

    assert answer.status == 503
    assert answer.json["status"] == "degraded"
    assert answer.json["checks"] == {"table": "error", "routes": "ok"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/v1/nowhere", None, 404),
        ("DELETE", "/v1/health", None, 404),
        ("GET", "/v1/triggers/t-00000000000000000000000000000000", None, 404),
        ("POST", "/v1/dags/-x/runs", '{"conf": {}}', 422),
        ("POST", "/v1/dags/x/runs", "[", 400),
        ("POST", "/v1/webhooks/github-push", "{}", 401),
        ("GET", "/v1/triggers", None, 400),
    ],
)
def test_every_error_is_problem_json(
    api: ApiClient, method: str, path: str, body: str | None, status: int
) -> None:
    query = {"cursor": "garbage"} if path == "/v1/triggers" else None

    answer = api.request(method, path, body=body, query=query)

    assert answer.status == status
    assert answer.content_type == "application/problem+json"
    problem = answer.json
    assert problem["status"] == status
    assert problem["type"] == f"urn:dagtrigger:problem:{problem['code']}"
    assert problem["instance"] == path
    assert problem["title"]
    assert problem["detail"]


def test_an_unexpected_error_is_a_500_without_internals(
    make_api_deps: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = make_api_deps()

    def broken() -> Any:
        raise RuntimeError("secret internal detail at /opt/python/dagtrigger/x.py line 3")

    monkeypatch.setattr(deps.routes, "get", broken)
    api = ApiClient(deps)

    answer = api.post_json("/v1/dags/ingest_sales/runs", {"conf": {}})

    assert answer.status == 500
    assert answer.json["code"] == "internal"
    assert "secret internal detail" not in answer.text
    assert "Traceback" not in answer.text


def test_the_sample_dag_run_event_starts_a_run(
    api: ApiClient, transport: Any, events_dir: Path
) -> None:
    event = json.loads((events_dir / "dag_run_request.json").read_text())

    answer = api.send(event)

    assert answer.status == 202, answer.text
    assert transport.calls[0].conf == {"day": "2026-11-21", "region": "eu"}


def test_the_sample_github_event_is_authentic_and_starts_a_run(
    api: ApiClient, transport: Any, events_dir: Path
) -> None:
    event = json.loads((events_dir / "github_webhook.json").read_text())

    answer = api.send(event)

    assert answer.status == 202, answer.text
    assert transport.calls[0].dag_id == "build_docs"
