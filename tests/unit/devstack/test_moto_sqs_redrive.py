"""SQS's dead-letter queue redrive on the local stack's moto (devstack.moto_sqs_redrive), pinned
to what the SQS API reference documents for StartMessageMoveTask and ListMessageMoveTasks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devstack.moto_sqs_redrive import NOT_A_DEAD_LETTER_QUEUE, install

REGION = "us-east-1"


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    install()
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def arn_of(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def queue_with_dead_letters(
    sqs: Any, *, allow_policy: dict[str, Any] | None = None, messages: int = 3
) -> tuple[str, str]:
    """A queue whose messages failed once each and moved to its dead-letter queue (as SQS does
    after maxReceiveCount receives)."""
    attributes = {"RedriveAllowPolicy": json.dumps(allow_policy)} if allow_policy else {}
    dlq_url = sqs.create_queue(QueueName="events-dlq", Attributes=attributes)["QueueUrl"]
    policy = {"deadLetterTargetArn": arn_of(sqs, dlq_url), "maxReceiveCount": 1}
    queue_url = sqs.create_queue(
        QueueName="events", Attributes={"RedrivePolicy": json.dumps(policy)}
    )["QueueUrl"]
    for index in range(messages):
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=f"event {index}",
            MessageAttributes={"n": {"DataType": "Number", "StringValue": str(index)}},
        )
    sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)  # past maxReceiveCount
    assert count(sqs, dlq_url) == messages
    return queue_url, dlq_url


def count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_a_move_task_moves_the_dead_letters_back_as_new_messages_and_completes(sqs: Any) -> None:
    # Given three messages in a dead-letter queue, whose ids we know
    queue_url, dlq_url = queue_with_dead_letters(sqs, messages=3)
    dead = sqs.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
    )["Messages"]

    # When a move task is started from the dead-letter queue to the queue
    started = sqs.start_message_move_task(
        SourceArn=arn_of(sqs, dlq_url), DestinationArn=arn_of(sqs, queue_url)
    )

    # Then the queue holds them as new messages (new ids, never received), with body and attributes
    assert started["TaskHandle"]
    assert count(sqs, dlq_url) == 0
    moved = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )["Messages"]
    assert sorted(message["Body"] for message in moved) == ["event 0", "event 1", "event 2"]
    assert {m["MessageId"] for m in moved}.isdisjoint({m["MessageId"] for m in dead})
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in moved} == {"1"}
    assert {m["MessageAttributes"]["n"]["StringValue"] for m in moved} == {"0", "1", "2"}
    # And the task lists as COMPLETED, with no handle (SQS gives one only while RUNNING)
    (task,) = sqs.list_message_move_tasks(SourceArn=arn_of(sqs, dlq_url))["Results"]
    assert task["Status"] == "COMPLETED"
    assert "TaskHandle" not in task
    assert task["ApproximateNumberOfMessagesMoved"] == 3
    assert task["ApproximateNumberOfMessagesToMove"] == 3
    assert task["DestinationArn"] == arn_of(sqs, queue_url)


def test_without_a_destination_the_messages_go_back_to_their_source_queue(sqs: Any) -> None:
    queue_url, dlq_url = queue_with_dead_letters(sqs, messages=2)

    sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq_url))

    assert (count(sqs, queue_url), count(sqs, dlq_url)) == (2, 0)


def test_a_queue_that_is_no_dead_letter_queue_cannot_be_a_source(sqs: Any) -> None:
    queue_url, dlq_url = queue_with_dead_letters(sqs, messages=1)

    with pytest.raises(ClientError) as refused:
        sqs.start_message_move_task(
            SourceArn=arn_of(sqs, queue_url), DestinationArn=arn_of(sqs, dlq_url)
        )

    error = refused.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("InvalidParameterValue", NOT_A_DEAD_LETTER_QUEUE)


@pytest.mark.parametrize(
    ("allow_policy", "allowed"),
    [
        ({"redrivePermission": "denyAll"}, False),
        ({"redrivePermission": "byQueue", "sourceQueueArns": ["arn:aws:sqs:x:1:other"]}, False),
        ({"redrivePermission": "byQueue", "sourceQueueArns": ["QUEUE"]}, True),
        ({"redrivePermission": "allowAll"}, True),
    ],
    ids=["denyAll", "byQueue-other", "byQueue-this", "allowAll"],
)
def test_the_dead_letter_queues_redrive_allow_policy_decides_whose_dead_letter_queue_it_is(
    sqs: Any, allow_policy: dict[str, Any], allowed: bool
) -> None:
    # Given a dead-letter queue whose redrive allow policy does or does not let the queue use it
    queue_arn = f"arn:aws:sqs:{REGION}:123456789012:events"
    arns = [queue_arn if arn == "QUEUE" else arn for arn in allow_policy.get("sourceQueueArns", [])]
    policy = {**allow_policy, **({"sourceQueueArns": arns} if arns else {})}
    queue_url, dlq_url = queue_with_dead_letters(sqs, allow_policy=policy, messages=1)
    assert arn_of(sqs, queue_url) == queue_arn

    # When a redrive is asked for
    def redrive() -> Any:
        return sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq_url), DestinationArn=queue_arn)

    # Then it runs only where the queue may use it as its dead-letter queue
    if allowed:
        redrive()
        assert count(sqs, queue_url) == 1
    else:
        with pytest.raises(ClientError, match="must be configured as a Dead Letter Queue"):
            redrive()
        assert count(sqs, dlq_url) == 1


def test_a_missing_destination_is_a_resource_not_found(sqs: Any) -> None:
    _, dlq_url = queue_with_dead_letters(sqs, messages=1)

    with pytest.raises(ClientError) as refused:
        sqs.start_message_move_task(
            SourceArn=arn_of(sqs, dlq_url), DestinationArn=arn_of(sqs, dlq_url) + "-gone"
        )

    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert count(sqs, dlq_url) == 1


def test_tasks_are_listed_newest_first_one_by_default(sqs: Any) -> None:
    queue_url, dlq_url = queue_with_dead_letters(sqs, messages=1)
    source, destination = arn_of(sqs, dlq_url), arn_of(sqs, queue_url)
    sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)
    sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)

    latest = sqs.list_message_move_tasks(SourceArn=source)["Results"]
    both = sqs.list_message_move_tasks(SourceArn=source, MaxResults=10)["Results"]

    assert [task["ApproximateNumberOfMessagesMoved"] for task in latest] == [0]
    assert [task["ApproximateNumberOfMessagesMoved"] for task in both] == [0, 1]
