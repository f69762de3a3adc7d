"""Asset routes inside one process: an event -> routes -> ledger -> an asset event in an
in-memory Airflow (``AssetAirflow``), through the crashes, lost answers and replays that must
not create a second event."""

from __future__ import annotations

from typing import Any

import pytest

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import TransientTriggerError
from dagtrigger.ledger import TriggerStatus
from dagtrigger.sources.api.service import replay_trigger
from dagtrigger.sources.s3.parse import parse_sqs_body
from dagtrigger.sources.s3.plan import s3_trigger_ids
from dagtrigger.sources.s3.service import handle_s3_message
from dagtrigger.sources.schedules.service import handle_scheduled_trigger
from dagtrigger.trigger.execute import TriggerDisposition
from dagtrigger.trigger.reconcile import reconcile_open_triggers
from tests.unit.conftest import AssetAirflow, FunctionKilled
from tests.unit.ledger.conftest import FakeClock
from tests.unit.sources.s3.test_service import eventbridge_body

ORDERS = "s3://landing/orders/"
ROUTES = """\
version: 1
environments:
  prod:
    name: analytics-prod
    transport: invoke_rest_api
    airflow_major: 3
s3:
  - name: orders
    buckets: [landing]
    prefix: orders/
    environment: prod
    asset: "s3://{{ bucket }}/orders/"
    extra: {key: "{{ key }}", size: "{{ size }}"}
  - name: per-object
    buckets: [landing]
    prefix: loose/
    environment: prod
    asset: "s3://{{ bucket }}/{{ key }}"
schedules:
  - name: nightly-sales
    environment: prod
    asset: s3://landing/orders/
    extra: {day: "{{ scheduled_date }}"}
"""


@pytest.fixture
def routes_yaml() -> str:
    return ROUTES


@pytest.fixture
def airflow() -> AssetAirflow:
    return AssetAirflow(3, [ORDERS])


@pytest.fixture
def transport(airflow: AssetAirflow) -> Any:
    return airflow


def record_of(deps: Dependencies, body: str, route: str = "orders") -> dict[str, Any]:
    trigger_id, _ = s3_trigger_ids(parse_sqs_body(body).events[0], route)
    record = deps.ledger.get(trigger_id)
    assert record is not None
    return record


def posts(airflow: AssetAirflow) -> int:
    return sum(1 for method, path in airflow.calls if method == "POST")


@pytest.mark.parametrize("major", [3, 2])
def test_an_object_creates_one_asset_event_and_its_record_keeps_the_event_id(
    make_deps: Any, airflow: AssetAirflow, major: int
) -> None:
    # Given an asset route for orders/ (Airflow 3 assets, Airflow 2 datasets)
    airflow.major = major
    deps = make_deps()
    body = eventbridge_body("orders/2026-12-03.csv")

    # When the object's event is delivered, then delivered again
    (first,) = handle_s3_message(body, deps)
    (again,) = handle_s3_message(body, deps)

    # Then Airflow holds one event for the asset, with the object in its extra and our trigger
    # id beside it; the redelivery posted nothing
    assert (first.disposition, again.disposition) == (
        TriggerDisposition.TRIGGERED,
        TriggerDisposition.DUPLICATE,
    )
    (event,) = airflow.events
    assert event["extra"] == {
        "key": "orders/2026-12-03.csv",
        "size": 42,
        "dagtrigger": {"trigger_id": first.trigger_id},
        "from_rest_api": True,
    }
    record = record_of(deps, body)
    assert record["status"] == TriggerStatus.EVENT_CREATED
    assert (record["asset_uri"], record["asset_event_id"], record["asset_id"]) == (ORDERS, 1, 1)
    assert (record.get("dag_id"), record.get("dag_run_id")) == (None, None)
    assert record["conf"] == {"key": "orders/2026-12-03.csv", "size": 42}
    assert record["deliveries"] == 2


@pytest.mark.parametrize("taken_over_by", ["redelivery", "reconciler"])
def test_a_function_killed_after_airflow_recorded_the_event_never_creates_a_second(
    make_deps: Any, airflow: AssetAirflow, taken_over_by: str
) -> None:
    # Given a function killed after Airflow recorded the event and before the ledger write
    clock = FakeClock()
    deps = make_deps(clock=clock)
    body = eventbridge_body("orders/2026-12-03.csv")

    def killed() -> None:
        airflow.after_create = None
        raise FunctionKilled("killed between Airflow's answer and the ledger write")

    airflow.after_create = killed
    with pytest.raises(FunctionKilled):
        handle_s3_message(body, deps)
    assert record_of(deps, body)["status"] == TriggerStatus.RECEIVED

    # When its lease has run out and a redelivery or the reconciler takes the claim over
    clock.advance(seconds=deps.settings.trigger_lease_seconds + 1)
    if taken_over_by == "redelivery":
        handle_s3_message(body, deps)
    else:
        assert reconcile_open_triggers(deps).resumed == 1

    # Then the event Airflow has is found by our trigger id and recorded: still one event
    record = record_of(deps, body)
    assert record["status"] == TriggerStatus.EVENT_CREATED
    assert (record["asset_event_id"], record["already_existed"]) == (1, True)
    assert len(airflow.events) == 1
    assert posts(airflow) == 1


def test_an_answer_lost_to_a_timeout_is_found_on_the_retry_not_posted_again(
    make_deps: Any, airflow: AssetAirflow
) -> None:
    # Given Airflow that records the event and then does not answer in time, once
    deps = make_deps(trigger_budget_seconds=10)

    def timed_out() -> None:
        airflow.after_create = None
        raise TransientTriggerError("Airflow did not answer within the read timeout")

    airflow.after_create = timed_out

    # When the object arrives
    (outcome,) = handle_s3_message(eventbridge_body("orders/a.csv"), deps)

    # Then the retry looked first, found the event and recorded it: one event in Airflow
    assert outcome.record["status"] == TriggerStatus.EVENT_CREATED
    assert outcome.record["attempts"] == 2
    assert outcome.record["already_existed"] is True
    assert len(airflow.events) == 1


def test_an_asset_uri_airflow_cannot_take_is_rejected_before_any_call(
    deps: Dependencies, airflow: AssetAirflow
) -> None:
    # Given a route whose URI template puts the key in the URI as it is
    body = eventbridge_body("loose/a file.csv")

    # When an object whose key holds a space arrives
    (outcome,) = handle_s3_message(body, deps)

    # Then it is the event's own fault: recorded REJECTED with the URI and why, nothing sent
    assert outcome.disposition is TriggerDisposition.REJECTED
    record = outcome.record
    assert record["reject_code"] == "invalid_asset_uri"
    assert "'s3://landing/loose/a file.csv'" in record["reason"]
    assert "urlencode" in record["reason"]
    assert airflow.calls == []


def test_an_asset_airflow_lacks_is_rejected_and_a_replay_creates_the_event_once_it_exists(
    deps: Dependencies, airflow: AssetAirflow
) -> None:
    # Given Airflow whose DAGs do not name the asset yet
    airflow.assets.clear()
    body = eventbridge_body("orders/a.csv")
    (rejected,) = handle_s3_message(body, deps)
    assert rejected.record["reject_code"] == "asset_not_found"

    # When the consumer DAG is deployed and the trigger replayed
    airflow.assets[5] = ORDERS.rstrip("/")
    accepted = replay_trigger(
        rejected.trigger_id, caller="ops@example.com", idempotency_key=None, deps=deps
    )

    # Then the event is created for the asset, with the recorded extra
    assert accepted.record["status"] == TriggerStatus.EVENT_CREATED
    (event,) = airflow.events
    assert (event["asset_id"], event["extra"]["key"]) == (5, "orders/a.csv")


def test_a_schedule_route_can_name_an_asset(deps: Dependencies, airflow: AssetAirflow) -> None:
    # Given the nightly-sales schedule, whose route names the orders asset
    fire = {
        "route": "nightly-sales",
        "schedule_arn": "arn:aws:scheduler:us-east-1:111122223333:schedule/default/nightly",
        "scheduled_time": "2026-11-21T01:00:00Z",
        "execution_id": "e-1",
        "attempt": "1",
    }

    # When it fires
    result = handle_scheduled_trigger(fire, deps)

    # Then one event is created, its extra rendered from the fire
    assert result.disposition is TriggerDisposition.TRIGGERED
    (event,) = airflow.events
    assert event["extra"]["day"] == "2026-11-21"
