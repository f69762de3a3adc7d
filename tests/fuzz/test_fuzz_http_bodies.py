"""Fuzz: the HTTP API never answers 500, whatever arrives.

Requests go through the real resolver (``functions/api/app.py``) with the HTTP unit tests'
dependencies: a moto history table, moto Secrets Manager and Scheduler, and the recording
transport standing in for Airflow (it accepts every trigger, so no answer here has a reason to
be a 5xx). For every route, and for paths and methods no route has, with any body (bytes,
invalid UTF-8, escaped lone surrogates, deep nesting, huge numbers, wrong types, well-formed
requests with hostile values), any headers (signed webhook deliveries among them, so the
payload is parsed) and any query, the answer is below 500, and every refusal is
``application/problem+json`` whose ``detail`` says what was wrong.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagtrigger.http.problems import PROBLEM_CONTENT_TYPE, ProblemCode
from dagtrigger.sources.webhooks import sign_github, sign_standard_webhooks

# The unit tests' fixtures, reused as they are (pytest collects fixtures a test module imports).
from tests.unit.conftest import (  # noqa: F401
    _no_local_stack_endpoints,
    dynamodb,
    event_bus,
    failure_topic,
    make_deps,
    routes_file,
    table,
    transport,
)
from tests.unit.http.conftest import (  # noqa: F401
    CALLER_ARN,
    GITHUB_SECRET,
    STANDARD_SECRET,
    ApiClient,
    HttpAnswer,
    api,
    api_deps,
    api_settings,
    http_api_event,
    make_api_deps,
    routes_yaml,
    scheduler_client,
    secrets_client,
)

# One API (and table) serves every example of a test: the examples share its history, as the
# requests of a real deployment do.
ONE_API_PER_TEST = settings(
    deadline=None,
    suppress_health_check=[
        *settings().suppress_health_check,
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
    ],
)

# --------------------------------------------------------------------------- what is sent

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "-x",
        "--conf",
        "..",
        "../../etc/passwd",
        "%00",
        "%2F",
        "a/b",
        "'; DROP TABLE triggers; --",
        "$(id)",
        "{{ 7*7 }}",
        "{% raw %}",
        "é✓🚀",
        "\u202e",
        "\x00",
        "\ud800",
        "x" * 300,
        "9" * 5000,
        "null",
        "true",
        "2026-11-21T02:00:00",
        "2026-11-21T02:00:00+00:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "t-" + "0" * 32,
        "github-push",
        "nightly",
    ]
)
TEXT = st.one_of(st.text(max_size=40), HOSTILE_TEXT)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),  # NaN and infinities included: json.dumps writes them as NaN / Infinity
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)
OFFSETS = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
DATES = st.one_of(
    TEXT,
    JSON_VALUES,
    st.datetimes(timezones=st.none() | OFFSETS).map(lambda moment: moment.isoformat()),
)

#: request documents shaped like each route's model, each field any value or a hostile one
DAG_RUN_REQUESTS = st.fixed_dictionaries(
    {"conf": st.one_of(st.dictionaries(TEXT, JSON_VALUES, max_size=5), JSON_VALUES)},
    optional={
        "environment": st.one_of(st.sampled_from(["prod", "staging", "nope"]), JSON_VALUES),
        "note": st.one_of(TEXT, st.text(min_size=990, max_size=1010), JSON_VALUES),
        "logical_date": DATES,
        "unexpected": JSON_VALUES,
    },
)
SCHEDULE_SPECS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.from_regex(r"\A[0-9a-zA-Z_.-]{1,64}\Z"), TEXT, JSON_VALUES),
        "expression": st.one_of(
            st.sampled_from(
                [
                    "rate(5 minutes)",
                    "rate(0 minutes)",
                    "rate(1 fortnight)",
                    "cron(0 2 * * ? *)",
                    "cron(0 2 * * * *)",
                    "cron(99 99 99 99 99 99)",
                    "at(2026-11-21T02:00:00)",
                    "at(0000-00-00T00:00:00)",
                ]
            ),
            TEXT,
            JSON_VALUES,
        ),
        "timezone": st.one_of(
            st.sampled_from(["UTC", "Europe/Paris", "Mars/Olympus", "../etc"]), TEXT
        ),
        "route": st.one_of(st.sampled_from(["nightly", "missing"]), TEXT, JSON_VALUES),
        "dag_id": st.one_of(st.sampled_from(["nightly_report", "-x"]), TEXT, JSON_VALUES),
        "environment": st.one_of(st.sampled_from(["prod", "nope"]), JSON_VALUES),
        "conf": JSON_VALUES,
        "flexible_window_minutes": st.one_of(st.integers(-5, 2000), JSON_VALUES),
        "state": st.one_of(st.sampled_from(["ENABLED", "DISABLED", "PAUSED"]), JSON_VALUES),
        "start_date": DATES,
        "end_date": DATES,
        "description": st.one_of(TEXT, JSON_VALUES),
        "retry_policy": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "maximum_retry_attempts": st.one_of(st.integers(-1, 200), JSON_VALUES),
                    "maximum_event_age_seconds": st.one_of(st.integers(0, 90000), JSON_VALUES),
                },
            ),
            JSON_VALUES,
        ),
        "delete_after_completion": JSON_VALUES,
    },
)
WEBHOOK_PAYLOADS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {"ref": st.one_of(st.just("refs/heads/main"), TEXT)},
        optional={
            "after": JSON_VALUES,
            "repository": st.one_of(st.fixed_dictionaries({"full_name": JSON_VALUES}), JSON_VALUES),
            "id": JSON_VALUES,
            "type": JSON_VALUES,
            "items": JSON_VALUES,
        },
    ),
)
DRY_RUN_ROUTES_DOCUMENTS = st.one_of(
    TEXT,
    st.sampled_from(
        [
            "version: 1\nenvironments:\n  prod: {name: p, transport: cli}\n"
            "s3:\n  - {name: r, buckets: [landing], environment: prod, dag_id: d,"
            ' conf_template: \'{"k": "{{ key }}"}\'}\n',
            "version: 1\nenvironments: {}\n",
            "a: &x [*x]\n",
            "[" * 5000,
            "- " * 5000,
            "version: 1\nversion: 1\n",
        ]
    ),
)
DRY_RUN_EVENTS = st.one_of(
    st.fixed_dictionaries(
        {
            "s3": st.fixed_dictionaries(
                {"bucket": st.one_of(st.just("landing"), TEXT), "key": TEXT},
                optional={
                    "size": st.one_of(st.integers(), JSON_VALUES),
                    "version_id": TEXT,
                    "etag": TEXT,
                    "sequencer": TEXT,
                    "event_time": DATES,
                    "region": TEXT,
                },
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "webhook": st.fixed_dictionaries(
                {"name": st.sampled_from(["github-push", "payments", "paused-hook", "nobody"])},
                optional={
                    "body": st.one_of(TEXT, WEBHOOK_PAYLOADS.map(json.dumps)),
                    "payload": WEBHOOK_PAYLOADS,
                    "headers": st.one_of(st.dictionaries(TEXT, TEXT, max_size=3), JSON_VALUES),
                    "received_at": DATES,
                },
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "schedule": st.fixed_dictionaries(
                {"route": st.one_of(st.sampled_from(["nightly", "github-push", "nope"]), TEXT)},
                optional={
                    "schedule_arn": TEXT,
                    "scheduled_time": DATES,
                    "conf": JSON_VALUES,
                },
            )
        }
    ),
)
DRY_RUN_REQUESTS = st.one_of(
    DRY_RUN_EVENTS,
    st.tuples(DRY_RUN_EVENTS, DRY_RUN_ROUTES_DOCUMENTS).map(
        lambda pair: {**pair[0], "routes_document": pair[1]}
    ),
    JSON_VALUES,
)


@st.composite
def hostile_json_texts(draw: st.DrawFn) -> str:
    """JSON texts (or nearly) that are hard on parsers."""
    depth = draw(st.integers(min_value=1, max_value=100_000))
    kind = draw(
        st.sampled_from(
            ["deep-list", "deep-object", "big-int", "big-exponent", "surrogate", "bom", "dup"]
        )
    )
    if kind == "deep-list":
        return "[" * depth + "]" * depth
    if kind == "deep-object":
        return '{"conf":' + '{"a":' * depth + "1" + "}" * depth + "}"
    if kind == "big-int":
        return '{"conf": {"n": ' + "9" * min(depth, 20_000) + "}}"
    if kind == "big-exponent":
        return '{"conf": {"n": 1e' + "9" * min(depth, 400) + "}}"
    if kind == "surrogate":
        return '{"conf": {"\\ud800": "\\udfff"}, "note": "\\udbff"}'
    if kind == "bom":
        return '\ufeff{"conf": {}}'
    return '{"conf": {}, "conf": []}'


BODIES = st.one_of(
    st.none(),
    st.binary(max_size=200),
    st.text(max_size=200),
    hostile_json_texts(),
    JSON_VALUES.map(json.dumps),
)


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "{}" is the path parameter
    parameter: st.SearchStrategy[str]
    bodies: st.SearchStrategy[Any]


SEGMENTS = st.one_of(TEXT, st.text(min_size=1, max_size=300))
ROUTES = [
    Route(
        "POST",
        "/v1/dags/{}/runs",
        st.one_of(st.just("ingest_sales"), SEGMENTS),
        st.one_of(DAG_RUN_REQUESTS.map(json.dumps), BODIES),
    ),
    Route("GET", "/v1/triggers/{}", SEGMENTS, BODIES),
    Route("GET", "/v1/triggers", st.just(""), BODIES),
    Route("POST", "/v1/triggers/{}/replay", SEGMENTS, BODIES),
    Route("GET", "/v1/objects", st.just(""), BODIES),
    Route("POST", "/v1/schedules", st.just(""), st.one_of(SCHEDULE_SPECS.map(json.dumps), BODIES)),
    Route("GET", "/v1/schedules", st.just(""), BODIES),
    Route("GET", "/v1/schedules/{}", st.one_of(st.just("nightly"), SEGMENTS), BODIES),
    Route(
        "PUT",
        "/v1/schedules/{}",
        st.one_of(st.just("nightly"), SEGMENTS),
        st.one_of(SCHEDULE_SPECS.map(json.dumps), BODIES),
    ),
    Route("DELETE", "/v1/schedules/{}", st.one_of(st.just("nightly"), SEGMENTS), BODIES),
    Route(
        "POST",
        "/v1/webhooks/{}",
        st.one_of(
            st.sampled_from(["github-push", "payments", "payments-raw", "paused-hook"]), SEGMENTS
        ),
        st.one_of(WEBHOOK_PAYLOADS.map(json.dumps), BODIES),
    ),
    Route(
        "POST", "/v1/routes/test", st.just(""), st.one_of(DRY_RUN_REQUESTS.map(json.dumps), BODIES)
    ),
    Route("GET", "/v1/health", st.just(""), BODIES),
    Route("GET", "/v1/openapi.json", st.just(""), BODIES),
]
QUERY_NAMES = [
    "dag_id",
    "environment",
    "source",
    "status",
    "since",
    "until",
    "limit",
    "cursor",
    "bucket",
    "key",
    # not next_token: moto refuses a token it did not issue with "InvalidToken", a code AWS's
    # Scheduler does not have (it documents ValidationException, which is answered 422)
    "name_prefix",
    "state",
    "unknown",
]
QUERIES = st.dictionaries(
    st.sampled_from(QUERY_NAMES),
    st.one_of(
        TEXT,
        st.integers().map(str),
        st.sampled_from(["landing", "FAILED", "ENABLED", "0", "201", "-1", "1e3"]),
        st.datetimes(timezones=OFFSETS).map(lambda moment: moment.isoformat()),
    ),
    max_size=5,
)
HEADER_VALUES = st.one_of(TEXT.filter(lambda value: "\x00" not in value), st.text(max_size=300))
HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "content-type",
            "idempotency-key",
            "x-hub-signature-256",
            "x-github-event",
            "x-github-delivery",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "content-length",
            "authorization",
        ]
    ),
    st.one_of(
        st.sampled_from(
            [
                "application/json",
                "Application/JSON; charset=utf-8",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "multipart/form-data",
            ]
        ),
        HEADER_VALUES,
    ),
    max_size=4,
)


@st.composite
def api_events(draw: st.DrawFn) -> dict[str, Any]:
    """One HTTP API event: a route (or a method or path no route has), body, headers, query."""
    route = draw(st.sampled_from(ROUTES))
    segment = quote(draw(route.parameter).encode("utf-8", "surrogatepass"), safe="")
    path = route.template.replace("{}", segment)
    method = draw(st.one_of(st.just(route.method), st.sampled_from(["GET", "POST", "PATCH"])))
    if draw(st.integers(0, 9)) == 0:
        path = draw(st.sampled_from(["/", "/v1", "/v2/dags/x/runs", "/v1/triggers/"])) + segment
    body = draw(route.bodies)
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    headers = draw(HEADERS)
    if data is not None and route.template == "/v1/webhooks/{}" and draw(st.booleans()):
        headers = {**headers, **signed_webhook_headers(draw, data)}
    # API Gateway base64-encodes a body that is not valid UTF-8; any body may arrive so
    base64_body = not _is_utf8(data) or draw(st.booleans())
    return http_api_event(
        method,
        path,
        body=data,
        headers=headers,
        query=draw(QUERIES),
        base64_body=base64_body,
        caller_arn=draw(st.sampled_from([CALLER_ARN, None])),  # None: not IAM-signed
    )


def signed_webhook_headers(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """Authentic signatures, so the payload is parsed and routed, not refused at the door."""
    delivery_id = draw(st.one_of(st.none(), st.text(min_size=1, max_size=40)))
    if draw(st.booleans()):
        headers = sign_github(body, secret=GITHUB_SECRET, delivery_id=delivery_id)
        return {**headers, "X-GitHub-Event": draw(st.sampled_from(["push", "ping", "é"]))}
    return sign_standard_webhooks(
        body,
        secrets=[STANDARD_SECRET],
        msg_id=draw(st.text(alphabet="abcdefghijklmnop_0123456789", min_size=1, max_size=30)),
        timestamp=int(time.time()) + draw(st.integers(-1000, 1000)),
    )


def _is_utf8(data: bytes | None) -> bool:
    if data is None:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------- what must hold


def assert_never_a_server_error(answer: HttpAnswer, event: dict[str, Any]) -> None:
    request_line = f"{event['requestContext']['http']['method']} {event['rawPath']}"
    assert answer.status < 500, f"{request_line} answered {answer.status}: {answer.text[:500]}"
    if answer.status < 400:
        return
    assert answer.content_type == PROBLEM_CONTENT_TYPE, request_line
    problem = json.loads(answer.text)
    assert problem["status"] == answer.status
    assert problem["code"] in set(ProblemCode)
    assert isinstance(problem["detail"], str)
    assert problem["detail"].strip(), f"{request_line}: a refusal must say what was wrong"


@ONE_API_PER_TEST
@given(event=api_events())
def test_no_request_gets_a_server_error(
    api: ApiClient,  # noqa: F811
    event: dict[str, Any],
) -> None:
    # Given any request to any route, or to no route
    # When the API answers it
    answer = api.send(event)

    # Then it is never a 5xx, and a refusal is problem+json that says what was wrong
    assert_never_a_server_error(answer, event)


@ONE_API_PER_TEST
@given(document=DAG_RUN_REQUESTS, idempotency_key=st.one_of(st.none(), HEADER_VALUES))
def test_any_dag_run_request_is_started_or_refused_with_a_reason(
    api: ApiClient,  # noqa: F811
    document: dict[str, Any],
    idempotency_key: str | None,
) -> None:
    # Given a request shaped like a DAG run request, every field any value
    headers = {"content-type": "application/json"}
    if idempotency_key is not None:
        headers["idempotency-key"] = idempotency_key
    event = http_api_event(
        "POST",
        "/v1/dags/ingest_sales/runs",
        body=json.dumps(document).encode("utf-8", "surrogatepass"),
        headers=headers,
    )

    # When it is sent
    answer = api.send(event)

    # Then it is accepted (202) or refused with a 4xx problem that says why
    assert_never_a_server_error(answer, event)
    assert answer.status in {202, 400, 404, 409, 413, 422}, answer.text


@ONE_API_PER_TEST
@given(document=DRY_RUN_REQUESTS)
def test_any_dry_run_request_is_answered_or_refused_with_a_reason(
    api: ApiClient,  # noqa: F811
    transport: Any,  # noqa: F811
    document: Any,
) -> None:
    # Given a request shaped like a dry run, every field any value (a routes document too)
    event = http_api_event(
        "POST",
        "/v1/routes/test",
        body=json.dumps(document).encode("utf-8", "surrogatepass"),
        headers={"content-type": "application/json"},
    )

    # When it is sent
    answer = api.send(event)

    # Then it is answered (200) or refused with a 4xx problem that says why, and starts nothing
    assert_never_a_server_error(answer, event)
    assert answer.status in {200, 400, 413, 422}, answer.text
    assert transport.calls == []


# ------------------------------------------------------ what the fuzzing found, kept as examples

DEEP = 5000


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "detail"),
    [
        (
            "/v1/dags/ingest_sales/runs",
            b'{"conf": {}}',
            {"content-type": "text/plain"},
            415,
            "request bodies must be JSON, sent as Content-Type: application/json, not 'text/plain'",
        ),
        (
            "/v1/schedules",
            b"name=nightly",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "request bodies must be JSON",
        ),
        (
            "/v1/dags/ingest_sales/runs",
            b"\xef\xbb\xbf\xff",
            {"content-type": "multipart/form-data"},  # no boundary: Powertools cannot split it
            415,
            "request bodies must be JSON",
        ),
        (
            "/v1/dags/ingest_sales/runs",
            b"",
            {"content-type": "multipart/form-data"},  # found by make reliability: an empty one
            415,
            "request bodies must be JSON",
        ),
        (
            "/v1/dags/ingest_sales/runs",
            b'{"conf": {"day": "\xff"}}',
            {"content-type": "application/json"},
            400,
            "the request body is not UTF-8 text, so it cannot be JSON",
        ),
        (
            "/v1/dags/ingest_sales/runs",
            ("[" * DEEP + "]" * DEEP).encode(),
            {},
            400,
            "the request body is not valid JSON: it nests arrays and objects deeper than 64 levels",
        ),
        (
            "/v1/dags/ingest_sales/runs",
            ('{"conf":' + '{"a":' * 300 + "1" + "}" * 300 + "}").encode(),
            {"content-type": "application/json"},
            400,
            "the request body is not valid JSON: it nests arrays and objects deeper than 64 levels",
        ),
        (
            "/v1/schedules",
            ('{"conf": {"n": ' + "9" * 5000 + "}}").encode(),
            {"content-type": "application/json"},
            400,
            "the request body is not valid JSON: a value cannot be read: Exceeds the limit",
        ),
        (
            "/v1/dags/ingest_sales/runs",
            b'{"conf": {}',
            {"content-type": "application/json"},
            400,
            "the request body is not valid JSON: Expecting ',' delimiter (at character 11)",
        ),
    ],
    ids=[
        "text-plain",
        "form",
        "multipart-without-boundary",
        "empty-multipart-without-boundary",
        "not-utf8",
        "deep-list",
        "deep-conf",
        "huge-integer",
        "truncated",
    ],
)
def test_an_unreadable_body_is_a_4xx_that_says_why(
    api: ApiClient,  # noqa: F811
    transport: Any,  # noqa: F811
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    detail: str,
) -> None:
    # Given a body the API cannot read as JSON (each of these was a 500)
    event = http_api_event("POST", path, body=body, headers=headers, base64_body=True)

    # When it is sent, then it is refused with a problem that says what was wrong
    answer = api.send(event)
    assert_never_a_server_error(answer, event)
    assert answer.status == status
    assert json.loads(answer.text)["detail"].startswith(detail)
    assert transport.calls == []


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (
            '{"ref":' + "[" * DEEP + "]" * DEEP + "}",
            "the body is not valid JSON: it nests arrays and objects too deeply to read",
        ),
        (
            '{"ref": "refs/heads/main", "after": ' + "9" * 5000 + "}",
            "the body is not valid JSON: it holds a number too long to read",
        ),
    ],
    ids=["deep", "huge-integer"],
)
def test_a_signed_webhook_body_too_deep_or_too_long_to_read_is_a_400(
    api: ApiClient,  # noqa: F811
    transport: Any,  # noqa: F811
    payload: str,
    detail: str,
) -> None:
    # Given an authentic GitHub delivery whose JSON Python cannot read (each was a 500)
    body = payload.encode()
    headers = {
        **sign_github(body, secret=GITHUB_SECRET, delivery_id="d-1"),
        "X-GitHub-Event": "push",
    }

    # When it is delivered, then it is refused as malformed, and nothing runs
    answer = api.request(
        "POST", "/v1/webhooks/github-push", body=body, headers=headers, caller_arn=None
    )
    assert answer.status == 400, answer.text
    assert json.loads(answer.text)["detail"] == detail
    assert transport.calls == []


#: an offset pushes these out of the years a datetime can hold once they are read in UTC
DATES_WITHOUT_UTC = ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"]


SCHEDULE = {"name": "n", "expression": "rate(5 minutes)", "route": "nightly"}


@pytest.mark.parametrize("moment", DATES_WITHOUT_UTC)
@pytest.mark.parametrize(
    ("method", "path", "location", "document"),
    [
        ("POST", "/v1/dags/ingest_sales/runs", ("body", "logical_date"), {"conf": {}}),
        ("GET", "/v1/triggers", ("query", "until"), None),
        ("GET", "/v1/triggers", ("query", "since"), None),
        ("POST", "/v1/schedules", ("body", "start_date"), SCHEDULE),
        ("POST", "/v1/schedules", ("body", "end_date"), SCHEDULE),
    ],
    ids=["logical_date", "until", "since", "schedule-start_date", "schedule-end_date"],
)
def test_a_date_with_no_time_in_utc_is_a_422_naming_the_field(
    api: ApiClient,  # noqa: F811
    method: str,
    path: str,
    location: tuple[str, str],
    document: dict[str, Any] | None,
    moment: str,
) -> None:
    # Given a date whose offset takes it out of range in UTC (each of these answered 500)
    where, field = location
    body = json.dumps({**document, field: moment}) if document is not None else None
    query = {field: moment} if where == "query" else None
    event = http_api_event(
        method, path, body=body, headers={"content-type": "application/json"}, query=query
    )

    # When it is sent, then it is refused, saying which field and why
    answer = api.send(event)
    assert_never_a_server_error(answer, event)
    assert answer.status == 422, answer.text
    (error,) = json.loads(answer.text)["errors"]
    assert error["loc"] == [where, field]
    assert "has no time in UTC: it falls outside years 1 to 9999" in error["msg"]
