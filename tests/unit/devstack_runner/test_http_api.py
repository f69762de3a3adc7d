"""HTTP API emulation: route matching, the 2.0 event, auth, limits and the answer."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest
import requests
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model

from devstack.runner.http_api import (
    MAX_PAYLOAD_BYTES,
    HttpApiServer,
    IncomingRequest,
    Route,
    RouteTable,
    answer_from_result,
    build_http_event,
)
from devstack.runner.invoke import InvocationResult
from devstack.runner.template import HttpApiRouteSpec

SIGNED = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261121/us-east-1/execute-api/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=abc"
)


def route(
    path: str, method: str = "GET", authorizer: str = "NONE", timeout_ms: int = 30_000
) -> Route:
    return Route(HttpApiRouteSpec("E", "Api", method, path, authorizer, timeout_ms), "Fn")


def request(
    target: str,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> IncomingRequest:
    return IncomingRequest(method, target, "HTTP/1.1", headers or [], body, "127.0.0.1")


@pytest.mark.parametrize(
    ("method", "path", "expected_key", "parameters"),
    [
        ("GET", "/items/special", "GET /items/special", {}),
        ("GET", "/items/42", "GET /items/{id}", {"id": "42"}),
        ("POST", "/items/42", "ANY /items/{id}", {"id": "42"}),
        ("GET", "/items/42/parts/a/b", "ANY /items/{proxy+}", {"proxy": "42/parts/a/b"}),
        ("DELETE", "/other", "$default", {}),
    ],
)
def test_the_most_specific_route_wins(
    method: str, path: str, expected_key: str, parameters: dict[str, str]
) -> None:
    table = RouteTable(
        [
            route("/items/{proxy+}", "ANY"),
            route("/items/{id}", "ANY"),
            route("/items/{id}"),
            route("/items/special"),
            route("$default", "ANY"),
        ]
    )
    found = table.find(method, path)
    assert found is not None
    assert (found[0].spec.route_key, found[1]) == (expected_key, parameters)


def test_no_route_and_no_default_finds_nothing() -> None:
    table = RouteTable([route("/items/{id}")])
    assert table.find("GET", "/items") is None
    assert table.find("GET", "/items/1/2") is None
    assert table.find("POST", "/items/1") is None


def test_a_route_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice: GET /a"):
        RouteTable([route("/a"), route("/a")])


def test_the_event_parses_with_powertools_and_joins_like_api_gateway() -> None:
    # Given a request with repeated headers and query parameters, cookies and a JSON body
    incoming = request(
        "/items/42?tag=a&tag=b&empty=",
        "POST",
        [
            ("Host", "127.0.0.1:8080"),
            ("X-Multi", "one"),
            ("x-multi", "two"),
            ("Cookie", "session=abc; theme=dark"),
            ("Content-Type", "application/json"),
            ("User-Agent", "tests"),
        ],
        b'{"a": 1}',
    )
    # When it becomes a 2.0 event
    event = build_http_event(
        incoming,
        route=route("/items/{id}", "POST"),
        path_parameters={"id": "42"},
        api_id="abc123",
        account_id="123456789012",
        region="us-east-1",
    )
    data_class = APIGatewayProxyEventV2(event)
    model = parse(event=event, model=APIGatewayProxyEventV2Model)
    # Then Powertools reads it and the values are API Gateway's
    assert data_class.route_key == "POST /items/{id}"
    assert data_class.raw_path == "/items/42"
    assert data_class.raw_query_string == "tag=a&tag=b&empty="
    assert data_class.headers["x-multi"] == "one,two"
    assert "cookie" not in data_class.headers
    assert data_class.cookies == ["session=abc", "theme=dark"]
    assert data_class.query_string_parameters == {"tag": "a,b", "empty": ""}
    assert data_class.path_parameters == {"id": "42"}
    assert data_class.json_body == {"a": 1}
    assert data_class.request_context.http.method == "POST"
    assert data_class.request_context.http.user_agent == "tests"
    assert data_class.request_context.stage == "$default"
    assert model.version == "2.0"
    assert model.isBase64Encoded is False


def test_binary_bodies_are_base64_encoded_and_iam_callers_are_described() -> None:
    event = build_http_event(
        request(
            "/files/x",
            "PUT",
            [("Content-Type", "image/png"), ("Authorization", SIGNED)],
            b"\x89PNG",
        ),
        route=route("/files/{proxy+}", "ANY", "AWS_IAM"),
        path_parameters={"proxy": "x"},
        api_id="abc123",
        account_id="123456789012",
        region="us-east-1",
    )
    parsed = APIGatewayProxyEventV2(event)
    assert parsed.is_base64_encoded
    assert base64.b64decode(event["body"]) == b"\x89PNG"
    assert parsed.request_context.authorizer.iam.access_key == "AKIDEXAMPLE"
    assert parsed.request_context.authorizer.iam.account_id == "123456789012"


def ok(payload: Any) -> InvocationResult:
    return InvocationResult("Fn", "r", payload)


def test_answers_follow_the_handlers_shape() -> None:
    full = answer_from_result(
        ok(
            {
                "statusCode": 201,
                "headers": {"x-a": "1"},
                "cookies": ["c=1"],
                "body": "AAE=",
                "isBase64Encoded": True,
            }
        )
    )
    assert (full.status, full.body) == (201, b"\x00\x01")
    assert ("set-cookie", "c=1") in full.headers
    inferred = answer_from_result(ok({"hello": "world"}))
    assert (inferred.status, inferred.body) == (200, b'{"hello": "world"}')
    failed = answer_from_result(InvocationResult("Fn", "r", error={"errorType": "E"}))
    assert (failed.status, failed.body) == (500, b'{"message": "Internal Server Error"}')


class ApiFixture:
    """An HttpApiServer whose integration is a recorded fake (no handler module)."""

    def __init__(self, delay: threading.Event | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.release = delay

    def invoke(self, function: str, event: dict[str, Any]) -> InvocationResult:
        self.events.append(event)
        if self.release is not None:
            self.release.wait(5)
        return ok({"statusCode": 200, "body": "done"})


def server_with(fake: ApiFixture, *routes: Route) -> HttpApiServer:
    return HttpApiServer(
        api_id="abc123",
        routes=routes,
        invoke=fake.invoke,
        account_id="123456789012",
        region="us-east-1",
    )


def test_iam_routes_refuse_unsigned_calls_and_accept_signed_ones() -> None:
    fake = ApiFixture()
    server = server_with(fake, route("/admin", "GET", "AWS_IAM"))
    try:
        unsigned = server.handle(request("/admin"))
        signed = server.handle(request("/admin", headers=[("Authorization", SIGNED)]))
    finally:
        server.stop()
    assert (unsigned.status, unsigned.body) == (403, b'{"message": "Forbidden"}')
    assert signed.status == 200
    assert len(fake.events) == 1


def test_unknown_routes_get_404_and_oversized_bodies_413() -> None:
    fake = ApiFixture()
    server = server_with(fake, route("/items", "POST"))
    try:
        missing = server.handle(request("/nothing"))
        too_big = server.handle(request("/items", "POST", body=b"x" * (MAX_PAYLOAD_BYTES + 1)))
    finally:
        server.stop()
    assert (missing.status, missing.body) == (404, b'{"message": "Not Found"}')
    assert too_big.status == 413
    assert fake.events == []


def test_an_integration_slower_than_the_route_timeout_gets_503() -> None:
    release = threading.Event()
    fake = ApiFixture(delay=release)
    server = server_with(fake, route("/slow", timeout_ms=50))
    try:
        answer = server.handle(request("/slow"))
    finally:
        release.set()
        server.stop()
    assert (answer.status, answer.body) == (503, b'{"message": "Service Unavailable"}')


def test_the_server_answers_on_loopback() -> None:
    # Given a running server (127.0.0.1, ephemeral port)
    fake = ApiFixture()
    server = server_with(fake, route("/items/{id}"))
    server.start()
    try:
        # When a real HTTP request arrives
        response = requests.get(f"{server.url}/items/7?x=1", headers={"X-Test": "yes"}, timeout=10)
    finally:
        server.stop()
    # Then the handler's answer comes back, and the event carried the request
    assert server.url.startswith("http://127.0.0.1:")
    assert (response.status_code, response.text) == (200, "done")
    assert fake.events[0]["pathParameters"] == {"id": "7"}
    assert fake.events[0]["headers"]["x-test"] == "yes"
