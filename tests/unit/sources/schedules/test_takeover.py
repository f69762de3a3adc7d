"""A schedule fire whose function died after claiming it still starts exactly one run: the
Scheduler's retry finds the claim leased and stops, and the reconciler takes the claim over
once the lease ends."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.dependencies import Dependencies
from dagtrigger.sources.schedules.service import handle_scheduled_trigger
from dagtrigger.trigger.execute import TriggerDisposition
from dagtrigger.trigger.reconcile import reconcile_open_triggers
from tests.unit.conftest import FunctionKilled
from tests.unit.ledger.conftest import FakeClock

EVENTS = Path(__file__).resolve().parents[4] / "events" / "schedules"
#: well past the ledger's claim lease
AFTER_THE_LEASE = timedelta(hours=1)


def load_event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def clock(ledger_now: Any) -> FakeClock:
    return FakeClock(ledger_now)


@pytest.fixture
def deps(make_deps: Any, clock: FakeClock) -> Dependencies:
    return make_deps(clock=clock, trigger_budget_seconds=0.3)


def die_after_claiming(deps: Dependencies, transport: Any, answers: Any) -> str:
    """The first fire claims its trigger, then its function is killed mid-trigger."""
    transport.answers.append(answers.killed)
    with pytest.raises(FunctionKilled):
        handle_scheduled_trigger(load_event("route_fire.json"), deps)
    retry = handle_scheduled_trigger(load_event("retried_fire.json"), deps)
    assert retry.disposition is TriggerDisposition.DUPLICATE
    assert retry.status == "RECEIVED"
    return retry.trigger_id


def test_a_fire_killed_before_airflow_saw_the_run_is_started_once_by_the_reconciler(
    deps: Dependencies, transport: Any, answers: Any, clock: FakeClock
) -> None:
    # Given a fire killed after its claim, and the Scheduler's retry stopped by the live lease
    trigger_id = die_after_claiming(deps, transport, answers)

    # When the reconciler runs after the lease ended
    clock.advance(seconds=AFTER_THE_LEASE.total_seconds())
    summary = reconcile_open_triggers(deps)

    # Then it took the claim over and started the run with the recorded run id
    record = deps.ledger.get(trigger_id)
    assert record is not None
    assert summary.resumed == 1
    assert record["status"] == "TRIGGERED"
    assert [call.dag_run_id for call in transport.calls] == [record["dag_run_id"]] * 2
    assert record["conf"] == transport.calls[-1].conf

    # And the next pass starts nothing more
    reconcile_open_triggers(deps)
    assert len(transport.calls) == 2


def test_a_fire_killed_after_airflow_started_the_run_is_recorded_without_a_second_run(
    deps: Dependencies, transport: Any, answers: Any, clock: FakeClock
) -> None:
    # Given a fire killed after Airflow created its run, before the ledger heard of it
    trigger_id = die_after_claiming(deps, transport, answers)
    transport.answers.append(answers.already_exists)  # Airflow refuses the run id again

    # When the reconciler takes the claim over
    clock.advance(seconds=AFTER_THE_LEASE.total_seconds())
    reconcile_open_triggers(deps)

    # Then the record says TRIGGERED, and Airflow holds one run
    record = deps.ledger.get(trigger_id)
    assert record is not None
    assert (record["status"], record["already_existed"]) == ("TRIGGERED", True)


def test_a_claim_whose_lease_is_live_is_left_to_its_holder(
    deps: Dependencies, transport: Any, answers: Any, clock: FakeClock
) -> None:
    trigger_id = die_after_claiming(deps, transport, answers)

    summary = reconcile_open_triggers(deps)

    assert summary.resumed == 0
    record = deps.ledger.get(trigger_id)
    assert record is not None
    assert record["status"] == "RECEIVED"
    assert len(transport.calls) == 1


@pytest.mark.usefixtures("atomic_requests")
def test_reconcilers_overlapping_take_an_abandoned_claim_over_once(
    deps: Dependencies, transport: Any, answers: Any, clock: FakeClock
) -> None:
    # Given an abandoned claim whose lease has ended
    die_after_claiming(deps, transport, answers)
    clock.advance(seconds=AFTER_THE_LEASE.total_seconds())

    # When four reconciler passes run at once
    threads = [threading.Thread(target=reconcile_open_triggers, args=(deps,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then Airflow was asked once more, not four times
    assert len(transport.calls) == 2
