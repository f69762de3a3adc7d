"""Failed SQS messages come back after a growing backoff, not the queue's visibility timeout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from dagtrigger.dependencies import Dependencies
from dagtrigger.redelivery import Backoff, Redelivery
from dagtrigger.sources.s3.service import process_s3_batch
from tests.unit.conftest import server_error


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def lambda_records(sqs: Any, queue_url: str, count: int) -> list[dict[str, Any]]:
    """Receive ``count`` messages and shape them as Lambda's SQS event records."""
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    queue_arn = arn["Attributes"]["QueueArn"]
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=count, AttributeNames=["All"]
    )["Messages"]
    return [
        {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message["Attributes"],
            "eventSourceARN": queue_arn,
        }
        for message in received
    ]


@pytest.mark.parametrize(
    ("receives", "draw", "expected"),
    [(1, 1.0, 30), (2, 1.0, 60), (3, 1.0, 120), (3, 0.0, 60), (6, 1.0, 900), (40, 1.0, 900)],
)
def test_the_wait_doubles_per_receive_with_jitter_and_a_cap(
    receives: int, draw: float, expected: int
) -> None:
    backoff = Backoff(base_seconds=30, max_seconds=900)

    assert backoff.delay_seconds(receives, draw=lambda: draw) == expected


def test_a_failed_message_returns_after_its_backoff_not_the_visibility_timeout(sqs: Any) -> None:
    # Given a queue with a 900 s visibility timeout, and a batch of two received messages
    queue_url = sqs.create_queue(QueueName="s3-events", Attributes={"VisibilityTimeout": "900"})[
        "QueueUrl"
    ]
    for body in ("ok", "failed"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    records = lambda_records(sqs, queue_url, 2)
    failed = [record["messageId"] for record in records if record["body"] == "failed"]
    redelivery = Redelivery(lambda: sqs, Backoff(base_seconds=1, max_seconds=1), draw=lambda: 1.0)

    # When the failed one is given its backoff
    delays = redelivery.delay_failed(records, failed)

    # Then it waits its one second, not 15 minutes, and only it comes back
    assert delays == {failed[0]: 1}
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)
    time.sleep(1.2)
    again = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["ApproximateReceiveCount"])
    assert [message["Body"] for message in again["Messages"]] == ["failed"]
    assert again["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_failure_to_change_visibility_keeps_the_message_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a client whose calls are refused
    class Refusing:
        def get_queue_url(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetQueueUrl")

    record = {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:s3-events",
    }
    redelivery = Redelivery(Refusing, Backoff(base_seconds=30, max_seconds=900))

    # When the backoff is set, then nothing raises (the message keeps the full timeout)
    redelivery.delay_failed([record], ["m-1"])
    assert any("keep the queue's visibility timeout" in r.getMessage() for r in caplog.records)


class RecordingSqs:
    """An SQS client that records the visibility changes asked of it."""

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []

    def get_queue_url(self, QueueName: str, QueueOwnerAWSAccountId: str) -> dict[str, str]:
        return {"QueueUrl": f"https://sqs.example/{QueueOwnerAWSAccountId}/{QueueName}"}

    def change_message_visibility_batch(self, **request: Any) -> dict[str, Any]:
        self.changes.append(request)
        return {"Successful": [{"Id": entry["Id"]} for entry in request["Entries"]]}


def test_the_s3_function_gives_its_failed_messages_their_backoff(
    deps: Dependencies, transport: Any
) -> None:
    # Given a batch of two S3 events, the second received for the third time, whose triggers
    # keep failing (Airflow answers 503 for longer than the retry budget)
    transport.answers.extend([server_error] * 50)
    sqs = RecordingSqs()
    with_backoff = replace(
        deps,
        redelivery=Redelivery(
            lambda: sqs, Backoff(base_seconds=30, max_seconds=900), draw=lambda: 1.0
        ),
    )
    batch = {
        "Records": [
            queue_record("m-1", "sales/a.csv", receives=1),
            queue_record("m-2", "sales/b.csv", receives=3),
        ]
    }

    # When the batch is processed
    response = process_s3_batch(batch, None, with_backoff)  # type: ignore[arg-type]

    # Then both are reported failed, and each comes back after its own backoff, in one call
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    (change,) = sqs.changes
    assert change["QueueUrl"] == "https://sqs.example/123456789012/s3-events"
    assert [entry["VisibilityTimeout"] for entry in change["Entries"]] == [30, 120]
    assert [entry["ReceiptHandle"] for entry in change["Entries"]] == ["r-m-1", "r-m-2"]


def queue_record(message_id: str, key: str, *, receives: int) -> dict[str, Any]:
    body = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": "2026-11-21T02:00:00Z",
        "region": "us-east-1",
        "detail": {
            "bucket": {"name": "landing"},
            "object": {"key": key, "size": 10, "etag": "e", "version-id": f"v-{key}"},
            "reason": "PutObject",
        },
    }
    return {
        "messageId": message_id,
        "receiptHandle": f"r-{message_id}",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": str(receives)},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:s3-events",
        "awsRegion": "us-east-1",
    }
