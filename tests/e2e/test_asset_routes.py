"""End to end: objects dropped under orders/ on the demo's asset route (``orders-asset``) become
asset events in the local Airflow, whose scheduler starts ``consume_orders`` for each; the
history keeps each event's id, and a backfill of the same objects (a redelivery of their events)
creates no event again.

Airflow 2 and 3 answer these calls differently (datasets, assets); the transports contract suite
runs the same events against each version (test_transports_contract.py).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from devstack.airflow import wait_for_dag
from devstack.processes import wait_until
from devstack.stack import LocalStack
from tests.e2e.test_several_environments import TIMEOUT_SECONDS, records_for, settled_record

pytestmark = pytest.mark.e2e

CONSUMER_DAG = "consume_orders"
ORDERS_URI = "s3://landing/orders/"


def consumer_run_of(stack: LocalStack, event_id: int) -> str | None:
    """The run of the consumer DAG that ``event_id`` started, once Airflow's scheduler has made
    it (the event's ``created_dagruns``)."""
    assert stack.airflow is not None
    noun = "assets" if stack.airflow.major >= 3 else "datasets"
    listed = stack.airflow.api_session().get(
        stack.airflow.api_url(f"/{noun}/events"),
        params={"order_by": "-timestamp", "limit": 50},
        timeout=30,
    )
    if listed.status_code >= 500:  # the local Airflow's SQLite, locked by its scheduler: ask again
        print(f"GET /{noun}/events: {listed.status_code} {listed.text[:200]}")
        return None
    assert listed.ok, listed.text
    for event in listed.json()[f"{noun[:-1]}_events"]:
        if event["id"] != event_id:
            continue
        return next(
            (
                str(run.get("run_id") or run.get("dag_run_id"))  # Airflow 3, Airflow 2
                for run in event.get("created_dagruns") or ()
                if run.get("dag_id") == CONSUMER_DAG
            ),
            None,
        )
    return None


def orders_event_count(stack: LocalStack) -> int:
    assert stack.airflow is not None
    session = stack.airflow.api_session()
    noun = "assets" if stack.airflow.major >= 3 else "datasets"
    listed = session.get(stack.airflow.api_url(f"/{noun}/events"), params={"limit": 1}, timeout=30)
    assert listed.ok, listed.text
    return int(listed.json()["total_entries"])


def test_each_object_makes_airflow_run_the_consumer_and_a_redelivery_creates_no_event(
    stack: LocalStack, dagtrigger: Any
) -> None:
    assert stack.airflow is not None
    wait_for_dag(stack.airflow, CONSUMER_DAG)
    bucket, marker = stack.source_bucket, uuid.uuid4().hex[:8]
    prefix = f"orders/asset {marker}"

    # When three objects land under orders/, one after the other
    records: dict[str, dict[str, Any]] = {}
    runs: dict[str, str] = {}
    for number in range(3):
        key = f"{prefix}-{number}.csv"
        stack.s3.put_object(Bucket=bucket, Key=key, Body=b"order,amount\n1,2\n")

        # Then each is recorded EVENT_CREATED with the id of the event Airflow holds for the
        # asset, and Airflow's scheduler starts the consumer DAG for that event
        record = settled_record(stack, bucket, key, wanted={"EVENT_CREATED"})
        assert (record["route"], record["asset_uri"]) == ("orders-asset", ORDERS_URI), record
        assert json.loads(record["conf"])["key"] == key  # the item keeps the extra as JSON
        event_id = int(record["asset_event_id"])
        runs[key] = wait_until(
            lambda event_id=event_id: consumer_run_of(stack, event_id),
            timeout=TIMEOUT_SECONDS,
            interval=2.0,
            what=f"a run of {CONSUMER_DAG} started by asset event {event_id}",
        )
        records[key] = record
    assert len(set(runs.values())) == 3, runs
    assert len({int(record["asset_event_id"]) for record in records.values()}) == 3

    # When the same objects are sent again (a backfill: a redelivery of their events)
    events_before = orders_event_count(stack)
    sent = dagtrigger("backfill", f"s3://{bucket}/{prefix}")
    assert sent.exit_code == 0, sent.output

    # Then each record counts the second delivery, and Airflow got no event more
    for key in records:
        wait_until(
            lambda key=key: [r for r in records_for(stack, bucket, key) if r["deliveries"] >= 2],
            timeout=TIMEOUT_SECONDS,
            what=f"the backfill of s3://{bucket}/{key} to reach its record",
        )
    assert orders_event_count(stack) == events_before

    # And the history tells which event each object made
    key, record = next(iter(records.items()))
    shown = dagtrigger("show", str(record["trigger_id"]))
    assert shown.exit_code == 0, shown.output
    assert f"asset event {int(record['asset_event_id'])} created" in shown.stdout
    assert ORDERS_URI in shown.stdout
