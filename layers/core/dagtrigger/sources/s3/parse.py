"""Parse the body of one SQS message into S3 events: ``Object Created`` ones, and the others.

Only ``Object Created`` starts DAG runs. Any other S3 event (``ObjectRemoved:Delete``,
``ObjectRestore:Completed``, ``LifecycleExpiration:*``, EventBridge ``Object Deleted`` ...) is
parsed too, into an ``S3OtherEvent``, so the service can record that it arrived and why it
started nothing.

Three shapes arrive on the queue:

* an EventBridge event, ``{"source": "aws.s3", "detail-type": "Object Created", ...}``
  (the deployed path: bucket -> EventBridge rule -> SQS), or the same shape with the source
  ``dagtrigger.backfill``, which ``dagtrigger backfill`` sends for objects that already exist
  (``dagtrigger.sources.s3.backfill``): only ``Object Created``, and marked as a backfill;
* a classic S3 notification, ``{"Records": [{"eventName": "ObjectCreated:Put", ...}]}``,
  sent by a bucket straight to SQS, or through SNS inside ``{"Type": "Notification",
  "Message": "<json>"}``;
* ``{"Event": "s3:TestEvent"}``, which S3 sends when a queue notification is configured.

Object keys, settled with evidence:

* Classic notifications URL-encode the key, form style (space -> ``+``, ``+`` -> ``%2B``):
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
  "The s3 key provides information about the bucket and object involved in the event. The
  object key name value is URL encoded. For example, "red flower.jpg" becomes
  "red+flower.jpg"". So the key is decoded with ``unquote_plus``.
* EventBridge events carry the key as it is. The EventBridge message page
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html) says of the detail
  field only "object — Information about the Amazon S3 object involved in the event", with
  no statement that keys are encoded, unlike the page above. A fix tested against real
  buckets (aws-solutions-library-samples/guidance-for-medialake-on-aws pull request 21,
  2026-03) removed its EventBridge decoding after keys such as ``%2B++ %20.mp3`` and
  ``test+b.png`` broke: "EventBridge delivers the object key un-encoded, so it is used as-is.
  Decoding it would corrupt keys containing '+', '%', or spaces." Powertools'
  ``S3EventBridgeNotificationObject.key`` applies ``unquote_plus`` anyway, which turns
  ``c++ notes%20v2.csv`` into ``c   notes v2.csv``: that data class is not used here.
  moto's server also delivers EventBridge keys raw, as the local stack should.

Whatever the format, a key must be valid Unicode of at most 1,024 UTF-8 bytes (S3's own limit);
a classic key must also be a well-formed encoding (every ``%`` starts a ``%XX`` escape, and the
escapes spell UTF-8). Anything else could not have come from S3 and is refused as malformed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dagtrigger.clock import iso_utc
from dagtrigger.errors import RejectedError
from dagtrigger.sources.s3.backfill import BACKFILL_EVENT_NAME, BACKFILL_SOURCE
from dagtrigger.validation import field_problems, format_location

SourceFormat = Literal["eventbridge", "s3-notification"]

#: S3's limit on an object key, in UTF-8 bytes
MAX_KEY_BYTES = 1024
TEST_EVENT = "s3:TestEvent"

_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")

# EventBridge "reason" -> the classic notification's eventName, so the ledger speaks one language.
_REASON_TO_EVENT_NAME = {
    "PutObject": "ObjectCreated:Put",
    "POST Object": "ObjectCreated:Post",
    "PostObject": "ObjectCreated:Post",
    "CopyObject": "ObjectCreated:Copy",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}


class MalformedEventError(RejectedError):
    """The message is not an S3 event we understand; the message says which field and where."""

    def __init__(self, message: str) -> None:
        super().__init__("malformed_event", message)


@dataclass(frozen=True)
class S3ObjectEvent:
    """One ``Object Created`` event, normalised from EventBridge or classic S3 notifications."""

    bucket: str
    key: str  # decoded: exactly the object's key
    size: int | None
    etag: str | None
    version_id: str | None
    sequencer: str | None
    event_time: datetime
    region: str
    event_name: str
    source_format: SourceFormat
    #: sent by ``dagtrigger backfill`` for an object that already existed, not by S3
    backfill: bool = False

    @property
    def source_key(self) -> str:
        """The object's address, used to query its history."""
        return f"s3://{self.bucket}/{self.key}"

    @property
    def source_ref(self) -> dict[str, Any]:
        """The facts of the event a record keeps (its ``source_ref``)."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "etag": self.etag,
            "version_id": self.version_id,
            "sequencer": self.sequencer,
            "event_name": self.event_name,
            "format": self.source_format,
            **({"backfill": True} if self.backfill else {}),
        }

    @property
    def versioned(self) -> bool:
        """True when the event names a version (an object of a bucket with versioning on)."""
        return bool(self.version_id) and self.version_id != "null"

    @property
    def identity(self) -> str:
        """What makes two deliveries the same event: version id, else etag + sequencer."""
        if self.versioned:
            return f"s3://{self.bucket}/{self.key}#version={self.version_id}"
        return (
            f"s3://{self.bucket}/{self.key}#etag={self.etag or ''}#sequencer={self.sequencer or ''}"
        )


@dataclass(frozen=True)
class S3OtherEvent:
    """An S3 event other than ``Object Created`` (removed, restored, expired, tagged ...).

    It starts nothing; it is recorded so that an object's history shows that it arrived.
    ``event_name`` is the classic ``eventName`` or EventBridge's ``detail-type``; ``details``
    holds EventBridge's ``reason`` and ``deletion-type`` where it sends them.
    """

    bucket: str
    key: str  # decoded: exactly the object's key
    version_id: str | None
    sequencer: str | None
    event_time: datetime
    region: str
    event_name: str
    source_format: SourceFormat
    details: tuple[str, ...] = ()

    @property
    def source_key(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def identity(self) -> str:
        """What makes two deliveries the same event.

        Never equal to an ``S3ObjectEvent`` identity (which starts with ``s3://``). S3 sends a
        sequencer only for puts and deletes; other events (a restore can happen many times to
        one version) are told apart by their time, which a redelivery repeats.
        """
        parts = [f"s3-event:{self.event_name}", self.source_key]
        if self.version_id and self.version_id != "null":
            parts.append(f"version={self.version_id}")
        if self.sequencer:
            parts.append(f"sequencer={self.sequencer}")
        else:
            parts.append(f"time={iso_utc(self.event_time)}")
        return "#".join(parts)

    @property
    def description(self) -> str:
        """``ObjectRemoved:Delete``, or ``Object Deleted (DeleteObject, Delete Marker Created)``."""
        if not self.details:
            return self.event_name
        return f"{self.event_name} ({', '.join(self.details)})"


@dataclass(frozen=True)
class ParsedS3Message:
    events: list[S3ObjectEvent] = field(default_factory=list)
    #: the events that are not Object Created, in the order they came
    others: list[S3OtherEvent] = field(default_factory=list)
    is_test_event: bool = False
    #: the bucket an ``s3:TestEvent`` names (S3 sends one when a notification is configured)
    test_event_bucket: str | None = None


# ---------------------------------------------------------------------------------------------
# Wire models: only the fields we use, strict where a wrong type would mislead
# ---------------------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


Size = Annotated[int, Field(strict=True, ge=0)]
Text = Annotated[str, Field(min_length=1)]


class _Bucket(_Wire):
    name: Text


class _EventBridgeObject(_Wire):
    key: Text
    size: Size | None = None
    etag: str | None = None
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = None


class _EventBridgeDetail(_Wire):
    bucket: _Bucket
    object_: _EventBridgeObject = Field(alias="object")
    reason: str | None = None
    deletion_type: str | None = Field(default=None, alias="deletion-type")


class _EventBridgeEvent(_Wire):
    source: Literal["aws.s3", "dagtrigger.backfill"]
    detail_type: str = Field(alias="detail-type")
    time: datetime
    region: Text
    detail: _EventBridgeDetail


class _NotificationObject(_Wire):
    key: Text
    size: Size | None = None
    etag: str | None = Field(default=None, alias="eTag")
    version_id: str | None = Field(default=None, alias="versionId")
    sequencer: str | None = None


class _NotificationS3(_Wire):
    bucket: _Bucket
    object_: _NotificationObject = Field(alias="object")


class _NotificationRecord(_Wire):
    event_name: Text = Field(alias="eventName")
    event_time: datetime = Field(alias="eventTime")
    aws_region: Text = Field(alias="awsRegion")
    s3: _NotificationS3


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def parse_sqs_body(body: str) -> ParsedS3Message:
    """The S3 events in one SQS message body; raises ``MalformedEventError``."""
    document = _json_object(body, "SQS message body")
    if document.get("Type") == "Notification" and "Message" in document:
        message = document["Message"]
        if not isinstance(message, str):
            raise MalformedEventError("SNS notification field Message must be a JSON string")
        document = _json_object(message, "SNS notification Message")
    if document.get("Event") == TEST_EVENT:
        bucket = document.get("Bucket")
        return ParsedS3Message(
            is_test_event=True, test_event_bucket=bucket if isinstance(bucket, str) else None
        )
    if "detail-type" in document or "detail" in document:
        return _parse_eventbridge(document)
    if "Records" in document:
        return _parse_notification(document)
    keys = ", ".join(sorted(map(str, document))[:10]) or "none"
    raise MalformedEventError(
        "not an S3 event: expected an EventBridge event (detail-type, detail), an S3 "
        f"notification (Records) or an s3:TestEvent; the message's top-level keys are: {keys}"
    )


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedEventError(
            f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:  # Python's parser recurses once per level
        raise MalformedEventError(f"{what} nests arrays and objects too deeply to read") from None
    except ValueError:  # Python refuses to read an integer of more than 4,300 digits
        raise MalformedEventError(f"{what} holds a number too long to read") from None
    if not isinstance(document, dict):
        raise MalformedEventError(f"{what} is JSON but not an object")
    return document


def _parse_eventbridge(document: dict[str, Any]) -> ParsedS3Message:
    try:
        event = _EventBridgeEvent.model_validate(document)
    except ValidationError as exc:
        raise MalformedEventError(_describe("EventBridge event", exc)) from None
    detail = event.detail
    key = _checked_key(detail.object_.key, "EventBridge event detail.object.key")  # sent as is
    backfill = event.source == BACKFILL_SOURCE
    if backfill and event.detail_type != "Object Created":
        raise MalformedEventError(
            f"a {BACKFILL_SOURCE} event is an Object Created event, not {event.detail_type!r}"
        )
    if event.detail_type != "Object Created":
        details = tuple(value for value in (detail.reason, detail.deletion_type) if value)
        other = _other_event(
            detail, key, event.time, event.region, event.detail_type, "eventbridge", details
        )
        return ParsedS3Message(others=[other])
    reason = detail.reason or ""
    event_name = _REASON_TO_EVENT_NAME.get(reason, f"ObjectCreated:{reason or '*'}")
    if backfill:
        event_name = BACKFILL_EVENT_NAME
    created = _object_event(detail, key, event.time, event.region, event_name, "eventbridge")
    return ParsedS3Message(events=[replace(created, backfill=backfill)])


def _parse_notification(document: dict[str, Any]) -> ParsedS3Message:
    records = document["Records"]
    if not isinstance(records, list):
        raise MalformedEventError("S3 notification field Records must be a list")
    events: list[S3ObjectEvent] = []
    others: list[S3OtherEvent] = []
    for index, record in enumerate(records):
        where = f"S3 notification Records[{index}]"
        if not isinstance(record, dict):
            raise MalformedEventError(f"{where} must be an object")
        event_name = record.get("eventName")
        if not isinstance(event_name, str):
            raise MalformedEventError(f"{where}.eventName is missing or not a string")
        try:
            parsed = _NotificationRecord.model_validate(record)
        except ValidationError as exc:
            raise MalformedEventError(_describe(where, exc)) from None
        key = decode_notification_key(parsed.s3.object_.key, f"{where}.s3.object.key")
        time, region = parsed.event_time, parsed.aws_region
        if event_name.startswith("ObjectCreated:"):
            events.append(
                _object_event(parsed.s3, key, time, region, event_name, "s3-notification")
            )
        else:
            others.append(_other_event(parsed.s3, key, time, region, event_name, "s3-notification"))
    return ParsedS3Message(events=events, others=others)


def decode_notification_key(wire_key: str, where: str) -> str:
    """The key a classic notification sends form-encoded (``+`` for a space), decoded.

    Raises ``MalformedEventError`` (naming ``where``) for an encoding S3 cannot have produced: a
    ``%`` that starts no ``%XX`` escape, escapes that do not spell UTF-8, or a key that breaks
    the rules of ``_checked_key``.
    """
    bare = _BARE_PERCENT.search(wire_key)
    if bare is not None:
        raise MalformedEventError(
            f"{where} {_shown(wire_key)} is not URL-encoded as S3 encodes keys: the '%' at "
            f"character {bare.start()} does not start a %XX escape"
        )
    try:
        key = unquote_plus(wire_key, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise MalformedEventError(
            f"{where} {_shown(wire_key)} does not URL-decode to UTF-8"
        ) from None
    return _checked_key(key, where)


def _checked_key(key: str, where: str) -> str:
    """``key`` if S3 could hold it: at most 1,024 bytes of UTF-8.

    Lone surrogates never get this far: pydantic refuses them in every string field, and strict
    UTF-8 decoding cannot produce them.
    """
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise MalformedEventError(
            f"{where} is {size} bytes of UTF-8; S3 keys are at most {MAX_KEY_BYTES} bytes"
        )
    return key


def _shown(key: str, limit: int = 200) -> str:
    """The key as a Python literal (control characters escaped), cut short."""
    return repr(key) if len(key) <= limit else repr(key[:limit]) + "..."


def _object_event(
    s3: _EventBridgeDetail | _NotificationS3,
    key: str,
    event_time: datetime,
    region: str,
    event_name: str,
    source_format: SourceFormat,
) -> S3ObjectEvent:
    """The event for the object ``s3`` names, its ``key`` already as S3 stores it."""
    return S3ObjectEvent(
        bucket=s3.bucket.name,
        key=key,
        size=s3.object_.size,
        etag=s3.object_.etag,
        version_id=s3.object_.version_id,
        sequencer=s3.object_.sequencer,
        event_time=_aware(event_time),
        region=region,
        event_name=event_name,
        source_format=source_format,
    )


def _other_event(
    s3: _EventBridgeDetail | _NotificationS3,
    key: str,
    event_time: datetime,
    region: str,
    event_name: str,
    source_format: SourceFormat,
    details: tuple[str, ...] = (),
) -> S3OtherEvent:
    """The other event for the object ``s3`` names, its ``key`` already as S3 stores it."""
    return S3OtherEvent(
        bucket=s3.bucket.name,
        key=key,
        version_id=s3.object_.version_id,
        sequencer=s3.object_.sequencer,
        event_time=_aware(event_time),
        region=region,
        event_name=event_name,
        source_format=source_format,
        details=details,
    )


def _describe(where: str, exc: ValidationError) -> str:
    problems = "; ".join(
        f"{format_location(problem.location)}: {problem.message}" for problem in field_problems(exc)
    )
    return f"malformed {where}: {problems}"


def _aware(moment: datetime) -> datetime:
    """In UTC; a time without a zone is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def sequencer_newer(a: str, b: str) -> bool:
    """True if sequencer ``a`` orders after ``b`` (same key).

    S3 sequencers are hexadecimal strings of varying length; AWS says to compare them after
    left-padding the shorter with zeros. Raises ``ValueError`` for a value that is not hex.
    """
    for value in (a, b):
        if not _HEX.match(value):
            raise ValueError(f"sequencer {value!r} is not hexadecimal")
    width = max(len(a), len(b))
    return a.upper().zfill(width) > b.upper().zfill(width)
