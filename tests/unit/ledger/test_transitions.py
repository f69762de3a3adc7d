"""Status changes: conditional updates from the allowed previous statuses only."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from dagtrigger.errors import InvalidTransitionError, TriggerNotFoundError
from dagtrigger.ledger import NewTrigger, TriggerLedger, TriggerStatus
from dagtrigger.ledger.encoding import to_timestamp
from dagtrigger.ledger.ledger import MAX_TRANSITIONS
from dagtrigger.transports.base import TriggerResult

from .conftest import FakeClock

MakeTrigger = Callable[..., NewTrigger]
S = TriggerStatus

#: the state machine as the design states it (from, to)
ALLOWED = {
    (S.RECEIVED, S.TRIGGERED),
    (S.RECEIVED, S.REJECTED),
    (S.RECEIVED, S.TRIGGER_FAILED),
    (S.TRIGGERED, S.RUNNING),
    (S.TRIGGERED, S.SUCCESS),
    (S.TRIGGERED, S.FAILED),
    (S.RUNNING, S.SUCCESS),
    (S.RUNNING, S.FAILED),
}
#: how to bring a freshly claimed (RECEIVED) record to each status
PATHS: dict[TriggerStatus, list[TriggerStatus]] = {
    S.RECEIVED: [],
    S.TRIGGERED: [S.TRIGGERED],
    S.RUNNING: [S.TRIGGERED, S.RUNNING],
    S.SUCCESS: [S.TRIGGERED, S.SUCCESS],
    S.FAILED: [S.TRIGGERED, S.RUNNING, S.FAILED],
    S.REJECTED: [S.REJECTED],
    S.TRIGGER_FAILED: [S.TRIGGER_FAILED],
}
TARGETS = [S.TRIGGERED, S.REJECTED, S.TRIGGER_FAILED, S.RUNNING, S.SUCCESS, S.FAILED]


def _move(ledger: TriggerLedger, trigger_id: str, status: TriggerStatus) -> dict[str, Any]:
    if status is S.TRIGGERED:
        result = TriggerResult(dag_run_id="run-1", logical_date=None, state="queued")
        return ledger.mark_triggered(trigger_id, result=result, attempts=1)
    if status is S.REJECTED:
        return ledger.mark_rejected(trigger_id, code="bad", message="bad input", attempts=1)
    if status is S.TRIGGER_FAILED:
        return ledger.mark_trigger_failed(trigger_id, message="503", attempts=1)
    return ledger.update_run_state(trigger_id, status=status, airflow_state=status.lower())


@pytest.mark.parametrize("current", list(PATHS))
@pytest.mark.parametrize("target", TARGETS)
def test_each_status_change_is_allowed_only_from_its_previous_statuses(
    ledger: TriggerLedger,
    make_trigger: MakeTrigger,
    current: TriggerStatus,
    target: TriggerStatus,
) -> None:
    # Given a record in status `current`
    new = make_trigger()
    ledger.claim(new)
    for step in PATHS[current]:
        _move(ledger, new.trigger_id, step)
    before = ledger.get(new.trigger_id)

    if (current, target) in ALLOWED:
        # When it moves to an allowed status / Then the change is recorded
        record = _move(ledger, new.trigger_id, target)
        assert record["status"] == target
        assert record["transitions"][-1]["status"] == target
    else:
        # When it moves to a disallowed status / Then a domain error names both, record unchanged
        with pytest.raises(InvalidTransitionError) as raised:
            _move(ledger, new.trigger_id, target)
        assert raised.value.current == current
        assert raised.value.requested == target
        assert f"from {current} to {target}" in str(raised.value)
        assert ledger.get(new.trigger_id) == before


def test_full_life_is_recorded_in_order_and_the_lease_is_released(
    ledger: TriggerLedger, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    # Given a claimed trigger
    new = make_trigger()
    ledger.claim(new)

    # When it is triggered (Airflow already had the run, DAG paused), runs and succeeds
    clock.advance(seconds=1)
    triggered = ledger.mark_triggered(
        new.trigger_id,
        result=TriggerResult(
            dag_run_id="s3__trg-0001",
            logical_date="2026-11-21T02:00:01Z",
            state="queued",
            already_existed=True,
            dag_paused=True,
        ),
        attempts=2,
    )
    clock.advance(seconds=10)
    ledger.update_run_state(
        new.trigger_id,
        status=S.RUNNING,
        airflow_state="running",
        start_date="2026-11-21T02:00:05Z",
    )
    clock.advance(seconds=10)
    done = ledger.update_run_state(
        new.trigger_id,
        status=S.SUCCESS,
        airflow_state="success",
        start_date="2026-11-21T02:00:05Z",
        end_date="2026-11-21T02:00:20Z",
    )

    # Then each step is stored, the lease is gone, and the transitions tell the story
    assert "lease_until" not in triggered
    assert triggered["dag_run_id"] == "s3__trg-0001"
    assert triggered["logical_date"] == "2026-11-21T02:00:01Z"
    assert triggered["already_existed"] is True
    assert triggered["dag_paused"] is True
    assert triggered["triggered_at"] == "2026-11-21T02:00:01.123456Z"
    assert done["status"] == S.SUCCESS
    assert done["airflow_state"] == "success"
    assert done["end_date"] == "2026-11-21T02:00:20Z"
    assert done["attempts"] == 2
    assert done["updated_at"] == "2026-11-21T02:00:21.123456Z"
    assert done["transitions"] == [
        {"status": "RECEIVED", "at": "2026-11-21T02:00:00.123456Z"},
        {"status": "TRIGGERED", "at": "2026-11-21T02:00:01.123456Z"},
        {"status": "RUNNING", "at": "2026-11-21T02:00:11.123456Z"},
        {"status": "SUCCESS", "at": "2026-11-21T02:00:21.123456Z"},
    ]


def test_rejection_keeps_its_code_and_a_capped_reason(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given a claimed trigger
    new = make_trigger()
    ledger.claim(new)

    # When Airflow refuses it with a very long message
    record = ledger.mark_rejected(
        new.trigger_id, code="conf_not_object", message="x" * 100_000, attempts=1
    )

    # Then the code is kept and the reason is cut to a bounded length, marked as cut
    assert record["reject_code"] == "conf_not_object"
    assert 100 < len(record["reason"]) <= 2000
    assert record["reason"].endswith("…")


def test_only_the_last_five_errors_are_kept_and_history_stays_small(
    ledger: TriggerLedger, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    # Given a trigger that fails and is retried many times with huge error messages
    new = make_trigger()
    ledger.claim(new)
    cycles = MAX_TRANSITIONS // 2 + 2  # each cycle adds two transitions
    for failure in range(cycles):
        clock.advance(minutes=1)
        ledger.mark_trigger_failed(
            new.trigger_id, message=f"failure {failure:02}: " + "y" * 5_000, attempts=1
        )
        clock.advance(minutes=1)
        ledger.claim(new)

    # When the record is read
    record = ledger.get(new.trigger_id)

    # Then errors hold the last five, transitions are bounded, and the item stays small
    assert record is not None
    assert [error["message"][:10] for error in record["errors"]] == [
        f"failure {n:02}" for n in range(cycles - 5, cycles)
    ]
    assert all(len(error["message"]) <= 1000 for error in record["errors"])
    assert record["last_error"].startswith(f"failure {cycles - 1:02}: ")
    assert len(record["transitions"]) == MAX_TRANSITIONS
    assert record["transitions"][-1] == {"status": "RECEIVED", "at": to_timestamp(clock.now)}
    assert record["attempts"] == cycles
    assert record["deliveries"] == cycles + 1
    assert len(json.dumps(record).encode()) < 64 * 1024


def test_changing_an_unknown_trigger_says_it_does_not_exist(ledger: TriggerLedger) -> None:
    # Given no record / When it is marked triggered / Then the error names the missing id
    with pytest.raises(TriggerNotFoundError, match="no trigger record with id 'missing'"):
        ledger.mark_triggered(
            "missing",
            result=TriggerResult(dag_run_id="r", logical_date=None, state=None),
            attempts=1,
        )
    assert ledger.get("missing") is None


@pytest.mark.parametrize("status", [S.TRIGGERED, S.REJECTED, S.RECEIVED])
def test_run_state_update_accepts_only_run_statuses(
    ledger: TriggerLedger, status: TriggerStatus
) -> None:
    # Given / When the reconciler passes a status that is not a run state / Then ValueError
    with pytest.raises(ValueError, match="RUNNING, SUCCESS or FAILED"):
        ledger.update_run_state("any", status=status, airflow_state="queued")


def test_negative_attempts_are_refused(ledger: TriggerLedger, make_trigger: MakeTrigger) -> None:
    # Given a claimed trigger / When attempts is negative / Then ValueError names it
    new = make_trigger()
    ledger.claim(new)
    with pytest.raises(ValueError, match="attempts must not be negative"):
        ledger.mark_trigger_failed(new.trigger_id, message="x", attempts=-1)
