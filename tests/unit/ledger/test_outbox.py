"""The outbox of a run's "finished" event: written with the ending, found by a sparse index,
owned by one pass at a time, left when everything is delivered."""

from __future__ import annotations

from collections.abc import Callable

from dagtrigger.ledger import NewTrigger, TriggerLedger, TriggerStatus
from dagtrigger.transports.base import FailedTasks, TriggerResult

from .conftest import FakeClock

MakeTrigger = Callable[..., NewTrigger]


def ended_run(ledger: TriggerLedger, make_trigger: MakeTrigger, trigger_id: str) -> None:
    ledger.claim(make_trigger(trigger_id))
    result = TriggerResult(dag_run_id=f"run-{trigger_id}", logical_date=None, state="queued")
    ledger.mark_triggered(trigger_id, result=result, attempts=1)
    ledger.update_run_state(
        trigger_id,
        status=TriggerStatus.FAILED,
        airflow_state="failed",
        failed_tasks=FailedTasks(("load",), count=1),
        deliveries=("eventbridge", "sns"),
    )


def test_the_ending_write_fills_the_outbox_and_leases_it_to_its_writer(
    ledger: TriggerLedger, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    # Given a run that ended, and another that is still running
    ended_run(ledger, make_trigger, "t-ended")
    ledger.claim(make_trigger("t-running"))
    result = TriggerResult(dag_run_id="run-2", logical_date=None, state="queued")
    ledger.mark_triggered("t-running", result=result, attempts=1)
    ledger.update_run_state("t-running", status=TriggerStatus.RUNNING, airflow_state="running")

    # When the outbox is read and claimed while the ending pass's lease holds
    (pending,) = ledger.pending_events().items

    # Then only the ended run is in it, with what it owes and its failed tasks, and nobody
    # else may claim it yet
    assert pending["trigger_id"] == "t-ended"
    assert pending["pending_deliveries"] == {"eventbridge", "sns"}
    assert (pending["failed_tasks"], pending["failed_task_count"]) == (["load"], 1)
    assert ledger.claim_pending_event("t-ended") is None

    # And once the lease ran out exactly one claim wins
    clock.advance(minutes=2)
    assert ledger.claim_pending_event("t-ended") is not None
    assert ledger.claim_pending_event("t-ended") is None


def test_settling_crosses_off_deliveries_and_empties_the_outbox_when_none_is_left(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given an ended run that owes an event and a notice
    ended_run(ledger, make_trigger, "t-ended")

    # When the event went out and the notice did not
    ledger.settle_pending_event("t-ended", delivered=["eventbridge"], remaining=["sns"])

    # Then only the notice is due, and its lease is free for the next pass
    record = ledger.get("t-ended")
    assert record is not None
    assert record["pending_deliveries"] == {"sns"}
    assert ledger.claim_pending_event("t-ended") is not None

    # And when the notice went out too, the record leaves the outbox and says when
    ledger.settle_pending_event("t-ended", delivered=["sns"], remaining=[])
    record = ledger.get("t-ended")
    assert record is not None
    assert {"pending_event", "pending_deliveries", "pending_event_lease_until"}.isdisjoint(record)
    assert record["finished_event_delivered_at"] >= record["finished_at"]
    assert ledger.pending_events().items == []
    assert ledger.claim_pending_event("t-ended") is None


def test_an_ending_without_deliveries_has_no_outbox(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    ledger.claim(make_trigger("t-quiet"))
    result = TriggerResult(dag_run_id="run-q", logical_date=None, state="queued")
    ledger.mark_triggered("t-quiet", result=result, attempts=1)

    ended = ledger.mark_unknown("t-quiet", reason="not seen to finish")

    assert ended["status"] == "UNKNOWN"
    assert "finished_at" in ended
    assert "pending_event" not in ended
    assert ledger.pending_events().items == []


def test_the_paused_flag_changes_only_while_the_run_is_queued(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given a run triggered on a paused DAG
    ledger.claim(make_trigger("t-waits"))
    result = TriggerResult(dag_run_id="run-w", logical_date=None, state="queued", dag_paused=True)
    ledger.mark_triggered("t-waits", result=result, attempts=1)

    # When the DAG is unpaused, then the run starts, then someone asks to flag it again
    unflagged = ledger.set_dag_paused("t-waits", paused=False)
    started = ledger.update_run_state(
        "t-waits", status=TriggerStatus.RUNNING, airflow_state="running"
    )
    flagged_late = ledger.set_dag_paused("t-waits", paused=True)

    # Then the queued record was unflagged, the started run dropped the flag, and a started
    # run is never flagged
    assert unflagged is True
    assert "dag_paused" not in started
    assert flagged_late is False
    record = ledger.get("t-waits")
    assert record is not None
    assert "dag_paused" not in record
