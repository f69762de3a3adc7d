"""Backfill events: objects that already exist, sent through the path of a new object.

``dagtrigger backfill`` lists a bucket and sends each object to the S3 queue as the EventBridge
``Object Created`` event EventBridge would have delivered, with two differences that say where
it comes from: its ``source`` is ``dagtrigger.backfill`` (EventBridge refuses custom events
whose source starts with ``aws.``, so nothing but a backfill sends it) and its
``detail.reason`` is ``dagtrigger-backfill``. The parser accepts that source explicitly
(``dagtrigger.sources.s3.parse``) and marks the event as a backfill.

A listing does not know S3's ``sequencer``: in a versioned bucket the version id is the
object's identity, as in the real event; in an unversioned bucket the s3 service finds the
object's own event in its history instead (``dagtrigger.sources.s3.service``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from dagtrigger.clock import iso_utc

BACKFILL_SOURCE: Final = "dagtrigger.backfill"
BACKFILL_REASON: Final = "dagtrigger-backfill"
#: what the ledger records as the event's name (a classic notification's ``eventName``)
BACKFILL_EVENT_NAME: Final = "ObjectCreated:Backfill"
_EVENT_ID_NAMESPACE: Final = uuid.UUID("0b6f3c2e-4d1a-4e8f-9a7b-2c5d8e1f3a40")


def backfill_event(
    *,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    version_id: str | None,
    last_modified: datetime,
    region: str,
) -> dict[str, Any]:
    """The ``Object Created`` event of an object as a listing describes it (S3's ``ETag``
    keeps its quotes in a listing; the event's ``etag`` has none)."""
    obj: dict[str, Any] = {"key": key, "size": size, "etag": etag.strip('"')}
    if version_id is not None:
        obj["version-id"] = version_id
    identity = f"{bucket}/{key}#{version_id or ''}#{obj['etag']}"
    return {
        "version": "0",
        # the same object always gets the same id: a rerun sends the same event again
        "id": str(uuid.uuid5(_EVENT_ID_NAMESPACE, identity)),
        "detail-type": "Object Created",
        "source": BACKFILL_SOURCE,
        "time": iso_utc(last_modified),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "reason": BACKFILL_REASON,
        },
    }
