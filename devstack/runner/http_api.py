"""An HTTP API (API Gateway, payload format 2.0) on a loopback port, in front of the handlers.

What it reproduces of API Gateway HTTP APIs:

* route selection: the most specific route wins (literal segments before ``{param}`` before a
  greedy ``{proxy+}``; a method before ``ANY``), then ``$default``; no route gives
  404 ``{"message":"Not Found"}``;
* the 2.0 event: header names lower-cased and repeated headers joined with commas, cookies
  apart, repeated query parameters joined with commas, a binary body base64-encoded;
* ``AWS_IAM`` routes: a request without a SigV4 ``Authorization`` header gets
  403 ``{"message":"Forbidden"}``. Signatures are not verified locally; a signed request gets
  ``requestContext.authorizer.iam`` built from the credential in the header;
* limits: a body over 10 MB gets 413, an integration slower than the route's timeout (30 s at
  most) gets 503, a handler error 500, and so does a call Lambda throttles (the function's
  reserved concurrency all in use: API Gateway answers 500 for Lambda's 429);
* the answer: ``statusCode``/``headers``/``cookies``/``body`` (base64-decoded when
  ``isBase64Encoded``); any other return value is sent as a 200 JSON body, as API Gateway does.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from devstack.processes import LOOPBACK
from devstack.runner.invoke import InvocationResult
from devstack.runner.template import HttpApiRouteSpec

logger = logging.getLogger(__name__)
MAX_PAYLOAD_BYTES: Final = 10 * 1024 * 1024
MAX_INTEGRATION_TIMEOUT_MS: Final = 30_000
_SIGV4_CREDENTIAL = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/")
_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|xml|javascript|x-www-form-urlencoded|.*\+json|.*\+xml))$"
)

InvokeFunction = Callable[[str, dict[str, Any]], InvocationResult]


@dataclass(frozen=True)
class Route:
    """A route of the API and the function it integrates with."""

    spec: HttpApiRouteSpec
    function_logical_id: str

    @property
    def segments(self) -> list[str]:
        return [segment for segment in self.spec.path.split("/") if segment]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when this route matches (``{}`` for none), else None."""
        if self.spec.path == "$default":
            return {}
        if self.spec.method not in ("ANY", method):
            return None
        return _match_segments(self.segments, [part for part in path.split("/") if part])

    def specificity(self) -> tuple[int, int, int, int]:
        """Sort key, most specific first: no greedy, more literals, fewer params, a method."""
        segments = self.segments
        greedy = sum(segment.endswith("+}") for segment in segments)
        literals = sum(not segment.startswith("{") for segment in segments)
        params = len(segments) - literals
        return (greedy, -literals, params, self.spec.method == "ANY")


def _match_segments(template: list[str], actual: list[str]) -> dict[str, str] | None:
    parameters: dict[str, str] = {}
    for index, segment in enumerate(template):
        if segment.startswith("{") and segment.endswith("+}"):
            rest = actual[index:]
            if not rest:
                return None
            parameters[segment[1:-2]] = "/".join(rest)
            return parameters
        if index >= len(actual):
            return None
        if segment.startswith("{") and segment.endswith("}"):
            parameters[segment[1:-1]] = actual[index]
        elif segment != actual[index]:
            return None
    return parameters if len(actual) == len(template) else None


class RouteTable:
    """The routes of one API, tried from the most specific; ``$default`` last."""

    def __init__(self, routes: Iterable[Route]) -> None:
        ordered = sorted(routes, key=lambda route: route.specificity())
        self._routes = [route for route in ordered if route.spec.path != "$default"]
        self._default = next((route for route in ordered if route.spec.path == "$default"), None)
        keys = [route.spec.route_key for route in ordered]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"HTTP API routes declared twice: {', '.join(duplicates)}")

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self._routes:
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        if self._default is not None:
            return self._default, {}
        return None


@dataclass(frozen=True)
class IncomingRequest:
    """An HTTP request as the server read it."""

    method: str
    target: str
    protocol: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str


def build_http_event(
    request: IncomingRequest,
    *,
    route: Route,
    path_parameters: Mapping[str, str],
    api_id: str,
    account_id: str,
    region: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for `request`."""
    now = now or datetime.now(UTC)
    split = urlsplit(request.target)
    headers = _joined_headers(request.headers)
    cookie_header = headers.pop("cookie", None)
    domain = headers.get("host", f"{api_id}.execute-api.{region}.amazonaws.com")
    request_context: dict[str, Any] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {
            "method": request.method,
            "path": split.path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": _request_id(),
        "routeKey": route.spec.route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if route.spec.authorizer == "AWS_IAM":
        request_context["authorizer"] = {
            "iam": _iam_identity(headers.get("authorization", ""), account_id)
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.spec.route_key,
        "rawPath": split.path,
        "rawQueryString": split.query,
        "headers": headers,
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
    if cookie_header:
        event["cookies"] = [cookie.strip() for cookie in cookie_header.split(";") if cookie.strip()]
    query = _joined_query(split.query)
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if request.body:
        text = _as_text(request.body, headers.get("content-type", ""))
        event["body"] = text if text is not None else base64.b64encode(request.body).decode()
        event["isBase64Encoded"] = text is None
    return event


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def answer_from_result(result: InvocationResult) -> HttpAnswer:
    """Turn a handler's return value into the HTTP answer API Gateway would send."""
    if not result.succeeded:
        return _message(500, "Internal Server Error")
    payload = result.payload
    if not (isinstance(payload, dict) and "statusCode" in payload):
        # Format 2.0 without statusCode: API Gateway sends the value itself as JSON.
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return HttpAnswer(200, [("content-type", "application/json")], text.encode())
    try:
        status = int(payload["statusCode"])
        headers = [
            (str(name), str(value)) for name, value in (payload.get("headers") or {}).items()
        ]
        headers += [("set-cookie", str(cookie)) for cookie in payload.get("cookies") or []]
        raw_body = payload.get("body") or ""
        body = (
            base64.b64decode(raw_body, validate=True)
            if payload.get("isBase64Encoded")
            else str(raw_body).encode()
        )
    except (TypeError, ValueError, AttributeError):
        logger.warning("the handler's answer is malformed: 500")
        return _message(500, "Internal Server Error")
    return HttpAnswer(status, headers, body)


class HttpApiServer:
    """One HTTP API on 127.0.0.1; requests are handled in threads, handlers called via `invoke`."""

    def __init__(
        self,
        *,
        api_id: str,
        routes: Iterable[Route],
        invoke: InvokeFunction,
        account_id: str,
        region: str,
        port: int = 0,
        max_concurrent_calls: int = 4,
    ) -> None:
        """`max_concurrent_calls`: invocations in flight at once (those beyond wait for a thread);
        enough for every environment of the API's functions, so that a function's own limit
        (its reserved concurrency: throttled) is what callers meet."""
        self.api_id = api_id
        self._table = RouteTable(routes)
        self._invoke = invoke
        self._account_id = account_id
        self._region = region
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_concurrent_calls, thread_name_prefix=f"http-api-{api_id}"
        )
        self._server = ThreadingHTTPServer((LOOPBACK, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"http-api-{self.api_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def handle(self, request: IncomingRequest) -> HttpAnswer:
        """Route, check auth and limits, invoke and shape the answer (the server's whole job)."""
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return _message(413, "Request Entity Too Large")
        found = self._table.find(request.method, urlsplit(request.target).path)
        if found is None:
            return _message(404, "Not Found")
        route, parameters = found
        if route.spec.authorizer == "AWS_IAM" and not _is_sigv4(request.headers):
            return _message(403, "Forbidden")
        event = build_http_event(
            request,
            route=route,
            path_parameters=parameters,
            api_id=self.api_id,
            account_id=self._account_id,
            region=self._region,
        )
        timeout = min(route.spec.timeout_ms, MAX_INTEGRATION_TIMEOUT_MS) / 1000
        future = self._executor.submit(self._invoke, route.function_logical_id, event)
        try:
            result = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            return _message(503, "Service Unavailable")
        return answer_from_result(result)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "local-http-api"
            sys_version = ""

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_PAYLOAD_BYTES:
                    self._send(_message(413, "Request Entity Too Large"))
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else b""
                request = IncomingRequest(
                    method=self.command,
                    target=self.path,
                    protocol=self.request_version,
                    headers=list(self.headers.items()),
                    body=body,
                    source_ip=self.client_address[0],
                )
                self._send(api.handle(request))

            def _send(self, answer: HttpAnswer) -> None:
                self.send_response(answer.status)
                for name, value in answer.headers:
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("apigw-requestid", _request_id())
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("http api %s: " + format, api.api_id, *args)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        return Handler


def _joined_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def _joined_query(raw_query: str) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _as_text(body: bytes, content_type: str) -> str | None:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type and not _TEXT_TYPES.match(media_type):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_sigv4(headers: Iterable[tuple[str, str]]) -> bool:
    return any(
        name.lower() == "authorization" and _SIGV4_CREDENTIAL.match(value) is not None
        for name, value in headers
    )


def _iam_identity(authorization: str, account_id: str) -> dict[str, Any]:
    match = _SIGV4_CREDENTIAL.match(authorization)
    access_key = match.group(1) if match else ""
    return {
        "accessKey": access_key,
        "accountId": account_id,
        "callerId": access_key,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::{account_id}:user/local-{access_key}",
        "userId": access_key,
    }


def _message(status: int, message: str) -> HttpAnswer:
    body = json.dumps({"message": message}).encode()
    return HttpAnswer(status, [("content-type", "application/json")], body)


def _request_id() -> str:
    # API Gateway request ids look like "JKJaXmPLvHcESHA="; any unique string does locally.
    return base64.b64encode(uuid.uuid4().bytes[:12]).decode()
