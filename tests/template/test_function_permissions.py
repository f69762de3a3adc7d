"""Each function's role allows every AWS call its code makes: the handlers run on moto with the
environment the template gives them, every call is recorded, and each one is put to the role's
policies as IAM would (action, resource, dynamodb:LeadingKeys, iam:PassedToService).

The template tests state what each role allows; this one shows that what the code does, through
its real handler, composition root and transport (MWAA InvokeRestApi answered by a fake Airflow,
the shared rate budget and the retry backoff included), stays inside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from dagtrigger.dependencies import reset_instance_state
from dagtrigger.ids import trigger_id
from dagtrigger.ledger import NewTrigger, TriggerLedger
from dagtrigger.ledger.records import SourceType
from dagtrigger.ledger.schema import create_table
from dagtrigger.sources.s3.backfill import backfill_event
from dagtrigger.transports.airflow_api import BATCH_RUN_LIST_PATH, BATCH_TASK_INSTANCE_LIST_PATH
from tests.template.test_template_rules import (
    ACCOUNT,
    REGION,
    TABLE,
    Call,
    ResolvedStack,
    allows,
    deployed_value,
    function_statements,
    function_variables,
    stack,
)
from tests.unit.http.conftest import http_api_event

pytestmark = pytest.mark.template

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT = "analytics-prod"
ROUTES_PARAMETER = "/dagtrigger/routes"
WEBHOOK_SECRET_NAME = "dagtrigger/webhooks/github"
WEBHOOK_SECRET = "It's a Secret to Everybody"
#: Secrets Manager appends "-" and 6 random characters to a secret's name in its ARN
SECRET_SUFFIX = "-AbCdEf"
CALLER_ARN = f"arn:aws:iam::{ACCOUNT}:user/data-engineer"
#: IAM's service prefix of each boto3 service id, for the services the code calls
IAM_PREFIXES = {
    "dynamodb": "dynamodb",
    "sqs": "sqs",
    "scheduler": "scheduler",
    "secrets-manager": "secretsmanager",
    "ssm": "ssm",
    "s3": "s3",
    "mwaa": "airflow",
    "eventbridge": "events",
    "sns": "sns",
}
#: batch APIs authorised by the single call's action
BATCH_ACTIONS = {
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "s3:ListObjectsV2": "s3:ListBucket",  # IAM has no action of its own for the v2 listing
}
#: where the stack lets file sets write their manifests (SetManifestLocation)
MANIFESTS = "s3://dagtrigger-manifests/sets/"

ROUTES_YAML = f"""\
version: 1
environments:
  prod:
    name: {ENVIRONMENT}
    transport: invoke_rest_api
s3:
  - name: sales-csv
    buckets: [landing]
    prefix: sales/
    environment: prod
    dag_id: ingest_sales
  - name: refused
    buckets: [landing]
    prefix: refused/
    environment: prod
    dag_id: refused_dag
  - name: exports
    buckets: [landing]
    prefix: exports/
    suffix: .parquet
    environment: prod
    dag_id: load_export
    set:
      group: "{{{{ dirname }}}}"
      marker: _SUCCESS
      manifest: {MANIFESTS}daily/
webhooks:
  - name: github-push
    scheme: github
    secret: {WEBHOOK_SECRET_NAME}
    environment: prod
    dag_id: build_docs
schedules:
  - name: nightly-sales
    environment: prod
    dag_id: nightly_report
"""


# --- what the code calls, as IAM sees it -----------------------------------------------------


@dataclass
class Recorder:
    """Every call made through a boto3 client, as the (function, API call) it came from."""

    function_id: str | None = None
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".")
        if self.function_id is not None:
            with self.lock:
                self.calls.append((self.function_id, f"{service}.{operation}", dict(params)))

    def of(self, function_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(call, params) for owner, call, params in self.calls if owner == function_id]


def _partition_value(condition: Any, attribute: str) -> str:
    """The value a Query's key condition gives the partition attribute (boto3's Key objects)."""
    expression = condition.get_expression()
    if expression["operator"] == "=":
        key, value = expression["values"]
        if getattr(key, "name", None) == attribute:
            return str(value)
    for part in expression["values"]:
        if hasattr(part, "get_expression"):
            try:
                return _partition_value(part, attribute)
            except LookupError:
                continue
    raise LookupError(f"no partition value for {attribute} in {expression}")


class IamView:
    """Turns a recorded API call into the IAM requests it makes, in the template's terms."""

    def __init__(self, resolved: ResolvedStack) -> None:
        self._resolved = resolved
        self._table_name = deployed_value(resolved, "<TriggerHistoryTable>")
        queue = resolved.resources("AWS::SQS::Queue")["S3EventsQueue"]["Properties"]
        self._queues = {queue["QueueName"]: "<S3EventsQueue.Arn>"}
        self._group = deployed_value(resolved, "<ScheduleGroup>")
        self._scheduler_role = deployed_value(resolved, "<SchedulerInvokeRole.Arn>")
        self._index_keys = {
            "by_dag": "dag_key",
            "by_source": "source_key",
            "by_status": "status",
            "by_day": "created_day",
            "by_pending_event": "pending_event",
            "by_set": "set_id",
        }

    def requests(self, call: str, params: dict[str, Any]) -> list[Call]:
        service, operation = call.split(".")
        action = f"{IAM_PREFIXES[service]}:{operation}"
        action = BATCH_ACTIONS.get(action, action)
        handler = getattr(self, f"_{IAM_PREFIXES[service]}")
        return handler(action, operation, params)

    def _dynamodb(self, action: str, operation: str, params: dict[str, Any]) -> list[Call]:
        if operation == "TransactWriteItems":
            return self._transaction(params)
        if operation == "BatchGetItem":  # one request, IAM checks every key's partition
            ((table, request),) = params["RequestItems"].items()
            assert table == self._table_name, table
            keys = tuple(str(key["pk"]) for key in request["Keys"])
            return [Call(action, TABLE, (("dynamodb:LeadingKeys", keys),))]
        assert params["TableName"] == self._table_name, params["TableName"]
        if operation == "Query":
            index = params["IndexName"]
            partition = _partition_value(params["KeyConditionExpression"], self._index_keys[index])
            return [
                Call(action, f"{TABLE}/index/{index}", (("dynamodb:LeadingKeys", (partition,)),))
            ]
        key = (params.get("Item") or params.get("Key"))["pk"]
        return [Call(action, TABLE, (("dynamodb:LeadingKeys", (str(key),)),))]

    def _transaction(self, params: dict[str, Any]) -> list[Call]:
        """A transaction asks IAM for each of its writes (PutItem, UpdateItem ...)."""
        actions = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
        actions["ConditionCheck"] = "ConditionCheckItem"
        return [
            call
            for item in params["TransactItems"]
            for kind, write in item.items()
            for call in self._dynamodb(f"dynamodb:{actions[kind]}", actions[kind], write)
        ]

    def _sqs(self, action: str, operation: str, params: dict[str, Any]) -> list[Call]:
        name = (
            params["QueueName"]
            if operation == "GetQueueUrl"
            else params["QueueUrl"].rsplit("/", 1)[1]
        )
        return [Call(action, self._queues.get(name, f"unknown queue {name}"))]

    def _scheduler(self, action: str, operation: str, params: dict[str, Any]) -> list[Call]:
        if operation == "ListSchedules":
            return [Call(action, "*")]
        group = (
            "<ScheduleGroup>" if params.get("GroupName") == self._group else params.get("GroupName")
        )
        requests = [
            Call(action, f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{params['Name']}")
        ]
        role = params.get("Target", {}).get("RoleArn")
        if role is not None:  # Scheduler is handed a role: IAM asks for iam:PassRole on it
            passed = "<SchedulerInvokeRole.Arn>" if role == self._scheduler_role else role
            requests.append(
                Call(
                    "iam:PassRole", passed, (("iam:PassedToService", ("scheduler.amazonaws.com",)),)
                )
            )
        return requests

    def _secretsmanager(self, action: str, operation: str, params: dict[str, Any]) -> list[Call]:
        secret = params["SecretId"]
        if not secret.startswith("arn:"):
            secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}{SECRET_SUFFIX}"
        return [Call(action, secret)]

    def _ssm(self, action: str, operation: str, params: dict[str, Any]) -> list[Call]:
        return [Call(action, f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{params['Name']}")]

    def _s3(self, action: str, operation: str, params: dict[str, Any]) -> list[Call]:
        if action == "s3:ListBucket":
            return [Call(action, f"arn:aws:s3:::{params['Bucket']}")]
        return [Call(action, f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]

    def _events(self, action: str, operation: str, params: dict[str, Any]) -> list[Call]:
        buses = {entry.get("EventBusName", "default") for entry in params["Entries"]}
        return [Call(action, f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}") for bus in buses]

    def _sns(self, action: str, operation: str, params: dict[str, Any]) -> list[Call]:
        return [Call(action, params["TopicArn"])]

    def _airflow(self, action: str, operation: str, params: dict[str, Any]) -> list[Call]:
        base = f"arn:aws:airflow:{REGION}:{ACCOUNT}"
        if operation == "InvokeRestApi":  # authorised on the Airflow role the caller acts as
            return [Call(action, f"{base}:role/{params['Name']}/User")]
        return [Call(action, f"{base}:environment/{params['Name']}")]


# --- a fake Airflow behind MWAA InvokeRestApi -------------------------------------------------


@dataclass
class FakeAirflow:
    """Answers MWAA's GetEnvironment and InvokeRestApi as Airflow 3 behind MWAA does; DAG
    ``refused_dag`` answers AccessDenied, as MWAA does to a role without permission. Runs of
    the ``failing_dags`` fail in their task ``load``; every other run succeeds."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failing_dags: set[str] = field(default_factory=set)

    def keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["fake_airflow_params"] = dict(params)

    def answer(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict]:
        params = context["fake_airflow_params"]
        if model.name == "GetEnvironment":
            return _ok({"Environment": {"Name": params["Name"], "AirflowVersion": "3.0.6"}})
        assert model.name == "InvokeRestApi", model.name
        method, path, body = params["Method"], params["Path"], params.get("Body") or {}
        if path.startswith("/dags/refused_dag"):
            return _error(403, "AccessDeniedException", "not authorized to invoke the REST API")
        if method == "POST" and path == BATCH_TASK_INSTANCE_LIST_PATH:
            failed = [
                {
                    "dag_id": run["dag_id"],
                    "dag_run_id": run_id,
                    "task_id": "load",
                    "state": "failed",
                }
                for run_id, run in self.runs.items()
                if run_id in body.get("dag_run_ids", []) and run["state"] == "failed"
            ]
            return _airflow(200, {"task_instances": failed, "total_entries": len(failed)})
        if method == "POST" and path == BATCH_RUN_LIST_PATH:
            runs = [run for run in self.runs.values() if run["dag_id"] in body.get("dag_ids", [])]
            return _airflow(200, {"dag_runs": runs, "total_entries": len(runs)})
        if method == "POST" and re.fullmatch(r"/dags/[^/]+/dagRuns", path):
            run = {
                "dag_id": path.split("/")[2],
                "dag_run_id": body["dag_run_id"],
                "logical_date": body.get("logical_date"),
                "state": "failed" if path.split("/")[2] in self.failing_dags else "success",
                "conf": body.get("conf"),
            }
            self.runs[run["dag_run_id"]] = run
            return _airflow(200, run)
        if method == "GET" and re.fullmatch(r"/dags/[^/]+", path):
            return _airflow(200, {"dag_id": path.split("/")[2], "is_paused": False})
        match = re.fullmatch(r"/dags/[^/]+/dagRuns/([^/]+)", path)
        if method == "GET" and match:
            run = self.runs.get(match[1])
            return _airflow(200, run) if run else _airflow(404, {"title": "DAG Run not found"})
        raise AssertionError(f"the fake Airflow has no answer to {method} {path}")


def _ok(parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse("https://mwaa.invalid", 200, {}, None), parsed


def _airflow(status: int, body: Any) -> tuple[AWSResponse, dict[str, Any]]:
    return _ok({"RestApiStatusCode": status, "RestApiResponse": body})


def _error(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}
    return AWSResponse("https://mwaa.invalid", status, {}, None), parsed


# --- the stack on moto, and the handlers run as Lambda runs them ------------------------------


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = "4a1f1c0e-2d7b-4f6e-9b1a-3c5d7e9f1a2b"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Stack:
    resolved: ResolvedStack
    recorder: Recorder
    airflow: FakeAirflow
    monkeypatch: pytest.MonkeyPatch
    queue_url: str

    def environment_of(self, function_id: str) -> None:
        """The function's variables as the template deploys them (a cold start)."""
        shared, own = function_variables(self.resolved, function_id)
        for name, value in {**shared, **own}.items():
            self.monkeypatch.setenv(name, deployed_value(self.resolved, value))
        self.monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", function_id)
        reset_instance_state()
        self.recorder.function_id = function_id

    @contextlib.contextmanager
    def unrecorded(self) -> Iterator[None]:
        """The test's own calls (setting the scene) are no function's."""
        function_id, self.recorder.function_id = self.recorder.function_id, None
        try:
            yield
        finally:
            self.recorder.function_id = function_id

    def sqs_event(self, *keys: str) -> dict[str, Any]:
        """An SQS batch of S3 "Object Created" events, received from the stack's queue."""
        with self.unrecorded():
            return self._received(keys)

    def sqs_batch(self, *bodies: str) -> dict[str, Any]:
        """An SQS batch of these message bodies, received from the stack's queue."""
        with self.unrecorded():
            return self._received((), bodies)

    def _received(self, keys: tuple[str, ...], bodies: tuple[str, ...] = ()) -> dict[str, Any]:
        sqs = boto3.client("sqs", region_name=REGION)
        for body in [*(json.dumps(_object_created(key)) for key in keys), *bodies]:
            sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
        received = sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        )["Messages"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        return {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue_arn["Attributes"]["QueueArn"],
                    "awsRegion": REGION,
                }
                for message in received
            ]
        }


def _object_created(key: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": hashlib.sha256(key.encode()).hexdigest()[:36],
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2026-11-21T02:00:07Z",
        "region": REGION,
        "resources": ["arn:aws:s3:::landing"],
        "detail": {
            "version": "0",
            "bucket": {"name": "landing"},
            "object": {
                "key": key,
                "size": 48213,
                "etag": hashlib.md5(key.encode(), usedforsecurity=False).hexdigest(),
                "version-id": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH",
                "sequencer": "0067A3B5C1D2E3F4A5",
            },
            "reason": "PutObject",
        },
    }


def http_event(
    method: str, path: str, *, body: str | None = None, headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None, signed: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """An HTTP API (payload 2.0) request; ``signed``: an IAM-signed caller."""
    return http_api_event(
        method,
        path,
        body=body,
        headers=headers,
        query=query,
        caller_arn=CALLER_ARN if signed else None,
    )


@pytest.fixture
def aws_stack(raw_template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The template's resources on moto, the routes in SSM, and every boto3 call recorded."""
    resolved = stack(
        raw_template,
        RoutesLocation=f"ssm:{ROUTES_PARAMETER}",
        SourceBucketNames="landing",
        SetManifestLocation=MANIFESTS,
    )
    for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(name)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
        create_table(session.client("dynamodb"), deployed_value(resolved, "<TriggerHistoryTable>"))
        queue_name = resolved.resources("AWS::SQS::Queue")["S3EventsQueue"]["Properties"][
            "QueueName"
        ]
        queue_url = session.client("sqs").create_queue(QueueName=queue_name)["QueueUrl"]
        session.client("ssm").put_parameter(Name=ROUTES_PARAMETER, Value=ROUTES_YAML, Type="String")
        session.client("secretsmanager").create_secret(
            Name=WEBHOOK_SECRET_NAME, SecretString=WEBHOOK_SECRET
        )
        session.client("scheduler").create_schedule_group(
            Name=deployed_value(resolved, "<ScheduleGroup>")
        )

        recorder = Recorder()
        airflow = FakeAirflow()
        session.events.register("provide-client-params", recorder.record)
        session.events.register("provide-client-params.mwaa", airflow.keep_params)
        session.events.register("before-call.mwaa", airflow.answer)
        try:
            yield Stack(resolved, recorder, airflow, monkeypatch, queue_url)
        finally:
            recorder.function_id = None
            reset_instance_state()


def assert_every_call_allowed(aws: Stack, function_id: str) -> set[str]:
    """Put each call the function made to its role; return the IAM actions it used."""
    view = IamView(aws.resolved)
    policy = function_statements(aws.resolved, function_id)
    made = aws.recorder.of(function_id)
    assert made, f"{function_id} made no AWS call: the scenario did not run"
    used: set[str] = set()
    for call, params in made:
        for request in view.requests(call, params):
            used.add(request.action)
            assert allows(policy, request), f"{function_id} is denied {request} ({call})"
    return used


# --- the scenarios --------------------------------------------------------------------------


def test_the_s3_events_function_may_make_every_call_of_a_batch(aws_stack: Stack) -> None:
    # Given a batch: a routed object, an object no route wants, and one whose trigger MWAA
    # refuses (kept for a retry with a backoff), then the same batch delivered again
    aws_stack.environment_of("S3EventsFunction")
    from functions.s3_events.app import lambda_handler  # its import is the cold start

    event = aws_stack.sqs_event("sales/2026-11-21.csv", "other/readme.txt", "refused/x.csv")
    context = LambdaContext("dagtrigger-s3-events")

    # When the function handles it twice
    first = lambda_handler(event, context)
    lambda_handler(event, context)

    # Then the refused object was reported failed, and every call it made is allowed
    assert len(first["batchItemFailures"]) == 1
    used = assert_every_call_allowed(aws_stack, "S3EventsFunction")
    assert {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "airflow:InvokeRestApi",
        "ssm:GetParameter",
        "sqs:GetQueueUrl",
        "sqs:ChangeMessageVisibility",
    } <= used


def test_the_s3_events_function_may_backfill_an_unversioned_bucket(aws_stack: Stack) -> None:
    # Given a backfill's event for an object of an unversioned bucket (no sequencer: the
    # function looks for the object's own event in its history)
    aws_stack.environment_of("S3EventsFunction")
    from functions.s3_events.app import lambda_handler

    backfilled = backfill_event(
        bucket="landing",
        key="sales/2026-11-20.csv",
        size=10,
        etag='"d41d8cd98f00b204e9800998ecf8427e"',
        version_id=None,
        last_modified=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
        region=REGION,
    )

    # When the function handles it
    answer = lambda_handler(
        aws_stack.sqs_batch(json.dumps(backfilled)), LambdaContext("dagtrigger-s3-events")
    )

    # Then it started the run, and read the object's history within its role
    assert answer["batchItemFailures"] == []
    used = assert_every_call_allowed(aws_stack, "S3EventsFunction")
    assert "dynamodb:Query" in used


def test_the_s3_events_function_may_make_every_call_of_a_file_set(aws_stack: Stack) -> None:
    # Given an export of 250 parts, whose object list is too long for a conf, and its marker
    with aws_stack.unrecorded():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="landing")
        s3.create_bucket(Bucket="dagtrigger-manifests")
        folder = "exports/2026-12-03/" + "d" * 60
        for number in range(250):
            s3.put_object(Bucket="landing", Key=f"{folder}/part-{number:05d}.parquet", Body=b"1")
        s3.put_object(Bucket="landing", Key=f"{folder}/_SUCCESS", Body=b"")
    aws_stack.environment_of("S3EventsFunction")
    from functions.s3_events.app import lambda_handler

    # When one part's event and the marker's arrive
    event = aws_stack.sqs_event(f"{folder}/part-00007.parquet", f"{folder}/_SUCCESS")
    answer = lambda_handler(event, LambdaContext("dagtrigger-s3-events"))

    # Then the set's run started with a manifest, and every call the function made to join,
    # list the folder, complete the set and write the manifest is allowed
    assert answer["batchItemFailures"] == []
    (run,) = aws_stack.airflow.runs.values()
    assert run["conf"]["manifest"].startswith(f"{MANIFESTS}daily/s-")
    used = assert_every_call_allowed(aws_stack, "S3EventsFunction")
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= used
    assert {"dynamodb:BatchGetItem", "s3:ListBucket", "s3:PutObject"} <= used


def test_the_schedules_function_may_make_every_call_of_a_fire(aws_stack: Stack) -> None:
    aws_stack.environment_of("SchedulesFunction")
    from functions.schedules.app import lambda_handler

    group = deployed_value(aws_stack.resolved, "<ScheduleGroup>")
    fire = {
        "route": "nightly-sales",
        "conf": {"region": "emea"},
        "scheduled_time": "2026-11-21T01:00:00Z",
        "schedule_arn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/nightly-sales",
        "execution_id": "d32c5kddcf5bb8c3",
        "attempt": "1",
    }

    # When a fire arrives, and Scheduler retries it
    answer = lambda_handler(fire, LambdaContext("dagtrigger-schedules"))
    lambda_handler({**fire, "attempt": "2"}, LambdaContext("dagtrigger-schedules"))

    assert len(aws_stack.airflow.runs) == 1, answer
    used = assert_every_call_allowed(aws_stack, "SchedulesFunction")
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "airflow:InvokeRestApi"} <= used


def test_the_api_function_may_make_every_call_of_its_routes(aws_stack: Stack) -> None:
    aws_stack.environment_of("ApiFunction")
    from functions.api.app import lambda_handler

    context = LambdaContext("dagtrigger-api")

    def send(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = lambda_handler(http_event(method, path, **kwargs), context)
        body = response.get("body") or "null"
        return response["statusCode"], json.loads(body) if body.startswith(("{", "[")) else body

    json_headers = {"content-type": "application/json"}
    # A run, read back; history by DAG, source, status and day; health
    status, started = send(
        "POST", "/v1/dags/ingest_sales/runs", body=json.dumps({"conf": {"day": "1"}}),
        headers={**json_headers, "idempotency-key": "backfill-1"},
    )  # fmt: skip
    assert status == 202, started
    trigger = started["trigger_id"]
    assert send("GET", f"/v1/triggers/{trigger}")[0] == 200
    # (a run that triggered is not replayed: the answer says so, after reading the record)
    assert send("POST", f"/v1/triggers/{trigger}/replay", headers=json_headers)[0] == 409
    for query in (
        {"dag_id": "ingest_sales"},
        {"source": f"api:{CALLER_ARN}"},
        {"status": "TRIGGERED"},
        {},
    ):
        assert send("GET", "/v1/triggers", query=query)[0] == 200, query
    assert send("GET", "/v1/objects", query={"bucket": "landing", "key": "sales/x.csv"})[0] == 200
    assert send("GET", "/v1/health")[0] == 200
    # A file set that does not exist: its record read, then its members would be
    assert send("GET", f"/v1/sets/s-{'0' * 32}")[0] == 404
    # Schedules of the stack's group: created, listed, read, replaced, deleted
    schedule = {
        "name": "nightly-report",
        "route": "nightly-sales",
        "expression": "cron(0 2 * * ? *)",
        "timezone": "Europe/Paris",
    }
    assert send("POST", "/v1/schedules", body=json.dumps(schedule), headers=json_headers)[0] == 201
    assert send("GET", "/v1/schedules")[0] == 200
    assert send("GET", "/v1/schedules/nightly-report")[0] == 200
    replacement = json.dumps({**schedule, "expression": "rate(6 hours)"})
    assert (
        send("PUT", "/v1/schedules/nightly-report", body=replacement, headers=json_headers)[0]
        == 200
    )
    assert send("DELETE", "/v1/schedules/nightly-report")[0] in (200, 204)
    # A signed GitHub delivery, unauthenticated by IAM
    payload = json.dumps({"ref": "refs/heads/main", "after": "abc"})
    signature = hmac.new(WEBHOOK_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    webhook_headers = {
        **json_headers,
        "x-hub-signature-256": f"sha256={signature}",
        "x-github-event": "push",
        "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }
    status, delivered = send(
        "POST", "/v1/webhooks/github-push", body=payload, headers=webhook_headers, signed=False
    )
    assert status in (200, 202), delivered

    used = assert_every_call_allowed(aws_stack, "ApiFunction")
    assert {
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "scheduler:CreateSchedule",
        "scheduler:ListSchedules",
        "scheduler:GetSchedule",
        "scheduler:UpdateSchedule",
        "scheduler:DeleteSchedule",
        "iam:PassRole",
        "secretsmanager:GetSecretValue",
        "airflow:InvokeRestApi",
    } <= used


def test_the_reconciler_may_make_every_call_of_a_pass(aws_stack: Stack) -> None:
    # Given a triggered run to follow (started by the schedules function) and a claim whose
    # holder died an hour ago, before starting its run
    aws_stack.environment_of("SchedulesFunction")
    from functions.schedules.app import lambda_handler as schedules_handler

    group = deployed_value(aws_stack.resolved, "<ScheduleGroup>")
    schedules_handler(
        {
            "route": "nightly-sales",
            "scheduled_time": "2026-11-21T01:00:00Z",
            "schedule_arn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/nightly-sales",
        },
        LambdaContext("dagtrigger-schedules"),
    )
    table = boto3.resource("dynamodb", region_name=REGION).Table(
        deployed_value(aws_stack.resolved, "<TriggerHistoryTable>")
    )
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    abandoned = trigger_id("abandoned fire", "nightly-sales")
    aws_stack.recorder.function_id = None
    TriggerLedger(table, clock=lambda: an_hour_ago).claim(
        NewTrigger(
            trigger_id=abandoned,
            source_type=SourceType.SCHEDULE,
            source_key="abandoned",
            source_identity="abandoned fire",
            source_ref={},
            route="nightly-sales",
            environment="prod",
            dag_id="nightly_report",
            dag_run_id="dagtrigger__schedule__abandoned",
            conf={},
        )
    )

    # When a reconciler pass runs
    aws_stack.environment_of("ReconcilerFunction")
    from functions.reconciler.app import lambda_handler

    summary = lambda_handler({}, LambdaContext("dagtrigger-reconciler"))

    # Then it resumed the claim and followed the runs, within its role
    assert "dagtrigger__schedule__abandoned" in aws_stack.airflow.runs, summary
    used = assert_every_call_allowed(aws_stack, "ReconcilerFunction")
    assert {"dynamodb:Query", "dynamodb:UpdateItem", "airflow:InvokeRestApi"} <= used


def test_the_reconciler_may_tell_of_a_failed_run(
    aws_stack: Stack, raw_template: dict[str, Any]
) -> None:
    # Given a deployment with a run failure topic, and a scheduled run that fails in a task
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:dag-failures"
    aws_stack.resolved = stack(
        raw_template,
        RoutesLocation=f"ssm:{ROUTES_PARAMETER}",
        SetManifestLocation=MANIFESTS,
        RunFailureTopicArn=topic,
    )
    with aws_stack.unrecorded():
        boto3.client("sns", region_name=REGION).create_topic(Name="dag-failures")
    aws_stack.airflow.failing_dags.add("nightly_report")
    aws_stack.environment_of("SchedulesFunction")
    from functions.schedules.app import lambda_handler as schedules_handler

    group = deployed_value(aws_stack.resolved, "<ScheduleGroup>")
    schedules_handler(
        {
            "route": "nightly-sales",
            "scheduled_time": "2026-11-21T01:00:00Z",
            "schedule_arn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/nightly-sales",
        },
        LambdaContext("dagtrigger-schedules"),
    )

    # When a reconciler pass records the failure
    aws_stack.environment_of("ReconcilerFunction")
    from functions.reconciler.app import lambda_handler

    summary = lambda_handler({}, LambdaContext("dagtrigger-reconciler"))

    # Then it read the failed tasks, put the event on the bus and told the topic, within its
    # role (the sparse index of undelivered events included)
    assert summary["changed"] == {"FAILED": 1}, summary
    assert summary["told"] == 1, summary
    used = assert_every_call_allowed(aws_stack, "ReconcilerFunction")
    assert {"events:PutEvents", "sns:Publish", "airflow:InvokeRestApi", "dynamodb:Query"} <= used
