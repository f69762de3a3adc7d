"""Run outcomes: failed tasks and paused DAGs on the record, and one "DAG Run Finished" event per
run that ends, even when reconciler passes overlap or die between writing and publishing."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import RejectedError, TransientTriggerError
from dagtrigger.ledger import TriggerStatus
from dagtrigger.observability import MetricName, metrics
from dagtrigger.transports.base import FailedTasks
from dagtrigger.transports.rate_budget import RateBudgetExhausted
from dagtrigger.trigger.reconcile import reconcile_open_triggers
from dagtrigger.trigger.run_outcomes import (
    RUN_EVENT_DETAIL_TYPE,
    RUN_EVENT_SOURCE,
    deliver_run_outcome,
    failure_notice,
    run_finished_event_id,
)
from tests.unit.conftest import FunctionKilled
from tests.unit.ledger.conftest import FakeClock
from tests.unit.trigger.test_reconcile import trigger

TOPIC = "arn:aws:sns:us-east-1:123456789012:dag-failures"


def published(name: str) -> int:
    return len(metrics.metric_set.get(name, {}).get("Value", []))


def test_each_run_that_ends_publishes_one_event_with_its_outcome(
    deps: Dependencies, transport: Any, event_bus: Any
) -> None:
    # Given a run that succeeded, one that failed in two tasks and one still queued
    done = trigger(deps, "sales/a.csv")
    broken = trigger(deps, "sales/b.csv")
    waiting = trigger(deps, "sales/c.csv")
    transport.run_states.update(
        {
            done["dag_run_id"]: "success",
            broken["dag_run_id"]: "failed",
            waiting["dag_run_id"]: "queued",
        }
    )
    transport.failed_tasks[broken["dag_run_id"]] = FailedTasks(("load", "notify"), count=3)

    # When the reconciler runs twice
    first = reconcile_open_triggers(deps)
    second = reconcile_open_triggers(deps)

    # Then each ended run published one event on the default bus, and the queued run none
    assert (first.told, first.left_to_tell, second.told) == (2, 0, 0)
    assert [entry["Source"] for entry in event_bus.entries] == [RUN_EVENT_SOURCE] * 2
    assert {entry["DetailType"] for entry in event_bus.entries} == {RUN_EVENT_DETAIL_TYPE}
    assert {entry["EventBusName"] for entry in event_bus.entries} == {"default"}
    details = {detail["trigger_id"]: detail for detail in event_bus.details()}
    assert set(details) == {done["trigger_id"], broken["trigger_id"]}

    # And the detail says what happened, with a stable id and the timings known
    failed = details[broken["trigger_id"]]
    assert failed["event_id"] == run_finished_event_id(broken["trigger_id"])
    assert (failed["state"], failed["airflow_state"]) == ("FAILED", "failed")
    assert (failed["failed_tasks"], failed["failed_task_count"]) == (["load", "notify"], 3)
    assert (failed["dag_id"], failed["environment"], failed["route"]) == (
        "ingest_sales", "prod", "sales-csv",
    )  # fmt: skip
    assert failed["source_type"] == "s3"
    assert failed["source_key"] == "s3://landing/sales/b.csv"
    assert failed["source_ref"]["key"] == "sales/b.csv"
    assert failed["dag_run_id"] == broken["dag_run_id"]
    timings = failed["timings"]
    assert timings["received_at"] == broken["created_at"]
    assert timings["triggered_at"] == broken["triggered_at"]
    assert timings["finished_at"] >= broken["triggered_at"]
    assert "failed_tasks" not in details[done["trigger_id"]]

    # And the records carry the failed tasks and leave the outbox
    recorded = deps.ledger.get(broken["trigger_id"])
    assert recorded is not None
    assert (recorded["failed_tasks"], recorded["failed_task_count"]) == (["load", "notify"], 3)
    assert "pending_event" not in recorded
    assert recorded["finished_event_delivered_at"] >= recorded["finished_at"]
    assert transport.failed_task_reads == [broken["dag_run_id"]]
    assert deps.ledger.pending_events().items == []


def test_overlapping_passes_end_and_publish_a_run_once(
    deps: Dependencies, transport: Any, event_bus: Any, atomic_requests: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Given a finished run, and two reconciler passes that both list it before either writes
    record = trigger(deps, "sales/a.csv")
    transport.run_states[record["dag_run_id"]] = "failed"
    both_listed = threading.Barrier(2)
    list_runs = transport.started_run_states

    def list_then_wait(dag_id: str, *, started_since: datetime) -> Any:
        states = list_runs(dag_id, started_since=started_since)
        both_listed.wait(timeout=10)
        return states

    monkeypatch.setattr(transport, "started_run_states", list_then_wait)

    # When the two passes overlap
    summaries: list[Any] = []
    passes = [
        threading.Thread(target=lambda: summaries.append(reconcile_open_triggers(deps)))
        for _ in range(2)
    ]
    for running in passes:
        running.start()
    for running in passes:
        running.join(timeout=30)

    # Then one of them ended the run and published it; the other did neither
    assert sorted(summary.changed.get("FAILED", 0) for summary in summaries) == [0, 1]
    assert [detail["trigger_id"] for detail in event_bus.details()] == [record["trigger_id"]]
    assert deps.ledger.get(record["trigger_id"])["status"] == "FAILED"


def test_a_pass_that_dies_before_publishing_leaves_the_event_to_a_later_pass(
    make_deps: Any, transport: Any, event_bus: Any
) -> None:
    # Given a finished run, and a pass that dies after recording it, before PutEvents
    clock = FakeClock()
    deps = make_deps(clock=clock)
    record = trigger(deps, "sales/a.csv")
    transport.run_states[record["dag_run_id"]] = "success"
    event_bus.answers.append(FunctionKilled("timed out between the write and PutEvents"))
    with pytest.raises(FunctionKilled):
        reconcile_open_triggers(deps)
    ended = deps.ledger.get(record["trigger_id"])
    assert ended is not None
    assert (ended["status"], ended["pending_event"]) == ("SUCCESS", "run_finished")

    # When a pass runs while the dead pass's lease still holds, and another after it ran out
    during_lease = reconcile_open_triggers(deps)
    clock.advance(minutes=2)
    after_lease = reconcile_open_triggers(deps)
    later = reconcile_open_triggers(deps)

    # Then the event was published once, by the pass after the lease, with the ending's time
    assert (during_lease.told, after_lease.told, later.told) == (0, 1, 0)
    (detail,) = event_bus.details()
    assert detail["trigger_id"] == record["trigger_id"]
    assert detail["state"] == "SUCCESS"
    assert detail["timings"]["finished_at"] == ended["finished_at"]
    assert event_bus.entries[0]["Time"] == datetime.fromisoformat(ended["finished_at"])
    assert deps.ledger.pending_events().items == []


def test_a_partially_failed_put_events_stays_due_is_counted_and_goes_out_next_pass(
    deps: Dependencies, transport: Any, event_bus: Any
) -> None:
    # Given a finished run, and EventBridge refusing its entry (FailedEntryCount 1) once
    record = trigger(deps, "sales/a.csv")
    transport.run_states[record["dag_run_id"]] = "success"
    event_bus.answers.append(
        {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
        }
    )
    failures_before = published(MetricName.RUN_EVENT_FAILED)

    # When a pass runs
    first = reconcile_open_triggers(deps)

    # Then nothing counts as published, the failure is counted, and the event is still due
    assert (first.told, first.left_to_tell) == (0, 1)
    assert published(MetricName.RUN_EVENT_FAILED) == failures_before + 1
    assert event_bus.entries == []
    assert deps.ledger.get(record["trigger_id"])["pending_event"] == "run_finished"

    # And the next pass (the lease was released) publishes it once
    second = reconcile_open_triggers(deps)
    assert (second.told, second.left_to_tell) == (1, 0)
    assert [detail["trigger_id"] for detail in event_bus.details()] == [record["trigger_id"]]


@pytest.mark.parametrize("topic", [None, TOPIC])
def test_failed_runs_are_told_to_the_topic_only_when_one_is_configured(
    make_deps: Any, transport: Any, event_bus: Any, failure_topic: Any, topic: str | None
) -> None:
    # Given a run that succeeded, one that failed, and a deployment with or without a topic
    deps = make_deps(run_failure_topic_arn=topic)
    done = trigger(deps, "sales/a.csv")
    broken = trigger(deps, "sales/b.csv")
    transport.run_states.update({done["dag_run_id"]: "success", broken["dag_run_id"]: "failed"})
    transport.failed_tasks[broken["dag_run_id"]] = FailedTasks(("load",), count=1)

    # When the reconciler runs
    reconcile_open_triggers(deps)

    # Then both runs are events, and only the failure, only with a topic, is a notice
    assert len(event_bus.entries) == 2
    if topic is None:
        assert failure_topic.messages == []
        return
    (message,) = failure_topic.messages
    assert message["TopicArn"] == TOPIC
    assert message["Subject"] == "dagtrigger: FAILED run of DAG ingest_sales"
    assert "Failed tasks: load (1 failed in all)" in message["Message"]
    assert broken["dag_run_id"] in message["Message"]
    assert broken["trigger_id"] in message["Message"]
    assert "version_id" not in message["Message"]  # the conf is never told


def test_a_run_ended_at_the_horizon_is_an_unknown_event_and_a_notice(
    make_deps: Any, transport: Any, event_bus: Any, failure_topic: Any
) -> None:
    # Given a run still queued 72 hours after its trigger, and a failure topic
    clock = FakeClock()
    deps = make_deps(clock=clock, run_failure_topic_arn=TOPIC)
    record = trigger(deps, "sales/a.csv")
    transport.run_states[record["dag_run_id"]] = "queued"
    clock.advance(hours=72, minutes=1)

    # When the reconciler ends it
    reconcile_open_triggers(deps)

    # Then one UNKNOWN event with the reason went out, and a notice saying why
    (detail,) = event_bus.details()
    assert detail["state"] == "UNKNOWN"
    assert "72 h horizon" in detail["reason"]
    assert "failed_tasks" not in detail
    (message,) = failure_topic.messages
    assert message["Subject"] == "dagtrigger: UNKNOWN run of DAG ingest_sales"
    assert "Why:" in message["Message"]


def test_a_notice_that_fails_is_retried_without_publishing_the_event_again(
    make_deps: Any, transport: Any, event_bus: Any, failure_topic: Any
) -> None:
    # Given a failed run, and SNS failing once
    deps = make_deps(run_failure_topic_arn=TOPIC)
    record = trigger(deps, "sales/a.csv")
    transport.run_states[record["dag_run_id"]] = "failed"
    failure_topic.failures.append(
        ClientError({"Error": {"Code": "InternalError", "Message": "try again"}}, "Publish")
    )

    # When two passes run
    first = reconcile_open_triggers(deps)
    second = reconcile_open_triggers(deps)

    # Then the event went out once, the notice on the second pass, and nothing is left due
    assert (first.left_to_tell, second.told) == (1, 1)
    assert len(event_bus.entries) == 1
    assert len(failure_topic.messages) == 1
    assert "pending_event" not in deps.ledger.get(record["trigger_id"])


def test_failed_tasks_wait_for_spare_budget_and_the_run_stays_open_meanwhile(
    deps: Dependencies, transport: Any, event_bus: Any
) -> None:
    # Given a failed run whose failed tasks cannot be read now: triggers use the budget
    record = trigger(deps, "sales/a.csv")
    transport.run_states[record["dag_run_id"]] = "failed"
    transport.failed_tasks[record["dag_run_id"]] = RateBudgetExhausted("3 background calls used")

    # When a pass runs, the run waits for the next one: no status, no event, not an error
    first = reconcile_open_triggers(deps)
    assert (first.deferred, first.errors, first.changed) == (1, 0, {})
    assert deps.ledger.get(record["trigger_id"])["status"] == "TRIGGERED"
    assert event_bus.entries == []

    # And the next pass, with budget to spare, ends it with its failed tasks
    transport.failed_tasks[record["dag_run_id"]] = FailedTasks(("load",), count=1)
    second = reconcile_open_triggers(deps)
    assert second.changed == {"FAILED": 1}
    assert event_bus.details()[0]["failed_tasks"] == ["load"]


@pytest.mark.parametrize(
    ("error", "recorded"),
    [
        (
            RejectedError("bad_request", "Airflow refused: HTTP 400: Unknown field dag_run_ids"),
            "Unknown field dag_run_ids",
        ),
        (TransientTriggerError("HTTP 503"), None),
    ],
)
def test_failed_tasks_that_cannot_be_read_are_said_so_or_asked_again(
    deps: Dependencies, transport: Any, event_bus: Any, error: Exception, recorded: str | None
) -> None:
    # Given a failed run whose failed tasks Airflow refuses to list, or cannot list now
    record = trigger(deps, "sales/a.csv")
    transport.run_states[record["dag_run_id"]] = "failed"
    transport.failed_tasks[record["dag_run_id"]] = error

    # When a pass runs
    summary = reconcile_open_triggers(deps)

    # Then a refusal ends the run with the reason; a transient failure leaves it for next pass
    stored = deps.ledger.get(record["trigger_id"])
    if recorded is None:
        assert (summary.errors, stored["status"], event_bus.entries) == (1, "TRIGGERED", [])
        return
    assert stored["status"] == "FAILED"
    assert recorded in stored["failed_tasks_unavailable"]
    assert recorded in event_bus.details()[0]["failed_tasks_unavailable"]


def test_runs_queued_on_a_paused_dag_are_flagged_with_one_read_per_dag(
    make_deps: Any, transport: Any
) -> None:
    # Given two runs still queued a pass after their trigger, on a DAG that is paused
    clock = FakeClock()
    deps = make_deps(clock=clock)
    first, second = trigger(deps, "sales/a.csv"), trigger(deps, "sales/b.csv")
    clock.advance(minutes=2)
    transport.paused["ingest_sales"] = True

    # When the reconciler runs
    reconcile_open_triggers(deps)

    # Then the DAG's paused flag was read once, and both records say they wait on it
    assert transport.paused_reads == ["ingest_sales"]
    assert all(
        deps.ledger.get(record["trigger_id"])["dag_paused"] is True for record in (first, second)
    )

    # And once the DAG is unpaused they say so; once the run starts, the flag is gone
    transport.paused["ingest_sales"] = False
    clock.advance(minutes=1)
    reconcile_open_triggers(deps)
    assert deps.ledger.get(first["trigger_id"])["dag_paused"] is False
    transport.run_states[first["dag_run_id"]] = "running"
    clock.advance(minutes=1)
    reconcile_open_triggers(deps)
    assert "dag_paused" not in deps.ledger.get(first["trigger_id"])


def test_young_queued_runs_and_transports_that_cannot_tell_cost_no_paused_write(
    make_deps: Any, transport: Any
) -> None:
    # Given a run triggered seconds ago, then one a pass old on a transport that cannot tell
    clock = FakeClock()
    deps = make_deps(clock=clock)
    record = trigger(deps, "sales/a.csv")

    # When passes run
    reconcile_open_triggers(deps)
    clock.advance(minutes=2)
    reconcile_open_triggers(deps)

    # Then the young run cost no read, and an unknown answer changed nothing
    assert transport.paused_reads == ["ingest_sales"]
    assert "dag_paused" not in deps.ledger.get(record["trigger_id"])


# --- the AWS side, against botocore's own models ------------------------------------------


def test_put_events_and_publish_send_what_the_services_accept(
    deps: Dependencies, transport: Any
) -> None:
    # Given a failed run recorded with its outbox, real EventBridge and SNS clients stubbed
    events = boto3.client("events", region_name="us-east-1")
    sns = boto3.client("sns", region_name="us-east-1")
    record = trigger(deps, "sales/a.csv")
    ended = deps.ledger.update_run_state(
        record["trigger_id"],
        status=TriggerStatus.FAILED,
        airflow_state="failed",
        failed_tasks=FailedTasks(("load",), count=1),
        deliveries=("eventbridge", "sns"),
    )
    subject, message = failure_notice(ended)
    wired = replace(
        deps,
        settings=deps.settings.model_copy(
            update={"run_event_bus_name": "pipelines", "run_failure_topic_arn": TOPIC}
        ),
        events_client=lambda: events,
        sns_client=lambda: sns,
    )

    with Stubber(events) as events_stub, Stubber(sns) as sns_stub:
        entry = {
            "Source": "dagtrigger",
            "DetailType": "DAG Run Finished",
            "Detail": ANY,
            "EventBusName": "pipelines",
            "Time": ANY,
        }
        events_stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]},
            {"Entries": [entry]},
        )
        events_stub.add_response(
            "put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]},
            {"Entries": [entry]},
        )  # fmt: skip
        sns_stub.add_response(
            "publish",
            {"MessageId": "m-1"},
            {"TopicArn": TOPIC, "Subject": subject, "Message": message},
        )

        # When the outcome is delivered, EventBridge refusing the entry the first time
        first = deliver_run_outcome(ended, wired)
        retried = deps.ledger.claim_pending_event(record["trigger_id"])
        assert retried is not None
        second = deliver_run_outcome(retried, wired)

        # Then the partial failure kept the event due, and the notice was not sent twice
        assert (first, second) == (False, True)
        events_stub.assert_no_pending_responses()
        sns_stub.assert_no_pending_responses()
    assert len(subject) < 100
    assert subject.isascii()
