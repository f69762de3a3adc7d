"""The S3 path end to end inside one process: SQS batch -> routes -> ledger -> transport."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dagtrigger import ids
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import TriggerFailedError
from dagtrigger.observability import MetricName, metrics
from dagtrigger.sources.s3.parse import parse_sqs_body
from dagtrigger.sources.s3.service import handle_s3_message, process_s3_batch

EVENTS = Path(__file__).resolve().parents[4] / "events" / "s3_events"


def load_batch(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def eventbridge_body(
    key: str, *, bucket: str = "landing", version: str = "v1", size: int = 42
) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2026-11-21T02:00:00Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket},
                "object": {
                    "key": key,
                    "size": size,
                    "etag": "b1946ac92492d2347c6235b4d2611184",
                    "version-id": version,
                    "sequencer": "00617F08299329D189",
                },
                "request-id": "N4N7GDK58NMKJ12R",
                "requester": "111122223333",
                "reason": "PutObject",
            },
        }
    )


def only_record(deps: Dependencies, body: str, route: str = "sales-csv") -> dict[str, Any]:
    event = parse_sqs_body(body).events[0]
    record = deps.ledger.get(ids.trigger_id(event.identity, route))
    assert record is not None, f"no ledger record for {event.source_key} on route {route}"
    return record


@pytest.mark.parametrize(
    "sample", ["eventbridge_object_created.json", "classic_notification.json", "tricky_keys.json"]
)
def test_each_sample_batch_starts_one_run_per_unique_object(
    sample: str, deps: Dependencies, transport: Any
) -> None:
    # Given a real-shaped SQS batch from events/ and the objects it should start runs for
    batch = load_batch(sample)
    expected = json.loads((EVENTS / "expected.json").read_text(encoding="utf-8"))[sample]

    # When the batch is processed
    response = process_s3_batch(batch, None, deps)  # type: ignore[arg-type]

    # Then nothing failed and each unique object started exactly one run with its decoded key
    assert response == {"batchItemFailures": []}
    triggered = sorted((call.conf["bucket"], call.conf["key"]) for call in transport.calls)
    assert triggered == sorted((obj["bucket"], obj["key"]) for obj in expected)
    for call in transport.calls:
        assert call.dag_id == "ingest_sales"
        assert call.conf["version_id"] in {obj["version_id"] for obj in expected}
    # And every object's record says TRIGGERED
    for record in batch["Records"]:
        assert only_record(deps, record["body"])["status"] == "TRIGGERED"


def test_duplicate_delivery_in_tricky_keys_is_counted_not_triggered(
    deps: Dependencies, transport: Any
) -> None:
    # Given the tricky-keys batch, which delivers one object twice
    batch = load_batch("tricky_keys.json")
    identities = [parse_sqs_body(r["body"]).events[0].identity for r in batch["Records"]]
    duplicated = {i for i in identities if identities.count(i) > 1}
    assert duplicated, "the sample must contain a duplicate delivery"

    # When it is processed
    process_s3_batch(batch, None, deps)  # type: ignore[arg-type]

    # Then the duplicated object's record counts every delivery and says TRIGGERED once
    for identity in duplicated:
        record = deps.ledger.get(ids.trigger_id(identity, "sales-csv"))
        assert record is not None
        assert record["status"] == "TRIGGERED"
        assert record["deliveries"] == identities.count(identity)
    assert len(transport.calls) == len(set(identities))


def test_s3_test_event_is_acknowledged_and_starts_nothing(
    deps: Dependencies, transport: Any
) -> None:
    response = process_s3_batch(load_batch("test_event.json"), None, deps)  # type: ignore[arg-type]

    assert response == {"batchItemFailures": []}
    assert transport.calls == []


@pytest.mark.usefixtures("atomic_requests")
def test_fifty_concurrent_deliveries_start_exactly_one_run(
    deps: Dependencies, transport: Any
) -> None:
    # Given one object event delivered 50 times at once
    body = eventbridge_body("sales/2026-11-21.csv")

    # When 50 workers handle it concurrently
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda _: handle_s3_message(body, deps), range(50)))

    # Then Airflow was called once and one record counts 50 deliveries
    assert len(transport.calls) == 1
    record = only_record(deps, body)
    assert record["status"] == "TRIGGERED"
    assert record["deliveries"] == 50
    by_source = deps.ledger.query_by_source("s3://landing/sales/2026-11-21.csv")
    assert len(by_source.items) == 1


def test_a_409_on_our_run_id_is_recorded_as_triggered(
    deps: Dependencies, transport: Any, answers: Any
) -> None:
    # Given Airflow already has a run with our run id (a lost ledger write, say)
    transport.answers.append(answers.already_exists)
    body = eventbridge_body("sales/2026-11-21.csv")

    # When the event is handled
    outcomes = handle_s3_message(body, deps)

    # Then it is a success, recorded as TRIGGERED and marked as already existing
    assert [o.disposition for o in outcomes] == ["already_triggered"]
    record = only_record(deps, body)
    assert record["status"] == "TRIGGERED"
    assert record["already_existed"] is True
    assert "last_error" not in record


def test_unknown_dag_is_rejected_with_airflows_message_and_acknowledged(
    deps: Dependencies, transport: Any, answers: Any
) -> None:
    transport.answers.append(answers.dag_not_found)
    body = eventbridge_body("sales/2026-11-21.csv")

    outcomes = handle_s3_message(body, deps)

    assert [o.disposition for o in outcomes] == ["rejected"]
    record = only_record(deps, body)
    assert record["status"] == "REJECTED"
    assert record["reject_code"] == "dag_not_found"
    assert "ingest_sales" in record["reason"]
    assert "was not found" in record["reason"]


def test_throttling_then_success_triggers_once_with_two_attempts(
    deps: Dependencies, transport: Any, answers: Any
) -> None:
    transport.answers.append(answers.throttled)
    body = eventbridge_body("sales/2026-11-21.csv")

    handle_s3_message(body, deps)

    record = only_record(deps, body)
    assert record["status"] == "TRIGGERED"
    assert record["attempts"] == 2
    assert len(transport.calls) == 2


def test_5xx_past_the_budget_fails_the_message_and_records_trigger_failed(
    deps: Dependencies, transport: Any, answers: Any
) -> None:
    # Given Airflow keeps answering 503 for longer than the retry budget
    transport.answers.extend([answers.server_error] * 1000)
    batch = {
        "Records": [
            sqs_record("m-fails", eventbridge_body("sales/2026-11-21.csv")),
            sqs_record("m-ok", eventbridge_body("sales/other.csv", bucket="elsewhere")),
        ]
    }

    # When the batch is processed
    response = process_s3_batch(batch, None, deps)  # type: ignore[arg-type]

    # Then only that message is reported failed, so SQS redelivers it (and finally dead-letters it)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-fails"}]}
    record = only_record(deps, batch["Records"][0]["body"])
    assert record["status"] == "TRIGGER_FAILED"
    assert record["attempts"] >= 2
    assert "503" in record["last_error"]

    # And when Airflow recovers, the redelivered message triggers it
    transport.answers.clear()
    handle_s3_message(batch["Records"][0]["body"], deps)
    record = only_record(deps, batch["Records"][0]["body"])
    assert record["status"] == "TRIGGERED"
    assert record["deliveries"] == 2


def test_refused_access_keeps_the_event_for_a_retry_and_raises_the_alarm_metric(
    deps: Dependencies, transport: Any, answers: Any
) -> None:
    # Given a role MWAA refuses (a broken IAM policy, a rotated credential)
    transport.answers.append(answers.access_refused)
    body = eventbridge_body("sales/2026-11-21.csv")
    refused_before = len(metrics.metric_set.get(MetricName.ACCESS_REFUSED, {}).get("Value", []))

    # When the object's message is handled
    with pytest.raises(TriggerFailedError) as raised:
        handle_s3_message(body, deps)

    # Then the message fails (SQS redelivers it, then dead-letters it): the event is not rejected,
    # Airflow was asked once (a retry within seconds cannot fix a role), and the alarm's metric
    # is published
    assert raised.value.access_refused
    record = only_record(deps, body)
    assert record["status"] == "TRIGGER_FAILED"
    assert "AccessDeniedException" in record["last_error"]
    assert len(transport.calls) == 1
    refused = metrics.metric_set[MetricName.ACCESS_REFUSED]["Value"]
    assert len(refused) == refused_before + 1

    # And once the role is fixed, the redelivered message starts the run
    (outcome,) = handle_s3_message(body, deps)
    assert outcome.record["status"] == "TRIGGERED"


def test_trigger_failed_error_propagates_from_the_message_handler(
    deps: Dependencies, transport: Any, answers: Any
) -> None:
    transport.answers.extend([answers.server_error] * 1000)

    with pytest.raises(TriggerFailedError):
        handle_s3_message(eventbridge_body("sales/2026-11-21.csv"), deps)


def test_non_object_conf_is_rejected_with_the_reason(deps: Dependencies, transport: Any) -> None:
    body = eventbridge_body("broken/file.bin")

    outcomes = handle_s3_message(body, deps)

    assert [o.disposition for o in outcomes] == ["rejected"]
    record = only_record(deps, body, route="bad-conf")
    assert record["reject_code"] == "conf_not_object"
    assert "bad-conf" in record["reason"]
    assert transport.calls == []


def test_paused_route_and_unrouted_objects_are_recorded_as_ignored(
    deps: Dependencies, transport: Any
) -> None:
    paused = eventbridge_body("2026/objects.tar", bucket="archive")
    unrouted = eventbridge_body("misc/readme.txt")

    handle_s3_message(paused, deps)
    handle_s3_message(unrouted, deps)

    assert transport.calls == []
    paused_record = only_record(deps, paused, route="archive-everything")
    assert paused_record["status"] == "IGNORED"
    assert "paused" in paused_record["reason"]
    unrouted_record = only_record(deps, unrouted, route="")
    assert unrouted_record["status"] == "IGNORED"
    assert unrouted_record["reject_code"] == "no_route"


def test_unrouted_objects_leave_no_record_when_ignored_recording_is_off(
    make_deps: Callable[..., Dependencies], transport: Any
) -> None:
    deps = make_deps(record_ignored=False)
    body = eventbridge_body("misc/readme.txt")

    assert handle_s3_message(body, deps) == []
    event = parse_sqs_body(body).events[0]
    assert deps.ledger.get(ids.trigger_id(event.identity, "")) is None


def classic_body(key: str, event_name: str, *, sequencer: str | None = "0055AED6DCD90281E5") -> str:
    """A classic S3 notification of one record (the key as S3 sends it, form-encoded)."""
    obj: dict[str, Any] = {"key": key, "versionId": "v1"}
    if sequencer is not None:
        obj["sequencer"] = sequencer
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T10:15:00.123Z",
        "eventName": event_name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "landing"}, "object": obj},
    }
    return json.dumps({"Records": [record]})


def object_deleted_body(key: str) -> str:
    """EventBridge's "Object Deleted", as AWS documents it."""
    document = json.loads(eventbridge_body(key))
    document["detail-type"] = "Object Deleted"
    document["detail"]["object"] = {"key": key, "version-id": "v2", "sequencer": "00617F0829A"}
    document["detail"].update({"reason": "DeleteObject", "deletion-type": "Permanently Deleted"})
    return json.dumps(document)


@pytest.mark.parametrize(
    ("body", "event_name", "described_as"),
    [
        (
            classic_body("sales/2026-11-21.csv", "ObjectRemoved:Delete"),
            "ObjectRemoved:Delete",
            "S3 event ObjectRemoved:Delete is not Object Created",
        ),
        (
            classic_body("sales/2026-11-21.csv", "ObjectRestore:Completed", sequencer=None),
            "ObjectRestore:Completed",
            "S3 event ObjectRestore:Completed is not Object Created",
        ),
        (
            classic_body("sales/2026-11-21.csv", "LifecycleExpiration:Delete"),
            "LifecycleExpiration:Delete",
            "S3 event LifecycleExpiration:Delete is not Object Created",
        ),
        (
            object_deleted_body("sales/2026-11-21.csv"),
            "Object Deleted",
            "S3 event Object Deleted (DeleteObject, Permanently Deleted) is not Object Created",
        ),
    ],
    ids=["removed", "restored", "expired", "eventbridge-deleted"],
)
def test_an_event_other_than_object_created_is_recorded_as_ignored_with_its_name(
    deps: Dependencies, transport: Any, body: str, event_name: str, described_as: str
) -> None:
    # Given an S3 event for an object that a route matches, but not an Object Created one
    # When its message is handled
    outcomes = handle_s3_message(body, deps)

    # Then nothing is triggered, and the object's history says the event came and was ignored
    assert transport.calls == []
    assert [o.disposition for o in outcomes] == ["ignored"]
    (record,) = deps.ledger.query_by_source("s3://landing/sales/2026-11-21.csv").items
    assert record["status"] == "IGNORED"
    assert record["reject_code"] == "not_object_created"
    assert record["reason"].startswith(described_as)
    assert record["source_ref"]["event_name"] == event_name
    assert "dag_run_id" not in record


def test_a_redelivered_other_event_is_counted_on_its_one_record(
    deps: Dependencies, transport: Any
) -> None:
    # Given a removal event already recorded
    body = classic_body("sales/2026-11-21.csv", "ObjectRemoved:Delete")
    handle_s3_message(body, deps)

    # When SQS delivers the same message again
    (outcome,) = handle_s3_message(body, deps)

    # Then it finds its record: still one, counting two deliveries
    assert outcome.disposition == "duplicate"
    (record,) = deps.ledger.query_by_source("s3://landing/sales/2026-11-21.csv").items
    assert record["deliveries"] == 2
    assert transport.calls == []


def test_an_objects_history_shows_its_creation_run_and_its_removal(
    deps: Dependencies, transport: Any
) -> None:
    # Given one notification with the creation and the removal of an object (a '+' in its key)
    created = json.loads(classic_body("sales/a%2B1.csv", "ObjectCreated:Put"))
    removed = json.loads(classic_body("sales/a%2B1.csv", "ObjectRemoved:Delete"))
    created["Records"][0]["s3"]["object"]["eTag"] = "d41d8cd98f00b204e9800998ecf8427e"
    body = json.dumps({"Records": created["Records"] + removed["Records"]})

    # When it is handled
    handle_s3_message(body, deps)

    # Then the creation started one run and the removal is recorded beside it
    assert [call.conf["key"] for call in transport.calls] == ["sales/a+1.csv"]
    history = deps.ledger.query_by_source("s3://landing/sales/a+1.csv").items
    assert sorted(record["status"] for record in history) == ["IGNORED", "TRIGGERED"]


def test_other_events_leave_no_record_but_a_log_line_when_ignored_recording_is_off(
    make_deps: Callable[..., Dependencies], caplog: pytest.LogCaptureFixture
) -> None:
    deps = make_deps(record_ignored=False)

    with caplog.at_level(logging.INFO, logger="dagtrigger"):
        outcomes = handle_s3_message(classic_body("sales/x.csv", "ObjectRemoved:Delete"), deps)

    assert outcomes == []
    assert deps.ledger.query_by_source("s3://landing/sales/x.csv").items == []
    (logged,) = [r for r in caplog.records if r.getMessage() == "S3 event ignored"]
    assert logged.__dict__["event_name"] == "ObjectRemoved:Delete"


def test_s3_test_event_is_logged_and_leaves_no_record(
    deps: Dependencies, table: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the test event S3 sends when a queue notification is configured
    body = load_batch("test_event.json")["Records"][0]["body"]

    # When it is handled
    with caplog.at_level(logging.INFO, logger="dagtrigger"):
        outcomes = handle_s3_message(body, deps, message_id="m-test")

    # Then nothing is recorded (it names no object), and the log says it arrived, from where
    assert outcomes == []
    assert table.scan(Select="COUNT")["Count"] == 0
    (logged,) = [r for r in caplog.records if r.getMessage().startswith("s3:TestEvent")]
    assert logged.levelno == logging.INFO
    assert (logged.__dict__["bucket"], logged.__dict__["message_id"]) == ("landing", "m-test")


def test_malformed_message_is_recorded_as_rejected_and_acknowledged(deps: Dependencies) -> None:
    batch = {"Records": [sqs_record("m-bad", '{"detail-type": "Object Created", "detail": {}}')]}

    response = process_s3_batch(batch, None, deps)  # type: ignore[arg-type]

    assert response == {"batchItemFailures": []}
    rejected = deps.ledger.query_by_source("sqs-message:m-bad").items
    assert len(rejected) == 1
    assert rejected[0]["status"] == "REJECTED"
    assert rejected[0]["reject_code"] == "malformed_event"


def test_a_bad_routes_file_fails_the_message_instead_of_rejecting_the_event(
    deps: Dependencies, routes_file: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an operator broke the routes file: the events are not at fault
    routes_file.write_text("version: 1\nenvironments: {}\ns3:\n  - name: x\n", encoding="utf-8")
    batch = {"Records": [sqs_record("m-1", eventbridge_body("sales/2026-11-21.csv"))]}
    fresh = type(deps)(
        settings=deps.settings,
        ledger=deps.ledger,
        routes=type(deps.routes)(deps.settings.routes_location, cache_seconds=0),
        transport_for=deps.transport_for,
        limiter=deps.limiter,
    )

    # When the batch is processed, then the message fails so SQS keeps it (and alarms via the DLQ)
    with caplog.at_level(logging.ERROR, logger="dagtrigger"):
        response = process_s3_batch(batch, None, fresh)  # type: ignore[arg-type]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}

    # And the log says why at ERROR: the loader's reason, then the message it held up
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert "environments (line 2)" in errors[0].__dict__["error"]
    assert errors[-1].__dict__["message_id"] == "m-1"


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1763690400000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1763690400001",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:dagtrigger-s3-events",
        "awsRegion": "us-east-1",
    }
