"""parse_sqs_body: EventBridge and classic S3 notifications, key decoding, and refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from dagtrigger.sources.s3.parse import MalformedEventError, parse_sqs_body, sequencer_newer

TRICKY_KEY = "c++ notes%20v2.csv"


def eventbridge_body(key: str, **object_fields: Any) -> str:
    """An SQS body as an EventBridge rule delivers it (shape of AWS's documented example)."""
    obj = {
        "key": key,
        "size": 5,
        "etag": "b1946ac92492d2347c6235b4d2611184",
        "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        "sequencer": "617f08299329d189",
    }
    obj.update(object_fields)
    return json.dumps(
        {
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2021-11-12T00:00:00Z",
            "region": "ca-central-1",
            "resources": ["arn:aws:s3:::landing"],
            "detail": {
                "version": "0",
                "bucket": {"name": "landing"},
                "object": {k: v for k, v in obj.items() if v is not None},
                "request-id": "N4N7GDK58NMKJ12R",
                "requester": "123456789012",
                "source-ip-address": "1.2.3.4",
                "reason": "PutObject",
            },
        }
    )


def notification_record(wire_key: str, event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    """One record of a classic S3 notification; ``wire_key`` is already URL-encoded."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-west-2",
        "eventTime": "2026-11-21T10:15:00.123Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "1.2.3.4"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURI"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "landing-to-queue",
            "bucket": {
                "name": "landing",
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": "arn:aws:s3:::landing",
            },
            "object": {
                "key": wire_key,
                "size": 1024,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }


def notification_body(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def sns_wrapped(message: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:landing-events",
            "Subject": "Amazon S3 Notification",
            "Message": message,
        }
    )


def malformed(body: str) -> str:
    with pytest.raises(MalformedEventError) as caught:
        parse_sqs_body(body)
    assert caught.value.code == "malformed_event"
    return caught.value.message


# --- the tricky key, on the wire of each format -------------------------------------------


def test_classic_notifications_send_the_key_form_encoded_and_it_is_decoded() -> None:
    # Given the wire form S3 sends for "c++ notes%20v2.csv": '+' -> %2B, ' ' -> '+', '%' -> %25
    body = notification_body(notification_record("c%2B%2B+notes%2520v2.csv"))
    assert '"key": "c%2B%2B+notes%2520v2.csv"' in body

    # When it is parsed
    (event,) = parse_sqs_body(body).events

    # Then the key is exactly the object's key
    assert event.key == TRICKY_KEY
    assert event.source_format == "s3-notification"


def test_eventbridge_sends_the_key_as_is_and_it_is_not_decoded() -> None:
    # Given the wire form EventBridge sends: the key itself
    body = eventbridge_body(TRICKY_KEY)
    assert '"key": "c++ notes%20v2.csv"' in body

    # When it is parsed
    (event,) = parse_sqs_body(body).events

    # Then the key is exactly the object's key (no '+' became a space, no %20 a space)
    assert event.key == TRICKY_KEY
    assert event.source_format == "eventbridge"


def test_powertools_eventbridge_data_class_would_corrupt_the_key() -> None:
    # Why s3events does not use S3EventBridgeNotificationEvent: it applies unquote_plus
    from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent

    event = S3EventBridgeNotificationEvent(json.loads(eventbridge_body(TRICKY_KEY)))

    assert event.detail.object.key == "c   notes v2.csv"


@pytest.mark.parametrize(
    ("key", "wire_key"),
    [
        ("sales/2026 report.csv", "sales/2026+report.csv"),
        ("a+b.csv", "a%2Bb.csv"),
        ("données/été 2026.csv", "donn%C3%A9es/%C3%A9t%C3%A9+2026.csv"),
        ("o'brien's.csv", "o%27brien%27s.csv"),
        ("line\nbreak.csv", "line%0Abreak.csv"),
        ("100%.csv", "100%25.csv"),
        ("plain/key.csv", "plain/key.csv"),
    ],
)
def test_keys_decode_to_the_same_object_in_both_formats(key: str, wire_key: str) -> None:
    (from_notification,) = parse_sqs_body(notification_body(notification_record(wire_key))).events
    (from_eventbridge,) = parse_sqs_body(eventbridge_body(key)).events

    assert from_notification.key == key
    assert from_eventbridge.key == key


def test_a_key_that_does_not_decode_to_utf8_is_malformed() -> None:
    message = malformed(notification_body(notification_record("bad%FF.csv")))

    assert (
        message
        == "S3 notification Records[0].s3.object.key 'bad%FF.csv' does not URL-decode to UTF-8"
    )


@pytest.mark.parametrize("wire_key", ["100%.csv", "a%2", "%zz.csv", "tail%"])
def test_a_percent_that_starts_no_escape_is_malformed(wire_key: str) -> None:
    # Given a key S3 cannot have sent: it always encodes '%' itself as %25
    message = malformed(notification_body(notification_record(wire_key)))

    assert message.startswith(f"S3 notification Records[0].s3.object.key {wire_key!r} is not ")
    assert f"the '%' at character {wire_key.index('%')} does not start a %XX escape" in message


def test_an_encoded_surrogate_is_not_utf8_and_is_malformed() -> None:
    # Given the UTF-8-like bytes of a lone surrogate (ED A0 80), which strict UTF-8 refuses
    message = malformed(notification_body(notification_record("a%ED%A0%80.csv")))

    assert message.endswith("does not URL-decode to UTF-8")


@pytest.mark.parametrize("in_eventbridge", [True, False], ids=["eventbridge", "notification"])
def test_a_key_with_a_lone_surrogate_is_malformed(in_eventbridge: bool) -> None:
    # Given a key holding a lone surrogate (JSON "\ud800"), which no S3 key can hold
    key = "a\ud800.csv"
    body = eventbridge_body(key) if in_eventbridge else notification_body(notification_record(key))
    assert "\\ud800" in body

    # When it is parsed, then it is refused naming the field
    message = malformed(body)
    where = "EventBridge event: detail" if in_eventbridge else "S3 notification Records[0]: s3"
    assert message.startswith(f"malformed {where}.object.key: Input should be a valid string")
    assert message.endswith("unable to parse raw data as a unicode string")


def test_keys_up_to_1024_bytes_are_accepted_and_longer_ones_are_malformed() -> None:
    # Given S3's longest key (1,024 bytes of UTF-8: "é" is two bytes) and one byte more
    longest = "é" * 512
    (event,) = parse_sqs_body(eventbridge_body(longest)).events
    assert event.key == longest

    # When a key one byte longer arrives, then it is refused with the limit
    message = malformed(eventbridge_body(longest + "x"))
    assert message == (
        "EventBridge event detail.object.key is 1025 bytes of UTF-8; S3 keys are at most 1024 bytes"
    )


# --- the fields -----------------------------------------------------------------------------


def test_an_eventbridge_event_is_normalised() -> None:
    (event,) = parse_sqs_body(eventbridge_body("sales/a.csv")).events

    assert (event.bucket, event.key, event.size, event.region) == (
        "landing",
        "sales/a.csv",
        5,
        "ca-central-1",
    )
    assert (event.etag, event.version_id, event.sequencer) == (
        "b1946ac92492d2347c6235b4d2611184",
        "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        "617f08299329d189",
    )
    assert event.event_time == datetime(2021, 11, 12, tzinfo=UTC)
    assert event.event_time.tzinfo is UTC
    assert event.event_name == "ObjectCreated:Put"


def test_a_classic_record_is_normalised() -> None:
    (event,) = parse_sqs_body(notification_body(notification_record("sales/a.csv"))).events

    assert (event.bucket, event.key, event.size, event.region) == (
        "landing",
        "sales/a.csv",
        1024,
        "us-west-2",
    )
    assert (event.etag, event.version_id, event.sequencer) == (
        "d41d8cd98f00b204e9800998ecf8427e",
        "096fKKXTRTtl3on89fVO.nfljtsv6qko",
        "0055AED6DCD90281E5",
    )
    assert event.event_time == datetime(2026, 11, 21, 10, 15, 0, 123000, tzinfo=UTC)
    assert event.event_name == "ObjectCreated:Put"


def test_size_version_and_sequencer_may_be_missing() -> None:
    body = eventbridge_body("a.csv", size=None, **{"version-id": None, "sequencer": None})

    (event,) = parse_sqs_body(body).events

    assert (event.size, event.version_id, event.sequencer) == (None, None, None)
    assert event.identity == "s3://landing/a.csv#etag=b1946ac92492d2347c6235b4d2611184#sequencer="


@pytest.mark.parametrize(
    ("reason", "event_name"),
    [
        ("CopyObject", "ObjectCreated:Copy"),
        ("CompleteMultipartUpload", "ObjectCreated:CompleteMultipartUpload"),
        ("POST Object", "ObjectCreated:Post"),
        ("SomethingNew", "ObjectCreated:SomethingNew"),
    ],
)
def test_eventbridge_reasons_map_to_notification_event_names(reason: str, event_name: str) -> None:
    document = json.loads(eventbridge_body("a.csv"))
    document["detail"]["reason"] = reason

    (event,) = parse_sqs_body(json.dumps(document)).events

    assert event.event_name == event_name


def test_several_records_keep_their_order_and_other_events_are_kept_apart() -> None:
    # Given a notification mixing created objects with a removed one
    body = notification_body(
        notification_record("one.csv"),
        notification_record("gone%2B1.csv", event_name="ObjectRemoved:Delete"),
        notification_record("two.csv", event_name="ObjectCreated:CompleteMultipartUpload"),
    )

    # When it is parsed
    parsed = parse_sqs_body(body)

    # Then the created objects are events to route, and the removal is kept, its key decoded
    assert [e.key for e in parsed.events] == ["one.csv", "two.csv"]
    assert [(o.event_name, o.key) for o in parsed.others] == [
        ("ObjectRemoved:Delete", "gone+1.csv")
    ]
    assert parsed.is_test_event is False


@pytest.mark.parametrize(
    "event_name",
    [
        "ObjectRemoved:Delete",
        "ObjectRemoved:DeleteMarkerCreated",
        "ObjectRestore:Post",
        "ObjectRestore:Completed",
        "LifecycleExpiration:Delete",
        "LifecycleTransition",
        "ObjectTagging:Put",
    ],
)
def test_a_classic_record_other_than_created_becomes_an_other_event(event_name: str) -> None:
    (other,) = parse_sqs_body(
        notification_body(notification_record("c%2B%2B+notes%2520v2.csv", event_name))
    ).others

    assert (other.bucket, other.key, other.event_name) == ("landing", TRICKY_KEY, event_name)
    assert other.source_key == f"s3://landing/{TRICKY_KEY}"
    assert (other.version_id, other.sequencer) == (
        "096fKKXTRTtl3on89fVO.nfljtsv6qko",
        "0055AED6DCD90281E5",
    )
    assert other.event_time == datetime(2026, 11, 21, 10, 15, 0, 123000, tzinfo=UTC)
    assert other.source_format == "s3-notification"
    assert other.description == event_name


def test_eventbridge_events_other_than_object_created_become_other_events() -> None:
    # Given an EventBridge "Object Deleted" event, as AWS documents it
    document = json.loads(eventbridge_body(TRICKY_KEY, size=None, etag=None))
    document["detail-type"] = "Object Deleted"
    document["detail"].update({"reason": "DeleteObject", "deletion-type": "Delete Marker Created"})

    # When it is parsed
    parsed = parse_sqs_body(json.dumps(document))

    # Then it is no event to route; the other event keeps the key as sent and says what happened
    assert parsed.events == []
    (other,) = parsed.others
    assert (other.key, other.event_name, other.source_format) == (
        TRICKY_KEY,
        "Object Deleted",
        "eventbridge",
    )
    assert other.details == ("DeleteObject", "Delete Marker Created")
    assert other.description == "Object Deleted (DeleteObject, Delete Marker Created)"


def test_an_other_event_never_shares_the_identity_of_the_created_event() -> None:
    # Given the created and the removed event of one object version, with the same sequencer
    created_record = notification_record("a.csv")
    removed_record = notification_record("a.csv", event_name="ObjectRemoved:Delete")

    (created,) = parse_sqs_body(notification_body(created_record)).events
    (removed,) = parse_sqs_body(notification_body(removed_record)).others

    # Then they are two events, and a redelivery of the removal is the same event
    assert removed.identity != created.identity
    assert removed.identity == (
        "s3-event:ObjectRemoved:Delete#s3://landing/a.csv"
        "#version=096fKKXTRTtl3on89fVO.nfljtsv6qko#sequencer=0055AED6DCD90281E5"
    )
    (again,) = parse_sqs_body(notification_body(removed_record)).others
    assert again.identity == removed.identity


def test_events_without_a_sequencer_are_told_apart_by_their_time() -> None:
    # Given two restores of one version (S3 sends no sequencer for a restore)
    first = notification_record("a.csv", event_name="ObjectRestore:Completed")
    del first["s3"]["object"]["sequencer"]
    second = json.loads(json.dumps(first))
    second["eventTime"] = "2026-12-01T08:00:00.000Z"

    (one,) = parse_sqs_body(notification_body(first)).others
    (two,) = parse_sqs_body(notification_body(second)).others

    # Then each has its own identity, which names its time
    assert one.identity.endswith("#time=2026-11-21T10:15:00.123000Z")
    assert one.identity != two.identity


def test_an_other_event_without_an_object_key_is_malformed() -> None:
    record = notification_record("a.csv", event_name="ObjectRemoved:Delete")
    del record["s3"]["object"]["key"]

    assert malformed(notification_body(record)).startswith(
        "malformed S3 notification Records[0]: s3.object.key: Field required"
    )


def test_an_sns_wrapped_notification_is_unwrapped() -> None:
    body = sns_wrapped(notification_body(notification_record("c%2B%2B+notes%2520v2.csv")))

    (event,) = parse_sqs_body(body).events

    assert event.key == TRICKY_KEY


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(
            {
                "Service": "Amazon S3",
                "Event": "s3:TestEvent",
                "Time": "2026-11-21T10:15:00.000Z",
                "Bucket": "landing",
                "RequestId": "5582815E1AEA5ADF",
                "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
            }
        ),
        sns_wrapped(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})),
    ],
    ids=["direct", "through SNS"],
)
def test_the_s3_test_event_is_recognised(body: str) -> None:
    parsed = parse_sqs_body(body)

    assert parsed.is_test_event is True
    assert parsed.events == []
    assert parsed.others == []


def test_the_s3_test_event_names_its_bucket() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "landing"})

    assert parse_sqs_body(body).test_event_bucket == "landing"


# --- refusals -------------------------------------------------------------------------------


def test_a_body_that_is_not_json_is_malformed() -> None:
    assert malformed('{"Records": [') == (
        "SQS message body is not JSON: Expecting value at line 1 column 14"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "[" * 100_000 + "]" * 100_000,
            "SQS message body nests arrays and objects too deeply to read",
        ),
        ('{"Records": [' + "9" * 5000 + "]}", "SQS message body holds a number too long to read"),
    ],
    ids=["deep", "huge-integer"],
)
def test_a_body_python_cannot_read_is_malformed_not_an_error(body: str, message: str) -> None:
    # Given JSON too deep for Python's parser, or with an integer it refuses to read
    # When it is parsed, then it is refused like any malformed body (it raised RecursionError or
    # ValueError, failing the message until the dead-letter queue)
    assert malformed(body) == message


def test_a_body_that_is_not_an_object_is_malformed() -> None:
    assert malformed("[1, 2]") == "SQS message body is JSON but not an object"


def test_an_unknown_shape_lists_the_keys_it_had() -> None:
    message = malformed(json.dumps({"hello": 1, "world": 2}))

    assert message.startswith("not an S3 event: expected an EventBridge event")
    assert message.endswith("the message's top-level keys are: hello, world")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["detail"]["object"].pop("key"),
            "malformed EventBridge event: detail.object.key: Field required",
        ),
        (
            lambda d: d.update(source="aws.ec2"),
            "malformed EventBridge event: source: Input should be 'aws.s3'",
        ),
        (
            lambda d: d["detail"]["object"].update(size="5"),
            "malformed EventBridge event: detail.object.size: Input should be a valid integer",
        ),
        (
            lambda d: d["detail"]["object"].update(size=-1),
            "malformed EventBridge event: detail.object.size: Input should be greater than or "
            "equal to 0",
        ),
        (
            lambda d: d["detail"].pop("bucket"),
            "malformed EventBridge event: detail.bucket: Field required",
        ),
        (
            lambda d: d.update(time="yesterday"),
            "malformed EventBridge event: time: Input should be a valid datetime",
        ),
    ],
)
def test_a_broken_eventbridge_event_names_the_field(change: Any, expected: str) -> None:
    document = json.loads(eventbridge_body("a.csv"))
    change(document)

    assert malformed(json.dumps(document)).startswith(expected)


@pytest.mark.parametrize(
    ("record_change", "expected"),
    [
        (
            lambda r: r["s3"]["bucket"].pop("name"),
            "malformed S3 notification Records[1]: s3.bucket.name: Field required",
        ),
        (
            lambda r: r.pop("eventName"),
            "S3 notification Records[1].eventName is missing or not a string",
        ),
        (
            lambda r: r.pop("awsRegion"),
            "malformed S3 notification Records[1]: awsRegion: Field required",
        ),
        (
            lambda r: r["s3"]["object"].update(key=""),
            "malformed S3 notification Records[1]: s3.object.key: String should have at least 1",
        ),
    ],
)
def test_a_broken_record_names_its_index_and_field(record_change: Any, expected: str) -> None:
    broken = notification_record("b.csv")
    record_change(broken)
    body = notification_body(notification_record("a.csv"), broken)

    assert malformed(body).startswith(expected)


def test_records_must_be_a_list() -> None:
    assert malformed(json.dumps({"Records": {"a": 1}})) == (
        "S3 notification field Records must be a list"
    )


def test_an_sns_message_must_be_a_string() -> None:
    body = json.dumps({"Type": "Notification", "Message": {"Records": []}})

    assert malformed(body) == "SNS notification field Message must be a JSON string"


# --- sequencers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "newer"),
    [
        ("0055AED6DCD90281E5", "0055AED6DCD90281E4", True),
        ("0055AED6DCD90281E4", "0055AED6DCD90281E5", False),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E5", False),
        ("0A", "9", True),  # padded: "0A" > "09"; compared as text unpadded, "9" would win
        ("9", "0A", False),
        ("617f08299329d189", "617F08299329D188", True),  # case does not matter
        ("00617F08299329D189", "617F08299329D189", False),  # leading zeros do not matter
    ],
)
def test_sequencers_compare_after_left_padding(a: str, b: str, newer: bool) -> None:
    assert sequencer_newer(a, b) is newer


def test_a_sequencer_that_is_not_hex_is_refused() -> None:
    with pytest.raises(ValueError, match="sequencer 'zz' is not hexadecimal"):
        sequencer_newer("zz", "01")
