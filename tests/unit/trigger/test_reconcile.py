"""Run tracking: open triggers follow their DAG runs to a final status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import TransientTriggerError
from dagtrigger.ledger import NewTrigger, SourceType
from dagtrigger.sources.s3.service import handle_s3_message
from dagtrigger.transports.rate_budget import RateBudgetExhausted
from dagtrigger.trigger.reconcile import START_MARGIN, is_due, reconcile_open_triggers
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
    transport.list_failures.append(
        TransientTriggerError("Airflow answered 503 Service Unavailable", http_status=503)
    )

    summary = reconcile_open_triggers(deps)

    assert summary.errors == 1
    assert deps.ledger.get(record["trigger_id"])["status"] == "TRIGGERED"


def test_a_run_airflow_has_not_started_stays_open_without_a_call_of_its_own(
    deps: Dependencies, transport: Any
) -> None:
    record = trigger(deps, "sales/a.csv")

    summary = reconcile_open_triggers(deps)

    assert summary.checked == 1
    assert summary.changed == {}
    assert transport.state_lookups == []
    assert deps.ledger.get(record["trigger_id"])["status"] == "TRIGGERED"


def test_many_open_records_of_one_dag_cost_one_list_read_per_pass(
    deps: Dependencies, transport: Any
) -> None:
    # Given 120 open triggers of one DAG, a few of whose runs have finished
    records = [trigger(deps, f"sales/{number:03}.csv") for number in range(120)]
    for record in records[:7]:
        transport.run_states[record["dag_run_id"]] = "success"

    # When the reconciler runs
    summary = reconcile_open_triggers(deps)

    # Then Airflow was asked once, about the DAG, from the oldest trigger (less a margin for
    # clock skew), never once per run; and the finished runs are recorded
    oldest = min(datetime.fromisoformat(record["triggered_at"]) for record in records)
    assert transport.list_reads == [("ingest_sales", oldest - START_MARGIN)]
    assert transport.state_lookups == []
    assert (summary.checked, summary.dags_listed) == (120, 1)
    assert summary.changed == {"SUCCESS": 7}


def test_when_triggers_use_the_budget_the_environment_waits_for_the_next_pass(
    make_deps: Any, transport: Any
) -> None:
    # Given open triggers, and an environment whose shared budget triggers are using
    deps = make_deps()
    record = trigger(deps, "sales/a.csv")
    transport.run_states[record["dag_run_id"]] = "success"
    transport.list_failures.append(RateBudgetExhausted("budget of 3 background calls used"))

    # When the reconciler runs, the environment is left alone and nothing is an error
    first = reconcile_open_triggers(deps)
    assert (first.deferred, first.errors, first.changed) == (1, 0, {})

    # And the next pass, with budget to spare, records the run
    second = reconcile_open_triggers(deps)
    assert second.changed == {"SUCCESS": 1}


@pytest.mark.parametrize(
    ("airflow_state", "status", "reason"),
    [
        ("queued", "UNKNOWN", "Airflow still says 'queued'"),
        (None, "UNKNOWN", "Airflow has no such run"),
        ("success", "SUCCESS", None),
    ],
)
def test_a_record_open_at_the_horizon_gets_a_last_look_and_ends(
    make_deps: Any, transport: Any, airflow_state: str | None, status: str, reason: str | None
) -> None:
    # Given a trigger whose run has not been seen to finish for 72 hours
    clock = FakeClock()
    deps = make_deps(clock=clock, reconcile_horizon_hours=72)
    record = trigger(deps, "sales/a.csv")
    if airflow_state is not None:
        transport.run_states[record["dag_run_id"]] = airflow_state
    clock.advance(hours=72, minutes=1)

    # When the reconciler runs
    summary = reconcile_open_triggers(deps)

    # Then the run got one direct look, and the record ended: with the run's final state,
    # or UNKNOWN with the reason
    assert [run_id for run_id, _ in transport.state_lookups] == [record["dag_run_id"]]
    ended = deps.ledger.get(record["trigger_id"])
    assert ended["status"] == status
    if reason is not None:
        assert reason in ended["reason"]
        assert "72 h horizon" in ended["reason"]
        assert summary.ended_unknown == 1
    # And a later pass has nothing left to follow
    transport.state_lookups.clear()
    later = reconcile_open_triggers(deps)
    assert (later.checked, transport.state_lookups, transport.list_reads[1:]) == (0, [], [])


def test_young_records_are_read_every_pass_and_old_ones_on_a_share_of_passes() -> None:
    # Given records of several ages, and 60 consecutive one-minute passes
    start = datetime(2026, 12, 1, tzinfo=UTC)
    passes = [start + timedelta(minutes=minute) for minute in range(60)]

    def times_due(trigger_id: str, age: timedelta) -> int:
        return sum(is_due(trigger_id, age, now, interval_seconds=60) for now in passes)

    # Then a record minutes old is read every pass, one an hour old every 6th pass, and one
    # a day old every 30th: twice in an hour, whatever its id
    assert times_due("t-young", timedelta(minutes=5)) == 60
    assert times_due("t-hour", timedelta(hours=1)) == 10
    assert all(times_due(f"t-{n}", timedelta(days=1)) == 2 for n in range(20))


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
