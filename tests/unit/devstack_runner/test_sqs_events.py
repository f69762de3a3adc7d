"""The SQS event the runner builds, and which messages it deletes after an invocation."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SqsModel

from devstack.runner.invoke import InvocationResult
from devstack.runner.sqs_poller import SqsPoller, failed_message_ids, lambda_sqs_record
from devstack.runner.template import SqsEventSource

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:events"


def received_message(message_id: str, body: str = '{"hello": "world"}') -> dict[str, Any]:
    """A message as ReceiveMessage returns it (all attributes asked for)."""
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"handle-{message_id}",
        "MD5OfBody": "49dfdd54b01cbcd2d2ab5e9e5ee6b9b9",
        "Body": body,
        "Attributes": {
            "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
            "SentTimestamp": "1795305459764",
            "ApproximateReceiveCount": "1",
            "ApproximateFirstReceiveTimestamp": "1795305459817",
        },
        "MD5OfMessageAttributes": "d25a6aea97eb8f585bfa92d314504a92",
        "MessageAttributes": {
            "origin": {"StringValue": "test", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    }


def test_the_record_parses_with_powertools_data_class_and_parser() -> None:
    # Given a received message turned into Lambda's SQS event
    event = {
        "Records": [
            lambda_sqs_record(received_message("m-1"), queue_arn=QUEUE_ARN, region="us-east-1")
        ]
    }
    # When Powertools reads it both ways
    record = next(SQSEvent(event).records)
    model = parse(event=event, model=SqsModel)
    # Then every field is where Lambda puts it
    assert record.message_id == "m-1"
    assert record.receipt_handle == "handle-m-1"
    assert record.json_body == {"hello": "world"}
    assert record.attributes.approximate_receive_count == "1"
    origin, blob = record.message_attributes["origin"], record.message_attributes["blob"]
    assert origin is not None
    assert origin.string_value == "test"
    assert blob is not None
    assert blob.binary_value == "AAE="
    assert record.event_source_arn == QUEUE_ARN
    assert record.aws_region == "us-east-1"
    assert model.Records[0].eventSource == "aws:sqs"
    assert model.Records[0].md5OfMessageAttributes == "d25a6aea97eb8f585bfa92d314504a92"


def result(payload: Any = None, error: dict[str, Any] | None = None) -> InvocationResult:
    return InvocationResult("Fn", "request-1", payload, error)


@pytest.mark.parametrize(
    ("invocation", "reports", "expected"),
    [
        (result(error={"errorType": "RuntimeError"}), True, {"a", "b"}),
        (result({"batchItemFailures": []}), True, set()),
        (result(None), True, set()),
        (result({"batchItemFailures": [{"itemIdentifier": "b"}]}), True, {"b"}),
        (result({"batchItemFailures": [{"itemIdentifier": "b"}]}), False, set()),
        (result({"batchItemFailures": [{"itemIdentifier": "zzz"}]}), True, {"a", "b"}),
        (result({"batchItemFailures": [{"itemIdentifier": ""}]}), True, {"a", "b"}),
        (result({"batchItemFailures": "b"}), True, {"a", "b"}),
    ],
    ids=[
        "handler-raised",
        "no-failures",
        "null-answer",
        "one-failure",
        "failures-ignored-without-reporting",
        "unknown-id-fails-all",
        "empty-id-fails-all",
        "not-a-list-fails-all",
    ],
)
def test_failed_messages_follow_lambdas_rules(
    invocation: InvocationResult, reports: bool, expected: set[str]
) -> None:
    assert failed_message_ids(invocation, ["a", "b"], reports) == expected


class FakeSqs:
    """Just enough of an SQS client: one queue of prepared messages, deletions recorded."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.deleted: list[str] = []
        self.receive_calls: list[dict[str, Any]] = []

    def receive_message(self, **request: Any) -> dict[str, Any]:
        self.receive_calls.append(request)
        batch, self.messages = (
            self.messages[: request["MaxNumberOfMessages"]],
            self.messages[request["MaxNumberOfMessages"] :],
        )
        return {"Messages": batch} if batch else {}

    def delete_message_batch(
        self, *, QueueUrl: str, Entries: list[dict[str, str]]
    ) -> dict[str, Any]:
        self.deleted.extend(entry["ReceiptHandle"] for entry in Entries)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}


def test_a_batch_deletes_all_but_the_reported_failures() -> None:
    # Given three messages and a handler that reports the second as failed
    sqs = FakeSqs([received_message(f"m-{index}") for index in range(3)])
    invoked: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> InvocationResult:
        invoked.append(event)
        return result({"batchItemFailures": [{"itemIdentifier": "m-1"}]})

    poller = SqsPoller(
        sqs_client=sqs,
        queue_url="http://queue",
        source=SqsEventSource("Objects", QUEUE_ARN, batch_size=10, report_batch_item_failures=True),
        region="us-east-1",
        invoke=invoke,
        fidelity=None,
    )
    # When one batch is polled
    outcome = poller.poll_once(threading.Event())
    # Then the handler saw all three, and only the two successes were deleted
    assert outcome is not None
    assert [record["messageId"] for record in invoked[0]["Records"]] == ["m-0", "m-1", "m-2"]
    assert sqs.deleted == ["handle-m-0", "handle-m-2"]
    assert outcome.retried == ("m-1",)
    assert sqs.receive_calls[0]["MessageSystemAttributeNames"] == ["All"]


def test_a_raising_handler_deletes_nothing() -> None:
    sqs = FakeSqs([received_message("m-0")])
    poller = SqsPoller(
        sqs_client=sqs,
        queue_url="http://queue",
        source=SqsEventSource("Objects", QUEUE_ARN),
        region="us-east-1",
        invoke=lambda event: result(error={"errorType": "KeyError", "errorMessage": "x"}),
        fidelity=None,
    )
    outcome = poller.poll_once(threading.Event())
    assert outcome is not None
    assert outcome.retried == ("m-0",)
    assert sqs.deleted == []


def test_batch_size_limits_each_receive() -> None:
    sqs = FakeSqs([received_message(f"m-{index}") for index in range(5)])
    seen: list[int] = []

    def invoke(event: dict[str, Any]) -> InvocationResult:
        seen.append(len(event["Records"]))
        return result(None)

    poller = SqsPoller(
        sqs_client=sqs,
        queue_url="http://queue",
        source=SqsEventSource("Objects", QUEUE_ARN, batch_size=2),
        region="us-east-1",
        invoke=invoke,
        fidelity=None,
    )
    poller.poll_once()
    assert seen == [2]
    assert json.dumps(sqs.receive_calls[0]["MaxNumberOfMessages"]) == "2"
