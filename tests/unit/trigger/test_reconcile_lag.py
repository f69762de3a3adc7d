"""The reconciler's lag: each pass publishes the age of the oldest trigger it still follows."""

from __future__ import annotations

from typing import Any

from dagtrigger.observability import MetricName, metrics
from dagtrigger.trigger.reconcile import reconcile_open_triggers
from tests.unit.ledger.conftest import FakeClock
from tests.unit.trigger.test_reconcile import trigger


def last_oldest_open_age() -> float:
    published = metrics.metric_set[MetricName.OLDEST_OPEN_TRIGGER_AGE]
    assert published["Unit"] == "Seconds"
    return float(published["Value"][-1])


def test_each_pass_publishes_the_age_of_the_oldest_open_trigger(
    make_deps: Any, transport: Any
) -> None:
    # Given two running DAG runs, triggered 8 and 3 minutes ago (young: read every pass)
    clock = FakeClock()
    deps = make_deps(clock=clock)
    older = trigger(deps, "sales/a.csv")
    clock.advance(minutes=5)
    younger = trigger(deps, "sales/b.csv")
    clock.advance(minutes=3)
    transport.run_states.update({older["dag_run_id"]: "running", younger["dag_run_id"]: "running"})

    # When a pass runs, Then it publishes the older one's age
    reconcile_open_triggers(deps)
    assert last_oldest_open_age() == 8 * 60

    # And once the older run has finished, the younger one's
    transport.run_states[older["dag_run_id"]] = "success"
    reconcile_open_triggers(deps)
    clock.advance(minutes=1)
    reconcile_open_triggers(deps)
    assert last_oldest_open_age() == 4 * 60

    # And zero when nothing is left open
    transport.run_states[younger["dag_run_id"]] = "failed"
    reconcile_open_triggers(deps)
    reconcile_open_triggers(deps)
    assert last_oldest_open_age() == 0
