"""Making moto's S3 EventBridge event what AWS sends.

moto's server builds the EventBridge ``Object Created`` event from the example in the S3
documentation (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html) and
keeps some of the example's constants. Measured with moto 5.2.5 (put two objects, read the
SQS target):

* ``id`` is always ``17793124-05d4-b198-2fde-7ededc63b103``: AWS sends a new UUID per event;
* ``detail.object.sequencer`` is always ``617f08299329d189``: AWS sends a hexadecimal value
  that grows with each event for one key (that is what it is for);
* ``detail.request-id`` is always ``N4N7GDK58NMKJ12R``: AWS sends the S3 request id;
* ``detail.object.eTag``: AWS spells it ``etag`` in EventBridge events;
* ``detail.reason`` is ``ObjectCreated``: AWS sends the API call (``PutObject``,
  ``CopyObject``, ...). moto emits the event for PutObject and CopyObject only and does not
  say which; ``PutObject`` is used, the common case.

The object key itself is left as moto sends it: AWS delivers the key of an EventBridge
event as it is, not URL-encoded (evidence in ``dagtrigger.sources.s3.parse``' docstring), and so
does moto.

The transform runs when the runner reads a message from the queue, before the handler sees
it. It recognises moto's events by the constant sequencer and leaves every other body
untouched. A message read again (a retry) gets the same values as the first time, as a
redelivered AWS message would.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from typing import Any, Final

MOTO_CONSTANT_SEQUENCER: Final = "617f08299329d189"
_REMEMBERED_MESSAGES: Final = 100_000
_SEQUENCER_COUNTER_BITS: Final = 20
_EVENT_ID_NAMESPACE: Final = uuid.UUID("5a0f1c3e-8e1c-4f9a-9a43-3d1f6f3b8f10")


class MotoS3EventFidelity:
    """Rewrites moto's S3 EventBridge events in SQS messages into the shape AWS sends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: OrderedDict[str, str] = OrderedDict()
        self._last_sequencer: dict[tuple[str, str], int] = {}

    def apply(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message (as ReceiveMessage returns it), its body made AWS-like if it is moto's."""
        body = message.get("Body", "")
        event = _moto_s3_event(body)
        if event is None:
            return message
        message_id = str(message.get("MessageId", ""))
        with self._lock:
            fixed_body = self._bodies.get(message_id)
            if fixed_body is None:
                sent_ms = int((message.get("Attributes") or {}).get("SentTimestamp", 0))
                fixed_body = json.dumps(self._fix(event, message_id, sent_ms))
                self._remember(message_id, fixed_body)
        return {
            **message,
            "Body": fixed_body,
            "MD5OfBody": hashlib.md5(fixed_body.encode(), usedforsecurity=False).hexdigest(),
        }

    def _fix(self, event: dict[str, Any], message_id: str, sent_ms: int) -> dict[str, Any]:
        detail = event["detail"]
        obj = dict(detail["object"])
        if "eTag" in obj:
            obj["etag"] = obj.pop("eTag")
        obj["sequencer"] = self._next_sequencer(detail["bucket"]["name"], obj["key"], sent_ms)
        fixed_detail = {**detail, "object": obj, "request-id": _request_id(message_id)}
        if fixed_detail.get("reason") == "ObjectCreated":
            fixed_detail["reason"] = "PutObject"
        return {
            **event,
            "id": str(uuid.uuid5(_EVENT_ID_NAMESPACE, message_id)),
            "detail": fixed_detail,
        }

    def _next_sequencer(self, bucket: str, key: str, sent_ms: int) -> str:
        candidate = sent_ms << _SEQUENCER_COUNTER_BITS
        last = self._last_sequencer.get((bucket, key), -1)
        value = max(candidate, last + 1)
        self._last_sequencer[(bucket, key)] = value
        return f"{value:016x}"

    def _remember(self, message_id: str, body: str) -> None:
        self._bodies[message_id] = body
        if len(self._bodies) > _REMEMBERED_MESSAGES:
            self._bodies.popitem(last=False)


def _moto_s3_event(body: str) -> dict[str, Any] | None:
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("source") != "aws.s3":
        return None
    detail = event.get("detail")
    if not isinstance(detail, dict) or not isinstance(detail.get("object"), dict):
        return None
    if detail["object"].get("sequencer") != MOTO_CONSTANT_SEQUENCER:
        return None
    return event


def _request_id(message_id: str) -> str:
    # S3 request ids are 16 upper-case alphanumerics; derive one so a retry keeps it.
    return hashlib.sha256(message_id.encode()).hexdigest()[:16].upper()
