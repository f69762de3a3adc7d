"""reopen_for_replay(): a failed or rejected trigger owned again, to retry its run in place."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dagtrigger.errors import InvalidTransitionError
from dagtrigger.ledger import ClaimOutcome, NewTrigger, TriggerLedger, TriggerStatus
from dagtrigger.transports.base import TriggerResult

from .conftest import FakeClock

MakeTrigger = Callable[..., NewTrigger]
OPERATOR = "arn:aws:sts::123456789012:assumed-role/operator/alice"


def failed_trigger(ledger: TriggerLedger, new: NewTrigger) -> dict[str, Any]:
    ledger.claim(new)
    return ledger.mark_trigger_failed(new.trigger_id, message="MWAA answered 503", attempts=3)


def test_a_failed_trigger_is_reopened_with_a_lease_and_the_replay_is_recorded(
    ledger: TriggerLedger, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    # Given a trigger that gave up during an outage
    new = make_trigger()
    failed = failed_trigger(ledger, new)
    clock.advance(hours=2)

    # When an operator replays it
    reopened = ledger.reopen_for_replay(failed, replayed_by=OPERATOR, idempotency_key="k-1")

    # Then the same record is RECEIVED again, leased, with its run id, conf and errors kept
    assert reopened["status"] == TriggerStatus.RECEIVED
    assert reopened["trigger_id"] == new.trigger_id
    assert reopened["dag_run_id"] == new.dag_run_id
    assert reopened["conf"] == new.conf
    assert reopened["lease_until"] == "2026-11-21T04:01:00.123456Z"
    assert reopened["last_error"] == "MWAA answered 503"
    # And the replay is counted and says who asked, when, with which key
    assert reopened["replays"] == 1
    assert reopened["replayed_by"] == OPERATOR
    assert reopened["transitions"][-1] == {
        "status": "RECEIVED",
        "at": "2026-11-21T04:00:00.123456Z",
        "replayed_by": OPERATOR,
        "idempotency_key": "k-1",
    }


def test_a_rejected_trigger_is_reopened_and_its_rejection_moves_to_the_errors(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given a trigger Airflow refused (the DAG was missing)
    new = make_trigger()
    ledger.claim(new)
    rejected = ledger.mark_rejected(
        new.trigger_id, code="dag_not_found", message="DAG ingest_sales not found", attempts=1
    )

    # When it is replayed (the DAG has been deployed since)
    reopened = ledger.reopen_for_replay(rejected, replayed_by=OPERATOR)

    # Then the rejection no longer describes the record, but its history keeps it
    assert reopened["status"] == TriggerStatus.RECEIVED
    assert "reject_code" not in reopened
    assert "reason" not in reopened
    assert reopened["errors"] == [
        {
            "at": rejected["updated_at"],
            "message": "REJECTED (dag_not_found): DAG ingest_sales not found",
        }
    ]
    assert "idempotency_key" not in reopened["transitions"][-1]


@pytest.mark.parametrize(
    "status", [TriggerStatus.TRIGGERED, TriggerStatus.RECEIVED, TriggerStatus.SUCCESS]
)
def test_a_trigger_that_is_not_failed_or_rejected_is_never_reopened(
    ledger: TriggerLedger, make_trigger: MakeTrigger, status: TriggerStatus
) -> None:
    # Given a record read as failed that has moved on since (a redelivery took it over)
    new = make_trigger()
    read_earlier = failed_trigger(ledger, new)
    ledger.claim(new)  # the redelivery's takeover: RECEIVED
    if status is not TriggerStatus.RECEIVED:
        result = TriggerResult(dag_run_id=str(new.dag_run_id), logical_date=None, state="queued")
        ledger.mark_triggered(new.trigger_id, result=result, attempts=1)
    if status is TriggerStatus.SUCCESS:
        ledger.update_run_state(new.trigger_id, status=status, airflow_state="success")

    # When the replay's conditional write is attempted with what it read
    with pytest.raises(InvalidTransitionError) as refused:
        ledger.reopen_for_replay(read_earlier, replayed_by=OPERATOR)

    # Then it is refused with the record as it is now, unchanged by the replay
    assert refused.value.record["status"] == status
    assert "replays" not in refused.value.record


def test_a_record_read_in_a_status_that_is_not_replayable_is_refused_before_any_write(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    new = make_trigger()
    claimed = ledger.claim(new).record

    with pytest.raises(ValueError, match="not RECEIVED"):
        ledger.reopen_for_replay(claimed, replayed_by=OPERATOR)


@pytest.mark.usefixtures("atomic_requests")
def test_a_replay_racing_redeliveries_of_the_failed_trigger_gives_exactly_one_owner(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given a failed trigger whose event is redrived (10 deliveries) while an operator replays it
    new = make_trigger()
    failed = failed_trigger(ledger, new)

    def replay(_: int) -> str:
        try:
            ledger.reopen_for_replay(failed, replayed_by=OPERATOR)
        except InvalidTransitionError:
            return "replay lost"
        return "replay owns it"

    def redeliver(_: int) -> str:
        return str(ledger.claim(new).outcome)

    # When all of them run at once
    with ThreadPoolExecutor(max_workers=11) as pool:
        replays = [pool.submit(replay, 0)]
        deliveries = [pool.submit(redeliver, index) for index in range(10)]
        outcomes = Counter(future.result() for future in replays + deliveries)

    # Then exactly one of them owns the trigger; every other is told it does not
    owners = outcomes["replay owns it"] + outcomes[str(ClaimOutcome.RETRY)]
    assert owners == 1
    assert outcomes["replay lost"] + outcomes[str(ClaimOutcome.DUPLICATE)] == 10
    stored = ledger.get(new.trigger_id)
    assert stored is not None
    assert [step["status"] for step in stored["transitions"]].count("RECEIVED") == 2


def test_a_second_replay_with_the_same_read_loses(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given two replays that read the same failed record
    new = make_trigger()
    failed = failed_trigger(ledger, new)
    ledger.reopen_for_replay(failed, replayed_by=OPERATOR)

    # When the second one writes
    with pytest.raises(InvalidTransitionError) as refused:
        ledger.reopen_for_replay(failed, replayed_by="someone-else")

    # Then it finds the first one's claim
    assert refused.value.record["replayed_by"] == OPERATOR
    assert refused.value.record["replays"] == 1
