"""A paused DAG is logged once per DAG and interval, while every record keeps its flag."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from dagtrigger.dependencies import Dependencies
from dagtrigger.sources.s3.service import handle_s3_message
from dagtrigger.transports.base import TriggerRequest, TriggerResult
from dagtrigger.trigger.paused_dags import OncePerInterval, paused_dag_warnings
from tests.unit.sources.s3.test_service import eventbridge_body

PAUSED_WARNING = "DAG is paused"


@pytest.fixture(autouse=True)
def _fresh_instance() -> Iterator[None]:
    """Each test starts as a new Lambda instance, which has warned about nothing yet."""
    paused_dag_warnings.forget()
    yield
    paused_dag_warnings.forget()


def paused_dag(request: TriggerRequest) -> TriggerResult:
    return TriggerResult(
        dag_run_id=request.dag_run_id, logical_date=None, state="queued", dag_paused=True
    )


def test_a_burst_on_a_paused_dag_logs_one_warning_and_flags_every_record(
    deps: Dependencies, transport: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a DAG that Airflow reports as paused on every trigger
    keys = [f"sales/burst-{number:03d}.csv" for number in range(100)]
    transport.answers.extend([paused_dag] * len(keys))

    # When a burst of 100 files starts 100 runs of it in one function instance
    with caplog.at_level(logging.WARNING, logger="dagtrigger"):
        for key in keys:
            handle_s3_message(eventbridge_body(key), deps)

    # Then the pause is logged once, naming the DAG
    warnings = [r for r in caplog.records if r.getMessage().startswith(PAUSED_WARNING)]
    assert len(transport.calls) == 100
    assert len(warnings) == 1
    assert warnings[0].__dict__["dag_id"] == "ingest_sales"

    # And every record still says the DAG was paused
    flags = {
        record["dag_paused"]
        for key in keys
        for record in deps.ledger.query_by_source(f"s3://landing/{key}").items
    }
    assert flags == {True}


def test_the_memo_says_first_once_per_key_and_interval() -> None:
    # Given a memo of 10 minutes on a clock the test moves
    now = [0.0]
    memo = OncePerInterval(600, clock=lambda: now[0])

    # Then each key is first once, repeats within the interval are not, and after it again
    assert memo.first(("prod", "etl")) is True
    assert memo.first(("prod", "etl")) is False
    assert memo.first(("prod", "other_dag")) is True
    now[0] = 599.0
    assert memo.first(("prod", "etl")) is False
    now[0] = 600.0
    assert memo.first(("prod", "etl")) is True
