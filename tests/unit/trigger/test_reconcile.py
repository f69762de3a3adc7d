"""Run tracking: open triggers follow their DAG runs to a final status."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from dagtrigger.dependencies import Dependencies
from dagtrigger.ledger import NewTrigger, SourceType
from dagtrigger.sources.s3.service import handle_s3_message
from dagtrigger.trigger.reconcile import reconcile_open_triggers
from tests.unit.ledger.conftest import FakeClock


def object_created(key: str) -> str:
    return json.dumps(
        {
            "detail-type": "Object Created",
            "source": "aws.s3",
            "time": "2026-11-21T02:00:00Z",
            "region": "us-east-1",
            "detail": {
                "bucket": {"name": "landing"},
                "object": {"key": key, "size": 10, "etag": "e", "version-id": f"v-{key}"},
                "reason": "PutObject",
            },
        }
    )


def trigger(deps: Dependencies, key: str) -> dict[str, Any]:
    (outcome,) = handle_s3_message(object_created(key), deps)
    return outcome.record


def test_runs_that_moved_on_are_recorded_and_queued_ones_stay_open(
    deps: Dependencies, transport: Any
) -> None:
    # Given four triggered runs whose Airflow states differ
    done = trigger(deps, "sales/a.csv")
    broken = trigger(deps, "sales/b.csv")
    busy = trigger(deps, "sales/c.csv")
    waiting = trigger(deps, "sales/d.csv")
    transport.run_states.update(
        {
            done["dag_run_id"]: "success",
            broken["dag_run_id"]: "failed",
            busy["dag_run_id"]: "running",
            waiting["dag_run_id"]: "queued",
        }
    )

    # When the reconciler runs
    summary = reconcile_open_triggers(deps)

    # Then each record says what Airflow says, and the queued run is still open
    assert summary.changed == {"SUCCESS": 1, "FAILED": 1, "RUNNING": 1}
    assert deps.ledger.get(done["trigger_id"])["status"] == "SUCCESS"
    assert deps.ledger.get(broken["trigger_id"])["status"] == "FAILED"
    assert deps.ledger.get(busy["trigger_id"])["status"] == "RUNNING"
    assert deps.ledger.get(waiting["trigger_id"])["status"] == "TRIGGERED"
    assert deps.ledger.get(done["trigger_id"])["airflow_state"] == "success"

    # And a second pass moves the running one on when it finishes
    transport.run_states[busy["dag_run_id"]] = "success"
    second = reconcile_open_triggers(deps)
    assert second.changed == {"SUCCESS": 1}
    assert deps.ledger.get(busy["trigger_id"])["status"] == "SUCCESS"


def test_an_unreachable_airflow_leaves_records_open_for_the_next_pass(
    deps: Dependencies, transport: Any
) -> None:
    record = trigger(deps, "sales/a.csv")
    transport.run_states[record["dag_run_id"]] = "unreachable"

    summary = reconcile_open_triggers(deps)

    assert summary.errors == 1
    assert deps.ledger.get(record["trigger_id"])["status"] == "TRIGGERED"


def test_a_run_airflow_does_not_know_is_counted_missing(deps: Dependencies) -> None:
    record = trigger(deps, "sales/a.csv")

    summary = reconcile_open_triggers(deps)

    assert summary.missing == 1
    assert deps.ledger.get(record["trigger_id"])["status"] == "TRIGGERED"


def test_the_recorded_trigger_time_is_passed_to_the_run_lookup(
    deps: Dependencies, transport: Any
) -> None:
    # Given a triggered run whose ledger record says when it was triggered
    record = trigger(deps, "sales/a.csv")
    transport.run_states[record["dag_run_id"]] = "queued"

    # When the reconciler looks the run up
    reconcile_open_triggers(deps)

    # Then the transport was told that time, as an aware datetime
    ((dag_run_id, triggered_after),) = transport.state_lookups
    assert dag_run_id == record["dag_run_id"]
    assert triggered_after == datetime.fromisoformat(record["triggered_at"])
    assert triggered_after is not None
    assert triggered_after.tzinfo is not None


def test_an_abandoned_claim_without_its_conf_is_recorded_failed_not_started(
    make_deps: Any, transport: Any
) -> None:
    # Given a claim whose holder died, and whose conf was too large for the ledger to keep
    clock = FakeClock()
    deps = make_deps(clock=clock)
    claim = NewTrigger(
        trigger_id="t-" + "a" * 32,
        source_type=SourceType.API,
        source_key="api:someone",
        source_identity="api:someone:k-1",
        source_ref={},
        environment="prod",
        dag_id="ingest_sales",
        dag_run_id="dagtrigger__api__k-1",
        conf={"rows": "x" * 40_000},
    )
    deps.ledger.claim(claim)

    # When the reconciler runs after the claim's lease ended
    clock.advance(hours=1)
    summary = reconcile_open_triggers(deps)

    # Then nothing is started with a conf it does not have: the record says why, for a replay
    record = deps.ledger.get(claim.trigger_id)
    assert record is not None
    assert record["status"] == "TRIGGER_FAILED"
    assert "kept no conf" in record["last_error"]
    assert (summary.resumed, summary.errors) == (0, 1)
    assert transport.calls == []
