"""The Lambda runner end to end against moto's server and DynamoDB Local.

S3 put -> EventBridge rule -> SQS -> the fixture's recorder handler, with the object key as AWS
sends it; a failing record retried until moto's redrive moves it to the dead-letter queue;
the HTTP API and a schedule, over real loopback sockets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from devstack.moto_server import start_moto
from devstack.processes import StackError
from devstack.runner import LambdaRunner
from devstack.runner.moto_fidelity import MOTO_CONSTANT_SEQUENCER

pytestmark = pytest.mark.contract

FIXTURE_TEMPLATE = (
    Path(__file__).parents[1] / "unit" / "devstack_runner" / "fixtures" / "template.yaml"
)
BUCKET = "runner-landing"
WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_moto(state_dir=tmp_path_factory.mktemp("moto"))
    try:
        yield server.endpoint_url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dynamodb_endpoint(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str
) -> Iterator[str]:
    from devstack.dynamodb_local import start_dynamodb_local

    try:
        server = start_dynamodb_local(state_dir=tmp_path_factory.mktemp("dynamodb"))
    except StackError as error:
        # Without Java or the npm package, moto's DynamoDB stands in (the runner needs an endpoint).
        print(f"DynamoDB Local unavailable ({error}); using moto's DynamoDB")
        yield moto_endpoint
        return
    try:
        yield server.endpoint_url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def runner(moto_endpoint: str, dynamodb_endpoint: str) -> Iterator[LambdaRunner]:
    with LambdaRunner(
        FIXTURE_TEMPLATE,
        moto_endpoint=moto_endpoint,
        dynamodb_endpoint=dynamodb_endpoint,
        async_retry_delays=(0.0,),
    ) as running:
        yield running


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def results_for(
    runner: LambdaRunner, moto_endpoint: str, key: str, count: int
) -> list[dict[str, Any]]:
    """Wait until the recorder reported `count` deliveries of `key` (others stay queued)."""
    sqs = client("sqs", moto_endpoint)
    queue_url = runner.resources["ResultsQueue"].url
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_SECONDS
    while len(found) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            result = json.loads(message["Body"])
            if result["key"] == key:
                found.append(result)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
    return found


def test_resources_are_created_as_the_template_declares(
    runner: LambdaRunner, moto_endpoint: str, dynamodb_endpoint: str
) -> None:
    table = runner.resources["HistoryTable"].name
    dynamodb = client("dynamodb", dynamodb_endpoint)
    description = dynamodb.describe_table(TableName=table)["Table"]
    assert [index["IndexName"] for index in description["GlobalSecondaryIndexes"]] == ["by_status"]
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"

    sqs = client("sqs", moto_endpoint)
    attributes = sqs.get_queue_attributes(
        QueueUrl=runner.resources["EventsQueue"].url, AttributeNames=["All"]
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": runner.resources["EventsDeadLetterQueue"].arn,
        "maxReceiveCount": 2,
    }
    assert attributes["VisibilityTimeout"] == "1"

    events = client("events", moto_endpoint)
    rule = events.describe_rule(Name=runner.resources["ObjectCreatedRule"].name)
    assert json.loads(rule["EventPattern"])["detail"] == {"bucket": {"name": [BUCKET]}}
    # moto 5.2.5 leaves EventBridgeConfiguration out of GetBucketNotificationConfiguration;
    # the delivery test below shows the bucket's notifications are on.
    assert BUCKET in runner.resources.source_buckets

    schedule = client("scheduler", moto_endpoint).get_schedule(Name="nightly-ingest")
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert schedule["Target"]["Arn"] == runner.template.function("ScheduledFunction").arn


def test_an_object_reaches_the_handler_with_the_key_aws_sends(
    runner: LambdaRunner, moto_endpoint: str
) -> None:
    # Given a key with "+", a space and "%20": sent as is in EventBridge events
    key = "c++ notes%20v2.csv"
    s3 = client("s3", moto_endpoint)
    # When it is put twice
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"first")
    first = results_for(runner, moto_endpoint, key, 1)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"second, longer")
    second = results_for(runner, moto_endpoint, key, 1)
    # Then the handler got the key unchanged, AWS's etag spelling and growing sequencers
    assert len(first) == len(second) == 1
    assert first[0]["object"]["key"] == key
    assert first[0]["function"] == runner.template.function("RecorderFunction").function_name
    assert "etag" in first[0]["object"]
    sequencers = [first[0]["object"]["sequencer"], second[0]["object"]["sequencer"]]
    assert MOTO_CONSTANT_SEQUENCER not in sequencers
    assert int(sequencers[0], 16) < int(sequencers[1], 16)


def test_a_failing_record_is_retried_then_dead_lettered(
    runner: LambdaRunner, moto_endpoint: str
) -> None:
    # Given an object whose record the handler reports as failed
    key = "fail-always.csv"
    client("s3", moto_endpoint).put_object(Bucket=BUCKET, Key=key, Body=b"x")
    # When the poller keeps receiving it
    deliveries = results_for(runner, moto_endpoint, key, 2)
    # Then it was delivered maxReceiveCount (2) times, then moved to the dead-letter queue
    assert [delivery["receive_count"] for delivery in deliveries] == ["1", "2"]
    sqs = client("sqs", moto_endpoint)
    dead_letter_keys: list[str] = []
    deadline = time.monotonic() + WAIT_SECONDS
    while key not in dead_letter_keys and time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=runner.resources["EventsDeadLetterQueue"].url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
        ).get("Messages", []):
            dead_letter_keys.append(json.loads(message["Body"])["detail"]["object"]["key"])
    assert key in dead_letter_keys


def signed_headers(url: str) -> dict[str, str]:
    aws_request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("AKIDLOCAL", "secret"), "execute-api", "us-east-1").add_auth(aws_request)
    return dict(aws_request.headers.items())


def test_the_http_api_serves_the_templates_routes(runner: LambdaRunner) -> None:
    base = runner.http_api_url
    opened = requests.get(f"{base}/items/42?tag=a&tag=b", timeout=10)
    unsigned = requests.get(f"{base}/files/report.csv", timeout=10)
    signed = requests.get(
        f"{base}/files/report.csv", headers=signed_headers(f"{base}/files/report.csv"), timeout=10
    )
    binary = requests.get(
        f"{base}/files/binary", headers=signed_headers(f"{base}/files/binary"), timeout=10
    )
    failing = requests.get(
        f"{base}/files/raise", headers=signed_headers(f"{base}/files/raise"), timeout=10
    )
    assert opened.status_code == 200
    assert opened.json()["routeKey"] == "GET /items/{id}"
    assert opened.json()["queryStringParameters"] == {"tag": "a,b"}
    assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Forbidden"})
    assert signed.json()["requestContext"]["authorizer"]["iam"]["accessKey"] == "AKIDLOCAL"
    assert signed.json()["pathParameters"] == {"proxy": "report.csv"}
    assert (binary.status_code, binary.content, binary.cookies.get("a")) == (
        201,
        b"\x00\x01\x02",
        "1",
    )
    assert (failing.status_code, failing.json()) == (500, {"message": "Internal Server Error"})


def test_a_schedule_fires_with_its_input_filled_in(runner: LambdaRunner) -> None:
    from datetime import UTC, datetime

    firing = runner.fire_schedule("nightly-ingest", datetime(2026, 11, 22, 1, 0, tzinfo=UTC))
    assert firing.succeeded
    received = firing.attempts[-1].payload["received"]
    assert received["scheduled_time"] == "2026-11-22T01:00:00Z"
    assert received["schedule_arn"].endswith(":schedule/default/nightly-ingest")
    assert received["attempt"] == "1"
