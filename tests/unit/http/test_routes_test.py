"""POST /v1/routes/test: the dry run over HTTP, against the stack's routes file or one the
request carries; the ids it shows are those a real, signed delivery gets."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.dependencies import Dependencies
from dagtrigger.sources.webhooks import sign_github, sign_standard_webhooks
from devstack.runner.http_api import HttpApiServer, IncomingRequest, Route
from devstack.runner.invoke import InvocationResult
from devstack.runner.template import discover
from functions.api.app import handle
from tests.unit.http.conftest import (
    GITHUB_SECRET,
    STANDARD_SECRET,
    ApiClient,
    LambdaContextStub,
)

PATH = "/v1/routes/test"
NOW = datetime(2026, 11, 21, 10, 15, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]
PUSH = json.dumps(
    {
        "ref": "refs/heads/main",
        "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "repository": {"full_name": "octo-org/docs"},
    }
)
S3_ROUTES_DOCUMENT = """\
version: 1
environments:
  prod: {name: analytics-prod, transport: invoke_rest_api}
s3:
  - name: sales-csv
    buckets: [landing]
    prefix: sales/
    environment: prod
    dag_id: ingest_sales
"""


@pytest.fixture
def api_at_now(make_api_deps: Callable[..., Dependencies]) -> ApiClient:
    """The API with its clock stopped at NOW (deliveries are received then)."""
    return ApiClient(make_api_deps(clock=lambda: NOW))


def match_of(answer: Any) -> dict[str, Any]:
    assert answer.status == 200, answer.text
    (match,) = answer.json["matches"]
    return match


def test_a_dry_run_answers_200_with_the_matches_of_the_stacks_routes(
    api: ApiClient, transport: Any
) -> None:
    # When a fire of the nightly schedule is dry-run against the deployed routes
    answer = api.post_json(PATH, {"schedule": {"route": "nightly"}})

    # Then the answer shows the route's DAG, conf and run id, and why the others take no part
    match = match_of(answer)
    assert (match["route"], match["dag_id"], match["verdict"]) == (
        "nightly",
        "nightly_report",
        "trigger",
    )
    assert match["dag_run_id"].startswith("dagtrigger__schedule__nightly__")
    assert {other["verdict"] for other in answer.json["non_matches"]} == {"other_source"}
    assert answer.json["routes_source"].startswith("the stack's routes file (file:")
    assert answer.json["notes"][0] == "dry run: nothing was triggered and nothing was written"
    # And nothing was started or recorded
    assert transport.calls == []
    assert api.request("GET", f"/v1/triggers/{match['trigger_id']}").status == 404


def test_a_github_dry_run_names_the_trigger_and_run_the_signed_delivery_gets(
    api_at_now: ApiClient, transport: Any
) -> None:
    # Given a push, with the delivery id and event GitHub sends beside it
    headers = {"X-GitHub-Delivery": "72d3162e-cc78", "X-GitHub-Event": "push"}

    # When it is dry-run (body as sent, no signature), then delivered for real, signed
    dry = match_of(
        api_at_now.post_json(
            PATH, {"webhook": {"name": "github-push", "body": PUSH, "headers": headers}}
        )
    )
    signed = sign_github(PUSH.encode(), secret=GITHUB_SECRET, delivery_id="72d3162e-cc78")
    real = api_at_now.request(
        "POST",
        "/v1/webhooks/github-push",
        body=PUSH,
        headers={**signed, "X-GitHub-Event": "push", "Content-Type": "application/json"},
        caller_arn=None,
    )

    # Then the real delivery is the trigger the dry run named, started as it said
    assert real.status == 202, real.text
    assert real.json["trigger_id"] == dry["trigger_id"]
    (call,) = transport.calls
    assert (call.dag_id, call.dag_run_id, call.conf) == (
        dry["dag_id"],
        dry["dag_run_id"],
        dry["conf"],
    )


def test_a_standard_webhooks_dry_run_names_the_run_the_signed_delivery_gets(
    api_at_now: ApiClient, transport: Any
) -> None:
    body = json.dumps({"id": "evt_1", "type": "payment.succeeded"})
    dry = match_of(
        api_at_now.post_json(
            PATH,
            {"webhook": {"name": "payments", "body": body, "headers": {"webhook-id": "msg_1"}}},
        )
    )
    signed = sign_standard_webhooks(
        body.encode(), secrets=[STANDARD_SECRET], msg_id="msg_1", timestamp=int(NOW.timestamp())
    )

    real = api_at_now.request(
        "POST", "/v1/webhooks/payments", body=body, headers=signed, caller_arn=None
    )

    assert real.status == 202, real.text
    assert real.json["trigger_id"] == dry["trigger_id"]
    (call,) = transport.calls
    assert (call.dag_run_id, call.conf) == (dry["dag_run_id"], dry["conf"])
    assert call.conf == {"id": "evt_1", "kind": "payment.succeeded"}


def test_a_paused_webhook_is_a_non_match_saying_so(api: ApiClient) -> None:
    answer = api.post_json(PATH, {"webhook": {"name": "paused-hook", "payload": {}}})

    assert answer.status == 200, answer.text
    assert answer.json["matches"] == []
    (paused,) = [v for v in answer.json["non_matches"] if v["route"] == "paused-hook"]
    assert (paused["verdict"], paused["reasons"]) == ("paused", ["route paused-hook is paused"])


def test_a_routes_document_in_the_request_is_tested_instead_of_the_stacks(api: ApiClient) -> None:
    # Given a change to the routes that adds an S3 route (the stack's file has none)
    request = {
        "routes_document": S3_ROUTES_DOCUMENT,
        "s3": {"bucket": "landing", "key": "sales/a.csv", "size": 10, "version_id": "v1"},
    }

    # When an object is dry-run against it
    answer = api.post_json(PATH, request)

    # Then the new route matches, and the answer says which routes were tested
    match = match_of(answer)
    assert (match["route"], match["kind"], match["verdict"]) == ("sales-csv", "s3", "trigger")
    assert answer.json["routes_source"] == "the request's routes_document"


def test_an_invalid_routes_document_is_a_422_naming_each_field_and_line(api: ApiClient) -> None:
    document = S3_ROUTES_DOCUMENT.replace("dag_id: ingest_sales", "dag_id: -ingest")

    answer = api.post_json(
        PATH, {"routes_document": document, "s3": {"bucket": "landing", "key": "a"}}
    )

    assert answer.status == 422
    assert answer.content_type == "application/problem+json"
    assert "s3[0].dag_id (line 9): String should match pattern" in answer.json["detail"]
    (error,) = answer.json["errors"]
    assert (error["loc"], error["type"]) == (["body", "routes_document"], "invalid_routes_file")


def test_a_routes_document_with_yaml_aliases_is_refused(api: ApiClient) -> None:
    document = S3_ROUTES_DOCUMENT + "webhooks: &many [*many]\n"

    answer = api.post_json(
        PATH, {"routes_document": document, "s3": {"bucket": "landing", "key": "a"}}
    )

    assert answer.status == 422
    assert "uses a YAML alias" in answer.json["detail"]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({}, ["body"]),
        ({"s3": {"bucket": "landing", "key": "a"}, "schedule": {"route": "nightly"}}, ["body"]),
        ({"s3": {"bucket": "Landing!", "key": "a"}}, ["body", "s3", "bucket"]),
        ({"s3": {"bucket": "landing", "key": "a", "sise": 1}}, ["body", "s3", "sise"]),
        ({"schedule": {"route": "nightly", "scheduled_time": "2026-11-21T02:00"}}, None),
    ],
)
def test_a_body_that_is_not_one_valid_event_is_a_422(
    api: ApiClient, body: dict[str, Any], location: list[str] | None
) -> None:
    answer = api.post_json(PATH, body)

    assert answer.status == 422, answer.text
    assert answer.json["code"] == "validation_error"
    if location is not None:
        assert location in [error["loc"] for error in answer.json["errors"]]


def test_a_webhook_body_that_is_not_json_is_a_400(api: ApiClient) -> None:
    answer = api.post_json(PATH, {"webhook": {"name": "github-push", "body": "not json"}})

    assert answer.status == 400
    assert answer.json["detail"] == "the body is not valid UTF-8 JSON at line 1 column 1"


def test_the_openapi_document_describes_the_route_as_iam_signed(api: ApiClient) -> None:
    document = api.request("GET", "/v1/openapi.json").json

    operation = document["paths"][PATH]["post"]
    assert operation["security"] == [{"sigv4": []}]
    assert "422" in operation["responses"]
    schemas = document["components"]["schemas"]
    assert {"s3", "webhook", "schedule", "routes_document"} <= set(
        schemas["RoutesTestRequest"]["properties"]
    )
    assert {"matches", "non_matches", "notes"} <= set(schemas["DryRunReport"]["properties"])


def test_the_deployed_route_refuses_unsigned_calls_and_serves_signed_ones(
    api_deps: Dependencies,
) -> None:
    # Given the route as the template declares it, served by the local HTTP API in front of
    # the real api handler
    api = discover(REPO / "template.yaml", parameter_overrides={"MwaaEnvironmentNames": "x"})
    (spec,) = [r for r in api.function("ApiFunction").http_routes if r.path == PATH]
    assert spec.authorizer == "AWS_IAM"
    server = HttpApiServer(
        api_id="abc123",
        routes=[Route(spec, "ApiFunction")],
        invoke=lambda function, event: InvocationResult(
            function,
            "r",
            handle(event, LambdaContextStub(), api_deps),  # type: ignore[arg-type]
        ),
        account_id="111122223333",
        region="us-east-1",
    )
    body = json.dumps({"schedule": {"route": "nightly"}}).encode()
    headers = [("Content-Type", "application/json")]
    sigv4 = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261121/us-east-1/execute-api/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )

    # When it is called without a SigV4 signature, and with one
    try:
        unsigned = server.handle(IncomingRequest("POST", PATH, "HTTP/1.1", headers, body, "::1"))
        signed = server.handle(
            IncomingRequest(
                "POST", PATH, "HTTP/1.1", [*headers, ("Authorization", sigv4)], body, "::1"
            )
        )
    finally:
        server.stop()

    # Then the unsigned call never reaches the function, and the signed one is answered
    assert (unsigned.status, unsigned.body) == (403, b'{"message": "Forbidden"}')
    assert signed.status == 200
    assert json.loads(signed.body)["matches"][0]["route"] == "nightly"


def test_a_stack_whose_routes_file_cannot_be_loaded_answers_503_saying_why(
    make_api_deps: Callable[..., Dependencies], tmp_path: Path
) -> None:
    broken = tmp_path / "routes.yaml"
    broken.write_text("version: 2\n", encoding="utf-8")
    api = ApiClient(make_api_deps(routes_location=f"file:{broken}"))

    answer = api.post_json(PATH, {"schedule": {"route": "nightly"}})

    assert answer.status == 503
    assert answer.json["detail"].startswith("the stack's routes file cannot be loaded: invalid")
    assert "version (line 1)" in answer.json["detail"]
