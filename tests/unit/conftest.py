"""Unit fixtures: a moto history table, a routes file, a recording transport, and builders of
S3 events and small routes files."""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import AccessRefusedError, RejectedError, TransientTriggerError
from dagtrigger.ledger import TriggerLedger
from dagtrigger.ledger.file_sets import FileSetLedger
from dagtrigger.ledger.schema import create_table
from dagtrigger.routes import RoutesFile, parse_routes
from dagtrigger.routes.loader import RoutesLoader
from dagtrigger.settings import Settings
from dagtrigger.sources.s3.parse import S3ObjectEvent
from dagtrigger.transports.airflow_api import AirflowApiTransport, ApiReply
from dagtrigger.transports.base import (
    STARTED_RUN_STATES,
    EnvironmentRef,
    FailedTasks,
    RunStates,
    TransportKind,
    TriggerRequest,
    TriggerResult,
)
from dagtrigger.transports.ratelimit import RateLimiter

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events" / "s3_events"
_tables = itertools.count(1)

ROUTES_YAML = """\
version: 1
environments:
  prod:
    name: analytics-prod
    transport: invoke_rest_api
    airflow_major: 3
s3:
  - name: sales-csv
    buckets: [landing]
    prefix: sales/
    suffix: .csv
    environment: prod
    dag_id: ingest_sales
    conf:
      bucket: "{{ bucket }}"
      key: "{{ key }}"
      size: "{{ size }}"
      version_id: "{{ version_id }}"
  - name: archive-everything
    buckets: [archive]
    environment: prod
    dag_id: archive_objects
    paused: true
  - name: bad-conf
    buckets: [landing]
    prefix: broken/
    environment: prod
    dag_id: never_runs
    conf_template: '{% if bucket %}["not", "an", "object"]{% endif %}'
"""


@dataclass
class RecordingTransport:
    """Stands in for Airflow: records each trigger and answers with what the test scripts."""

    answers: list[Callable[[TriggerRequest], TriggerResult]] = field(default_factory=list)
    calls: list[TriggerRequest] = field(default_factory=list)
    run_states: dict[str, str] = field(default_factory=dict)  # dag_run_id -> Airflow state
    state_lookups: list[tuple[str, datetime | None]] = field(default_factory=list)
    #: (dag_id, started_since) of each list read, in order
    list_reads: list[tuple[str, datetime]] = field(default_factory=list)
    #: raised by the next list reads instead of answering (one per read)
    list_failures: list[Exception] = field(default_factory=list)
    #: dag_run_id -> its failed tasks, or the error reading them raises
    failed_tasks: dict[str, FailedTasks | Exception] = field(default_factory=dict)
    failed_task_reads: list[str] = field(default_factory=list)
    #: dag_id -> paused (absent: the transport cannot tell)
    paused: dict[str, bool] = field(default_factory=dict)
    paused_reads: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trigger(self, request: TriggerRequest) -> TriggerResult:
        with self.lock:
            self.calls.append(request)
            answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            return answer(request)
        return TriggerResult(dag_run_id=request.dag_run_id, logical_date=None, state="queued")

    def get_dag_run_state(
        self, dag_id: str, dag_run_id: str, *, triggered_after: datetime | None = None
    ) -> str | None:
        self.state_lookups.append((dag_run_id, triggered_after))
        state = self.run_states.get(dag_run_id)
        if state == "unreachable":
            raise TransientTriggerError("Airflow answered 503 Service Unavailable", http_status=503)
        return state

    def started_run_states(self, dag_id: str, *, started_since: datetime) -> RunStates:
        self.list_reads.append((dag_id, started_since))
        if self.list_failures:
            raise self.list_failures.pop(0)
        started = {
            run_id: state
            for run_id, state in self.run_states.items()
            if state in STARTED_RUN_STATES
        }
        return RunStates(started)

    def failed_task_ids(self, dag_id: str, dag_run_id: str) -> FailedTasks:
        self.failed_task_reads.append(dag_run_id)
        answer = self.failed_tasks.get(dag_run_id, FailedTasks())
        if isinstance(answer, Exception):
            raise answer
        return answer

    def dag_paused(self, dag_id: str) -> bool | None:
        self.paused_reads.append(dag_id)
        return self.paused.get(dag_id)


ASSET_ENVIRONMENT = EnvironmentRef(alias="prod", name="prod", transport=TransportKind.AIRFLOW_REST)


class AssetAirflow(AirflowApiTransport):
    """Assets by id and their events, behind Airflow 3's or Airflow 2's endpoints; like Airflow
    with the Amazon provider, it stores an S3 URI without its trailing slash."""

    max_path_length = None

    def __init__(self, major: int, uris: list[str]) -> None:
        super().__init__(ASSET_ENVIRONMENT)
        self.major = major
        self.assets = {index + 1: uri.rstrip("/") for index, uri in enumerate(uris)}
        self.events: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []
        self.fail_next_post: ApiReply | None = None
        #: called once an event is stored, before Airflow answers: a failure raised here is an
        #: answer lost after Airflow recorded the event (a timeout, a killed function)
        self.after_create: Callable[[], None] | None = None

    def airflow_major(self) -> int:
        return self.major

    def call(
        self, method: str, path: str, *, body: Mapping[str, Any] | None, query: Any
    ) -> ApiReply:
        self.calls.append((method, path))
        noun = "assets" if self.major >= 3 else "datasets"
        if (method, path) == ("GET", f"/{noun}"):
            pattern = query["uri_pattern"]
            matching = [
                {"id": asset_id, "uri": uri, "name": uri + "/"}
                for asset_id, uri in self.assets.items()
                if pattern in uri
            ]
            start = query.get("offset", 0)
            return ApiReply(200, {noun: matching[start : start + query["limit"]]})
        if (method, path) == ("POST", f"/{noun}/events"):
            assert body is not None
            if self.fail_next_post is not None:
                reply, self.fail_next_post = self.fail_next_post, None
                return reply
            return self._create(body)
        if (method, path) == ("GET", f"/{noun}/events"):
            key = "asset_id" if self.major >= 3 else "dataset_id"
            assert query["order_by"] == "-timestamp"
            listed = [event for event in reversed(self.events) if event[key] == query[key]]
            return ApiReply(200, {f"{noun[:-1]}_events": listed[: query["limit"]]})
        return ApiReply(404, {"detail": f"no route {method} {path}"})

    def _create(self, body: Mapping[str, Any]) -> ApiReply:
        if self.major >= 3:
            asset_id = body["asset_id"]
            if asset_id not in self.assets:
                return ApiReply(404, {"detail": f"Asset with ID: `{asset_id}` was not found"})
        else:
            found = [key for key, uri in self.assets.items() if uri == body["dataset_uri"]]
            if not found:
                return ApiReply(404, {"title": "Dataset not found"})
            asset_id = found[0]
        key = "asset_id" if self.major >= 3 else "dataset_id"
        event = {
            "id": len(self.events) + 1,
            key: asset_id,
            "extra": {**body["extra"], "from_rest_api": True},
            "timestamp": f"2026-12-02T10:00:0{len(self.events)}Z",
            "created_dagruns": [],
        }
        self.events.append(event)
        if self.after_create is not None:
            self.after_create()
        return ApiReply(200, event)


@dataclass
class RecordingEventBus:
    """Stands in for EventBridge: keeps each PutEvents entry; ``answers`` script the next calls
    (an exception to raise, or a reply such as a partial failure)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    answers: list[BaseException | dict[str, Any]] = field(default_factory=list)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, BaseException):
            raise answer
        if answer is not None:
            return answer
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": f"e-{len(self.entries)}"}]}

    def details(self) -> list[dict[str, Any]]:
        return [json.loads(entry["Detail"]) for entry in self.entries]


@dataclass
class RecordingTopic:
    """Stands in for SNS: keeps each Publish; ``failures`` are raised by the next calls."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def publish(self, **message: Any) -> dict[str, Any]:
        if self.failures:
            raise self.failures.pop(0)
        self.messages.append(message)
        return {"MessageId": f"m-{len(self.messages)}"}


def already_exists(request: TriggerRequest) -> TriggerResult:
    return TriggerResult(
        dag_run_id=request.dag_run_id, logical_date=None, state="running", already_existed=True
    )


def server_error(request: TriggerRequest) -> TriggerResult:
    raise TransientTriggerError("Airflow answered 503 Service Unavailable", http_status=503)


def throttled(request: TriggerRequest) -> TriggerResult:
    raise TransientTriggerError("ThrottlingException: Rate exceeded", http_status=429)


def dag_not_found(request: TriggerRequest) -> TriggerResult:
    raise RejectedError(
        "dag_not_found", f"The Dag with ID: `{request.dag_id}` was not found", http_status=404
    )


@pytest.fixture(autouse=True)
def _no_local_stack_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests talk to moto in-process only, never to a server an endpoint variable names."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name)


class FunctionKilled(BaseException):
    """The function's process ended mid-invocation (a timeout, out of memory, a crash)."""


def access_refused(request: TriggerRequest) -> TriggerResult:
    raise AccessRefusedError(
        "mwaa_access_denied",
        "MWAA InvokeRestApi on environment 'analytics-prod' failed: AccessDeniedException: "
        "User is not authorized to perform: airflow:InvokeRestApi",
        http_status=403,
    )


def killed(request: TriggerRequest) -> TriggerResult:
    raise FunctionKilled(f"killed while triggering {request.dag_run_id}")


class Answers:
    """Scripted Airflow answers for ``RecordingTransport.answers``."""

    already_exists = staticmethod(already_exists)
    killed = staticmethod(killed)
    access_refused = staticmethod(access_refused)
    server_error = staticmethod(server_error)
    throttled = staticmethod(throttled)
    dag_not_found = staticmethod(dag_not_found)


@pytest.fixture
def answers() -> type[Answers]:
    return Answers


@pytest.fixture
def events_dir() -> Path:
    return EVENTS


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serialise moto requests: real DynamoDB serialises writes to one item, moto does not."""
    lock = threading.Lock()
    process_request = BotocoreStubber.process_request

    def serialised(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return process_request(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", serialised)


@pytest.fixture
def table(dynamodb: Any) -> Iterator[Any]:
    name = f"dagtrigger-s3-test-{next(_tables)}"
    create_table(dynamodb, name)
    yield boto3.resource("dynamodb", region_name="us-east-1").Table(name)
    dynamodb.delete_table(TableName=name)


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def event_bus() -> RecordingEventBus:
    return RecordingEventBus()


@pytest.fixture
def failure_topic() -> RecordingTopic:
    return RecordingTopic()


@pytest.fixture
def routes_yaml() -> str:
    """The routes file's text; test folders override this fixture with their own routes."""
    return ROUTES_YAML


@pytest.fixture
def routes_file(tmp_path: Path, routes_yaml: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(routes_yaml, encoding="utf-8")
    return path


@pytest.fixture
def make_deps(
    table: Any,
    transport: RecordingTransport,
    routes_file: Path,
    event_bus: RecordingEventBus,
    failure_topic: RecordingTopic,
) -> Callable[..., Dependencies]:
    def factory(
        *, clock: Callable[[], datetime] | None = None, **settings_overrides: Any
    ) -> Dependencies:
        """Dependencies over the moto table; ``clock`` fixes the ledger's and services' time."""
        settings = Settings(
            **{
                "table_name": table.name,
                "routes_location": f"file:{routes_file}",
                "trigger_budget_seconds": 0.5,
                **settings_overrides,
            }
        )
        timed = {"clock": clock} if clock is not None else {}
        return Dependencies(
            settings=settings,
            ledger=TriggerLedger(table, **timed),
            file_sets=FileSetLedger(table, sleep=lambda seconds: None, **timed),
            s3_client=lambda: boto3.client("s3", region_name="us-east-1"),
            routes=RoutesLoader(settings.routes_location, cache_seconds=60),
            transport_for=lambda environment: transport,
            limiter=RateLimiter(rate_per_second=1000),
            events_client=lambda: event_bus,
            sns_client=lambda: failure_topic,
            **timed,
        )

    return factory


@pytest.fixture
def deps(make_deps: Callable[..., Dependencies]) -> Dependencies:
    return make_deps()


# --- builders of S3 events and routes files -------------------------------------------------

EnvironmentBlock = dict[str, Any]

DEFAULT_ENVIRONMENTS: dict[str, EnvironmentBlock] = {
    "prod": {"name": "my-mwaa-env", "transport": "invoke_rest_api"},
}


def s3_event(
    key: str = "sales/2026-11-21.csv",
    *,
    bucket: str = "landing",
    size: int | None = 1234,
    version_id: str | None = "v1",
) -> S3ObjectEvent:
    return S3ObjectEvent(
        bucket=bucket,
        key=key,
        size=size,
        etag="d41d8cd98f00b204e9800998ecf8427e",
        version_id=version_id,
        sequencer="0062E99A88DC407460",
        event_time=datetime(2026, 11, 21, 10, 15, tzinfo=UTC),
        region="us-east-1",
        event_name="ObjectCreated:Put",
        source_format="eventbridge",
    )


def build_routes_yaml(
    *s3_routes: dict[str, Any], environments: dict[str, Any] | None = None
) -> str:
    document = {
        "version": 1,
        "environments": environments if environments is not None else DEFAULT_ENVIRONMENTS,
        "s3": list(s3_routes),
    }
    return yaml.safe_dump(document, sort_keys=False)


def s3_route(name: str = "sales-csv", **fields: Any) -> dict[str, Any]:
    route: dict[str, Any] = {
        "name": name,
        "buckets": ["landing"],
        "environment": "prod",
        "dag_id": "ingest_sales",
    }
    route.update(fields)
    return route


@pytest.fixture
def build_routes() -> Callable[..., RoutesFile]:
    def build(*s3_routes: dict[str, Any]) -> RoutesFile:
        return parse_routes(build_routes_yaml(*s3_routes), source="test")

    return build


@pytest.fixture
def make_event() -> Callable[..., S3ObjectEvent]:
    return s3_event


@pytest.fixture
def make_route() -> Callable[..., dict[str, Any]]:
    return s3_route


@pytest.fixture
def make_routes_yaml() -> Callable[..., str]:
    return build_routes_yaml
