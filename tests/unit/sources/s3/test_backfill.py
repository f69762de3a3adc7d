"""Backfill events: existing objects sent through the path of a new object, never run twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import TriggerFailedError
from dagtrigger.ledger import TriggerStatus
from dagtrigger.sources.s3.backfill import backfill_event
from dagtrigger.sources.s3.parse import MalformedEventError, parse_sqs_body
from dagtrigger.sources.s3.service import handle_s3_message
from tests.unit.conftest import build_routes_yaml, s3_route

KEY = "sales/2026-11-21.csv"
ETAG = "b1946ac92492d2347c6235b4d2611184"
#: the listing's LastModified: a second before the time of the event S3 sent
LANDED = datetime(2026, 11, 21, 1, 59, 59, tzinfo=UTC)


def s3_event_body(key: str = KEY, *, etag: str = ETAG, version_id: str | None = None) -> str:
    """The Object Created event S3 sent when the object landed (EventBridge to SQS)."""
    obj: dict[str, Any] = {"key": key, "size": 42, "etag": etag, "sequencer": "00617F0829932"}
    if version_id is not None:
        obj["version-id"] = version_id
    return json.dumps(
        {
            "version": "0",
            "id": "0b7c5b8e-9a34-4f0c-8d5e-2f4c1a9b7e61",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2026-11-21T02:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:s3:::landing"],
            "detail": {
                "version": "0",
                "bucket": {"name": "landing"},
                "object": obj,
                "reason": "PutObject",
            },
        }
    )


def backfill_body(key: str = KEY, *, etag: str = ETAG, version_id: str | None = None) -> str:
    """What `dagtrigger backfill` sends for the object, from a listing (quoted ETag)."""
    event = backfill_event(
        bucket="landing",
        key=key,
        size=42,
        etag=f'"{etag}"',
        version_id=version_id,
        last_modified=LANDED,
        region="us-east-1",
    )
    return json.dumps(event)


def object_records(deps: Dependencies, key: str = KEY) -> list[dict[str, Any]]:
    return deps.ledger.query_by_source(f"s3://landing/{key}").items


# ------------------------------------------------------------------------------------ parsing


def test_a_backfill_event_parses_as_an_object_created_event_marked_as_a_backfill() -> None:
    # Given the backfill event of an object whose key is easy to mangle, in a versioned bucket
    body = backfill_body("sales/c++ notes%20v2.csv", version_id="3HL4kqtJlcpXroDTDmjVBH40Nrjfkd")

    # When the s3 function parses it
    (event,) = parse_sqs_body(body).events

    # Then it is the object's event, key as stored, etag unquoted, marked as a backfill
    assert event.backfill
    assert (event.bucket, event.key, event.size) == ("landing", "sales/c++ notes%20v2.csv", 42)
    assert event.etag == ETAG
    assert event.version_id == "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"
    assert event.sequencer is None
    assert event.event_time == LANDED
    assert event.event_name == "ObjectCreated:Backfill"
    # And its identity is the version's, as the object's own event had it
    (own,) = parse_sqs_body(
        s3_event_body("sales/c++ notes%20v2.csv", version_id="3HL4kqtJlcpXroDTDmjVBH40Nrjfkd")
    ).events
    assert event.identity == own.identity
    assert not own.backfill


def test_a_backfill_source_with_another_detail_type_is_malformed() -> None:
    document = json.loads(backfill_body())
    document["detail-type"] = "Object Deleted"

    with pytest.raises(MalformedEventError, match="is an Object Created event"):
        parse_sqs_body(json.dumps(document))


def test_an_event_from_another_source_is_still_malformed() -> None:
    document = json.loads(backfill_body())
    document["source"] = "my.backfill"

    with pytest.raises(MalformedEventError, match="source"):
        parse_sqs_body(json.dumps(document))


# ------------------------------------------------------------------------- versioned buckets


def test_a_backfill_of_a_version_that_already_ran_starts_nothing(
    deps: Dependencies, transport: Any
) -> None:
    # Given an object whose own event started its run
    handle_s3_message(s3_event_body(version_id="v1"), deps)

    # When a backfill sends it again, twice
    handle_s3_message(backfill_body(version_id="v1"), deps)
    handle_s3_message(backfill_body(version_id="v1"), deps)

    # Then the ledger counted both as deliveries of that event: one record, one run
    assert len(transport.calls) == 1
    (record,) = object_records(deps)
    assert (record["status"], record["deliveries"]) == ("TRIGGERED", 3)


def test_a_backfill_of_a_failed_trigger_retries_it_with_its_recorded_run_id(
    deps: Dependencies, transport: Any, answers: Any
) -> None:
    # Given an object whose own event failed during an outage
    transport.answers.extend([answers.server_error] * 20)
    with pytest.raises(TriggerFailedError):
        handle_s3_message(s3_event_body(version_id="v1"), deps)
    failed_run_ids = {call.dag_run_id for call in transport.calls}
    transport.answers.clear()

    # When a backfill sends it after the outage (its event time is the object's, not the event's)
    handle_s3_message(backfill_body(version_id="v1"), deps)

    # Then the trigger was retried in place: Airflow only ever saw the recorded run id
    assert len(failed_run_ids) == 1
    assert {call.dag_run_id for call in transport.calls} == failed_run_ids
    (record,) = object_records(deps)
    assert record["status"] == "TRIGGERED"


# ----------------------------------------------------------------------- unversioned buckets


def test_a_backfill_of_an_unversioned_object_that_already_ran_starts_nothing(
    deps: Dependencies, transport: Any
) -> None:
    # Given an object of an unversioned bucket whose own event started its run
    handle_s3_message(s3_event_body(), deps)

    # When a backfill sends it (a listing knows its etag, not S3's sequencer), twice
    handle_s3_message(backfill_body(), deps)
    handle_s3_message(backfill_body(), deps)

    # Then both are deliveries of the object's own event: no second record, no second run
    assert len(transport.calls) == 1
    (record,) = object_records(deps)
    assert (record["status"], record["deliveries"]) == ("TRIGGERED", 3)


def test_a_backfill_of_an_unversioned_object_whose_trigger_failed_retries_it_in_place(
    deps: Dependencies, transport: Any, answers: Any
) -> None:
    transport.answers.extend([answers.server_error] * 20)
    with pytest.raises(TriggerFailedError):
        handle_s3_message(s3_event_body(), deps)
    failed_run_ids = {call.dag_run_id for call in transport.calls}
    transport.answers.clear()

    handle_s3_message(backfill_body(), deps)

    assert {call.dag_run_id for call in transport.calls} == failed_run_ids
    (record,) = object_records(deps)
    assert record["status"] == "TRIGGERED"


def test_a_backfill_of_an_unversioned_object_no_event_recorded_runs_once(
    deps: Dependencies, transport: Any
) -> None:
    # Given an object that landed before dagtrigger was deployed
    # When a backfill sends it, and is run again later
    handle_s3_message(backfill_body(), deps)
    handle_s3_message(backfill_body(), deps)

    # Then one run, recorded as a backfill
    assert len(transport.calls) == 1
    (record,) = object_records(deps)
    assert record["source_ref"]["backfill"] is True
    assert record["deliveries"] == 2


def test_an_unversioned_object_overwritten_with_new_content_is_backfilled(
    deps: Dependencies, transport: Any
) -> None:
    # Given an object whose first content ran, then was overwritten while its event was lost
    handle_s3_message(s3_event_body(etag=ETAG), deps)

    # When a backfill sends its current content
    handle_s3_message(backfill_body(etag="0cc175b9c0f1b6a831c399e269772661"), deps)

    # Then the new content starts its run
    assert len(transport.calls) == 2


@pytest.mark.parametrize("version_id", ["v1", None], ids=["versioned", "unversioned"])
def test_an_object_that_landed_unrouted_runs_once_a_route_matches_it(
    make_deps: Callable[..., Dependencies],
    routes_file: Path,
    transport: Any,
    version_id: str | None,
) -> None:
    # Given an object that landed while no route matched it (recorded IGNORED no_route)
    routes_file.write_text(build_routes_yaml(s3_route("csv", prefix="nowhere/")))
    handle_s3_message(s3_event_body(version_id=version_id), make_deps())
    assert [record["reject_code"] for record in object_records(make_deps())] == ["no_route"]

    # When the route is fixed and a backfill sends the object, twice
    routes_file.write_text(build_routes_yaml(s3_route("csv", prefix="sales/")))
    deps = make_deps()
    handle_s3_message(backfill_body(version_id=version_id), deps)
    handle_s3_message(backfill_body(version_id=version_id), deps)

    # Then it starts one run on the route, beside its ignored record
    assert len(transport.calls) == 1
    statuses = sorted(str(record["status"]) for record in object_records(deps))
    assert statuses == [TriggerStatus.IGNORED, TriggerStatus.TRIGGERED]
