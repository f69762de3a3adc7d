"""Making moto's S3 EventBridge events what AWS sends (see devstack.runner.moto_fidelity)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from devstack.runner.moto_fidelity import MOTO_CONSTANT_SEQUENCER, MotoS3EventFidelity

KEY = "c++ notes%20v2.csv"


def moto_message(
    message_id: str, key: str = KEY, sent_ms: int = 1_795_305_459_764
) -> dict[str, Any]:
    """An SQS message holding the event moto 5.2.5's server sends (captured from a real run)."""
    body = {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-21T23:57:39Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::landing"],
        "detail": {
            "version": "0",
            "bucket": {"name": "landing"},
            "object": {
                "key": key,
                "size": 3,
                "eTag": "900150983cd24fb0d6963f7d28e17f72",
                "version-id": "null",
                "sequencer": MOTO_CONSTANT_SEQUENCER,
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "ObjectCreated",
        },
    }
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"handle-{message_id}",
        "MD5OfBody": "moto",
        "Body": json.dumps(body),
        "Attributes": {"SentTimestamp": str(sent_ms), "ApproximateReceiveCount": "1"},
    }


def event_of(message: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(message["Body"])
    return event


def test_moto_event_gets_aws_fields_and_keeps_the_raw_key() -> None:
    # Given moto's event for a key with "+", a space and "%20"
    fixed = MotoS3EventFidelity().apply(moto_message("m-1"))
    event = event_of(fixed)
    obj = event["detail"]["object"]
    # Then the key is left as AWS sends it in EventBridge events: as is, not URL-encoded
    assert obj["key"] == KEY
    # And moto's constants and spellings are replaced by AWS's
    assert "eTag" not in obj
    assert obj["etag"] == "900150983cd24fb0d6963f7d28e17f72"
    assert obj["sequencer"] != MOTO_CONSTANT_SEQUENCER
    assert int(obj["sequencer"], 16) > 0
    assert event["id"] != "17793124-05d4-b198-2fde-7ededc63b103"
    assert event["detail"]["request-id"] != "N4N7GDK58NMKJ12R"
    assert event["detail"]["reason"] == "PutObject"
    assert fixed["MD5OfBody"] == hashlib.md5(fixed["Body"].encode()).hexdigest()


def test_sequencers_grow_per_key_even_within_one_millisecond() -> None:
    fidelity = MotoS3EventFidelity()
    first, second, later = (
        event_of(fidelity.apply(moto_message(message_id, sent_ms=sent)))["detail"]["object"][
            "sequencer"
        ]
        for message_id, sent in (("m-1", 1000), ("m-2", 1000), ("m-3", 2000))
    )
    assert int(first, 16) < int(second, 16) < int(later, 16)


def test_a_redelivered_message_keeps_its_values() -> None:
    fidelity = MotoS3EventFidelity()
    first = fidelity.apply(moto_message("m-1"))
    fidelity.apply(moto_message("m-2"))
    again = fidelity.apply(moto_message("m-1"))
    assert again["Body"] == first["Body"]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
        json.dumps({"source": "aws.s3", "detail": {"object": {"key": "k", "sequencer": "0A1B"}}}),
    ],
    ids=["not-json", "classic-notification", "aws-event"],
)
def test_other_messages_pass_untouched(body: str) -> None:
    message = {"MessageId": "m", "Body": body, "MD5OfBody": "x"}
    assert MotoS3EventFidelity().apply(message) is message


def test_the_fixed_event_reads_right_with_the_layers_parser() -> None:
    from dagtrigger.sources.s3 import parse as s3events

    fidelity = MotoS3EventFidelity()
    older = fidelity.apply(moto_message("m-1", sent_ms=1000))
    newer = fidelity.apply(moto_message("m-2", sent_ms=1000))
    (old_event,) = s3events.parse_sqs_body(older["Body"]).events
    (new_event,) = s3events.parse_sqs_body(newer["Body"]).events
    assert old_event.key == KEY
    assert old_event.etag == "900150983cd24fb0d6963f7d28e17f72"
    assert s3events.sequencer_newer(new_event.sequencer, old_event.sequencer)
