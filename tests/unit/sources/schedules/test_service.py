"""The schedule path inside one process: Scheduler input -> routes -> ledger -> transport."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dagtrigger import ids
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import TriggerFailedError
from dagtrigger.sources.schedules.service import handle_scheduled_trigger, lateness_seconds
from dagtrigger.trigger.execute import TriggerDisposition

EVENTS = Path(__file__).resolve().parents[4] / "events" / "schedules"
NIGHTLY_ARN = "arn:aws:scheduler:us-east-1:111122223333:schedule/dagtrigger-schedules/nightly-sales"


def load_event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def fire(**changes: Any) -> dict[str, Any]:
    """The nightly-sales fire of events/schedules/route_fire.json, with ``changes`` applied."""
    event = load_event("route_fire.json")
    event.update(changes)
    return {key: value for key, value in event.items() if value is not None}


def record_of(deps: Dependencies, trigger_id: str) -> dict[str, Any]:
    record = deps.ledger.get(trigger_id)
    assert record is not None, f"no ledger record {trigger_id}"
    return record


# ------------------------------------------------------------------------------ starting runs


def test_route_fire_starts_one_run_with_the_route_conf_and_the_schedule_conf_merged(
    deps: Dependencies, transport: Any
) -> None:
    # Given the nightly-sales fire due at 01:00 UTC, asking for region emea
    event = load_event("route_fire.json")

    # When the function handles it
    result = handle_scheduled_trigger(event, deps)

    # Then one run of the route's DAG starts, its conf rendered from the fire's variables with
    # the schedule's own conf merged over it
    assert result.disposition is TriggerDisposition.TRIGGERED
    (call,) = transport.calls
    assert (call.environment.alias, call.environment.name) == ("prod", "analytics-prod")
    assert call.dag_id == "nightly_sales"
    assert call.conf == {
        "day": "2026-11-21",
        "region": "emea",
        "fired_for": "2026-11-21T01:00:00Z",
        "schedule": "nightly-sales",
        "full_refresh": False,
    }
    # And the run id names the schedule and its scheduled time, and is what the record holds
    assert call.dag_run_id.startswith("dagtrigger__schedule__nightly-sales__20261121T010000Z__")
    assert ids.AIRFLOW_RUN_ID_PATTERN.match(call.dag_run_id)
    record = record_of(deps, result.trigger_id)
    assert record["status"] == "TRIGGERED"
    assert record["dag_run_id"] == call.dag_run_id == result.dag_run_id
    assert record["source_type"] == "schedule"
    assert record["source_key"] == NIGHTLY_ARN
    assert record["route"] == "nightly-sales"
    assert record["conf"] == call.conf
    assert record["source_ref"]["execution_id"] == "d32c5kddcf5bb8c3"
    assert record["source_ref"]["attempt"] == 1


def test_direct_fire_names_environment_and_dag_and_gets_the_default_conf(
    deps: Dependencies, transport: Any
) -> None:
    # Given a fire that names an environment alias and a DAG instead of a route
    event = load_event("direct_dag_fire.json")

    # When the function handles it
    result = handle_scheduled_trigger(event, deps)

    # Then that DAG runs with the schedule defaults plus the schedule's conf, and no route
    (call,) = transport.calls
    assert (call.environment.alias, call.dag_id) == ("prod", "refresh_dimensions")
    assert call.conf == {
        "scheduled_time": "2026-11-21T06:30:00Z",
        "schedule_name": "refresh-dimensions",
        "tables": ["customers", "products"],
    }
    record = record_of(deps, result.trigger_id)
    assert record["status"] == "TRIGGERED"
    assert "route" not in record
    assert (record["environment"], record["dag_id"]) == ("prod", "refresh_dimensions")


def test_route_without_conf_sends_scheduled_time_and_schedule_name(
    deps: Dependencies, transport: Any
) -> None:
    # Given a fire for a route that names no conf, and a schedule without one
    event = fire(route="weekly-report", conf=None)

    # When it is handled
    handle_scheduled_trigger(event, deps)

    # Then the conf says when the run was due and which schedule asked for it
    (call,) = transport.calls
    assert call.conf == {"scheduled_time": "2026-11-21T01:00:00Z", "schedule_name": "nightly-sales"}


# ------------------------------------------------------------------------------- idempotency


def test_retried_fire_with_a_new_execution_id_starts_no_second_run(
    deps: Dependencies, transport: Any
) -> None:
    # Given the same schedule and scheduled time delivered twice, as the Scheduler retries:
    # each attempt has its own execution id and attempt number
    first, retry = load_event("route_fire.json"), load_event("retried_fire.json")
    assert first["execution_id"] != retry["execution_id"]

    # When both are handled
    first_result = handle_scheduled_trigger(first, deps)
    retry_result = handle_scheduled_trigger(retry, deps)

    # Then Airflow was asked once, and the one record counts two deliveries
    assert len(transport.calls) == 1
    assert retry_result.trigger_id == first_result.trigger_id
    assert retry_result.disposition is TriggerDisposition.DUPLICATE
    assert retry_result.dag_run_id == first_result.dag_run_id
    record = record_of(deps, first_result.trigger_id)
    assert record["deliveries"] == 2
    assert record["status"] == "TRIGGERED"


def test_next_scheduled_time_of_the_same_schedule_is_a_new_run(
    deps: Dependencies, transport: Any
) -> None:
    # Given two fires of one schedule, a day apart
    today = fire()
    tomorrow = fire(scheduled_time="2026-11-22T01:00:00Z", execution_id="e1f2a3b4c5d6e7f8")

    # When both are handled
    results = [handle_scheduled_trigger(event, deps) for event in (today, tomorrow)]

    # Then each starts its own run, with its own run id
    assert [result.disposition for result in results] == [TriggerDisposition.TRIGGERED] * 2
    assert len({call.dag_run_id for call in transport.calls}) == 2


def test_two_schedules_due_at_the_same_time_are_two_runs(
    deps: Dependencies, transport: Any
) -> None:
    # Given two schedules of the same route due at the same moment
    other_arn = NIGHTLY_ARN.replace("nightly-sales", "nightly-sales-eu")
    events = [fire(), fire(schedule_arn=other_arn)]

    # When both fire
    results = [handle_scheduled_trigger(event, deps) for event in events]

    # Then both run: the schedule ARN is part of the identity
    assert len(transport.calls) == 2
    assert results[0].trigger_id != results[1].trigger_id


# ------------------------------------------------------------------------------- lateness


def test_late_fire_shows_scheduled_time_beside_trigger_time(
    deps: Dependencies, transport: Any
) -> None:
    # Given a fire due at 01:00 UTC that only arrives at 07:00 (the ledger's clock)
    event = fire(scheduled_time="2026-11-21T01:00:00Z")

    # When it is handled
    result = handle_scheduled_trigger(event, deps)

    # Then the record keeps both times, and the fire is six hours late
    record = record_of(deps, result.trigger_id)
    assert record["scheduled_time"] == "2026-11-21T01:00:00.000000Z"
    assert record["created_at"] == record["triggered_at"] == "2026-11-21T07:00:00.000000Z"
    assert result.lateness_seconds == lateness_seconds(record) == 6 * 3600
    # And the schedule's history (by source) shows the same
    (listed,) = deps.ledger.query_by_source(NIGHTLY_ARN).items
    assert lateness_seconds(listed) == 6 * 3600


def test_an_on_time_fire_is_not_late(deps: Dependencies, ledger_now: datetime) -> None:
    # Given a fire due exactly when the ledger records it
    event = fire(scheduled_time=ledger_now.isoformat())

    # When it is handled
    result = handle_scheduled_trigger(event, deps)

    # Then it is zero seconds late
    assert result.lateness_seconds == 0


def test_lateness_is_unknown_without_a_scheduled_time() -> None:
    assert lateness_seconds({"created_at": "2026-11-21T07:00:00.000000Z"}) is None


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("event", "expected_in_reason"),
    [
        pytest.param(
            load_event("unsubstituted_input.json"),
            "scheduled_time: still holds the keyword <aws.scheduler.scheduled-time>",
            id="keywords-not-replaced",
        ),
        pytest.param(
            fire(schedule_arn=None),
            "schedule_arn: Field required (put <aws.scheduler.schedule-arn> in the schedule's",
            id="no-schedule-arn",
        ),
        pytest.param(
            fire(scheduled_time="2026-11-21T01:00:00"),
            "scheduled_time: Input should have timezone info",
            id="naive-scheduled-time",
        ),
        pytest.param(
            fire(schedule_arn="arn:aws:events:us-east-1:111122223333:rule/nightly"),
            "schedule_arn: not a schedule ARN (arn:aws:scheduler:REGION:ACCOUNT:schedule/",
            id="rule-arn-not-schedule-arn",
        ),
        pytest.param(
            fire(environment="prod", dag_id="nightly_sales"),
            "give either route, or environment and dag_id, not both",
            id="route-and-dag",
        ),
        pytest.param(
            fire(route=None, environment="prod"),
            "give a route, or both environment and dag_id",
            id="environment-without-dag",
        ),
        pytest.param(
            fire(rout="nightly-sales"),
            "rout: unknown key (expected some of: route, environment, dag_id, conf",
            id="misspelt-key",
        ),
        pytest.param(
            fire(conf=["not", "an", "object"]),
            "conf: Input should be a valid dictionary",
            id="conf-not-object",
        ),
        pytest.param(
            fire(route="-leading-dash"),
            "route: a route name is lower-case letters, digits, '_' and '-', not starting with "
            "'_' or '-' (got '-leading-dash')",
            id="bad-route",
        ),
        pytest.param(["not", "an", "object"], "must be a JSON object, not list", id="a-list"),
        pytest.param("{not json", "the schedule input is not JSON", id="not-json"),
    ],
)
def test_bad_input_is_recorded_as_rejected_and_the_function_returns(
    event: Any, expected_in_reason: str, deps: Dependencies, transport: Any
) -> None:
    # When the function receives an input it cannot use
    result = handle_scheduled_trigger(event, deps)

    # Then nothing runs, the function returns normally (retrying would not help), and the
    # record says why, naming the field
    assert transport.calls == []
    assert result.disposition is TriggerDisposition.REJECTED
    assert result.status == "REJECTED"
    record = record_of(deps, result.trigger_id)
    assert record["status"] == "REJECTED"
    assert record["reject_code"] == "invalid_schedule_input"
    assert expected_in_reason in record["reason"]
    assert result.reason == record["reason"]


def test_rejected_input_keeps_the_schedule_and_time_it_names(deps: Dependencies) -> None:
    # Given an input whose ARN and time are readable but whose target is not
    event = fire(route=None)

    # When it is handled
    result = handle_scheduled_trigger(event, deps)

    # Then the rejection is filed under the schedule, at its scheduled time
    record = record_of(deps, result.trigger_id)
    assert record["source_key"] == NIGHTLY_ARN
    assert record["scheduled_time"] == "2026-11-21T01:00:00.000000Z"
    assert result.lateness_seconds == 6 * 3600


def test_a_retried_bad_input_is_recorded_once(deps: Dependencies) -> None:
    # Given the same bad fire delivered twice with different execution ids
    first = fire(conf="not an object")
    retry = fire(conf="not an object", execution_id="a87ff679a2f3e71d", attempt="2")

    # When both are handled
    results = [handle_scheduled_trigger(event, deps) for event in (first, retry)]

    # Then there is one rejection, counting two deliveries
    assert results[0].trigger_id == results[1].trigger_id
    assert results[1].disposition is TriggerDisposition.DUPLICATE
    assert record_of(deps, results[0].trigger_id)["deliveries"] == 2


@pytest.mark.parametrize(
    ("changes", "status", "code", "expected_in_reason"),
    [
        ({"route": "no-such-route"}, "REJECTED", "no_route", "no route named 'no-such-route'"),
        ({"route": "sales-csv"}, "REJECTED", "not_a_schedule_route", "not in the schedules: list"),
        (
            {"route": None, "environment": "staging", "dag_id": "nightly_sales"},
            "REJECTED",
            "unknown_environment",
            "unknown environment 'staging' (the routes file defines: prod)",
        ),
        (
            {"route": "paused-schedule"},
            "IGNORED",
            "route_paused",
            "route paused-schedule is paused",
        ),
        ({"route": "broken-conf"}, "REJECTED", "conf_not_object", "must be a JSON object"),
    ],
)
def test_a_target_that_cannot_run_is_recorded_with_the_reason(
    changes: dict[str, Any],
    status: str,
    code: str,
    expected_in_reason: str,
    deps: Dependencies,
    transport: Any,
) -> None:
    # Given a well-formed fire whose route or environment cannot start a run
    event = fire(**changes)

    # When it is handled
    result = handle_scheduled_trigger(event, deps)

    # Then nothing runs and the record says why
    assert transport.calls == []
    record = record_of(deps, result.trigger_id)
    assert (record["status"], record["reject_code"]) == (status, code)
    assert expected_in_reason in record["reason"]
    assert record["scheduled_time"] == "2026-11-21T01:00:00.000000Z"


def test_airflow_refusing_the_dag_is_rejected_and_the_function_returns(
    deps: Dependencies, transport: Any, answers: Any
) -> None:
    # Given Airflow does not know the DAG (a permanent answer)
    transport.answers.append(answers.dag_not_found)

    # When a fire is handled
    result = handle_scheduled_trigger(fire(), deps)

    # Then it is REJECTED with Airflow's message, and nothing is raised
    record = record_of(deps, result.trigger_id)
    assert (record["status"], record["reject_code"]) == ("REJECTED", "dag_not_found")
    assert "nightly_sales" in record["reason"]


# ------------------------------------------------------------------------ transient failures


def test_transient_failure_past_the_budget_raises_and_a_retry_triggers(
    deps: Dependencies, transport: Any, answers: Any
) -> None:
    # Given Airflow answers 503 for longer than the trigger budget
    transport.answers.extend([answers.server_error] * 1000)

    # When a fire is handled
    with pytest.raises(TriggerFailedError):
        handle_scheduled_trigger(fire(), deps)

    # Then the record says TRIGGER_FAILED with the last error, so Lambda retries the invocation
    trigger_id = ids.trigger_id(
        f"{NIGHTLY_ARN}#scheduled-time=2026-11-21T01:00:00Z", "nightly-sales"
    )
    failed = record_of(deps, trigger_id)
    assert failed["status"] == "TRIGGER_FAILED"
    assert "503" in failed["last_error"]

    # When Airflow recovers and Lambda retries the same event
    transport.answers.clear()
    calls_before_retry = len(transport.calls)
    result = handle_scheduled_trigger(fire(), deps)

    # Then the retry takes the record over and starts the run, with the same run id
    assert result.trigger_id == trigger_id
    assert result.disposition is TriggerDisposition.TRIGGERED
    assert len(transport.calls) == calls_before_retry + 1
    assert transport.calls[-1].dag_run_id == transport.calls[0].dag_run_id
    record = record_of(deps, trigger_id)
    assert (record["status"], record["deliveries"]) == ("TRIGGERED", 2)


def test_scheduled_time_is_compared_in_utc_whatever_offset_it_carries(
    deps: Dependencies, transport: Any
) -> None:
    # Given the same instant written with a +01:00 offset and in UTC
    paris = fire(scheduled_time="2026-11-21T02:00:00+01:00")
    utc = fire(scheduled_time=datetime(2026, 11, 21, 1, tzinfo=UTC).isoformat())

    # When both are handled
    results = [handle_scheduled_trigger(event, deps) for event in (paris, utc)]

    # Then they are one fire
    assert len(transport.calls) == 1
    assert results[0].trigger_id == results[1].trigger_id


def test_a_merged_conf_over_the_size_limit_is_rejected(deps: Dependencies, transport: Any) -> None:
    # Given a schedule conf just under the input's limit, which the route's conf then grows
    # past CONF_MAX_BYTES
    blob = "x" * (deps.settings.conf_max_bytes - 100)
    event = fire(conf={"blob": blob})

    # When it is handled
    result = handle_scheduled_trigger(event, deps)

    # Then nothing runs, and the record gives the size and the limit
    assert transport.calls == []
    record = record_of(deps, result.trigger_id)
    assert (record["status"], record["reject_code"]) == ("REJECTED", "conf_too_large")
    assert f"over the limit of {deps.settings.conf_max_bytes} bytes" in record["reason"]
