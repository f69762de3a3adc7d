"""Fixtures for the schedule path, on top of tests/unit/conftest.py (moto history table,
recording transport, scripted answers): a routes file with ``schedules:`` routes, a ledger whose
clock is fixed (so lateness is exact), and a moto EventBridge Scheduler."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from dagtrigger.dependencies import Dependencies

#: what the ledger's clock says: the fires in events/schedules/ are due at 01:00 and 06:30
LEDGER_NOW = datetime(2026, 11, 21, 7, 0, 0, tzinfo=UTC)
_groups = itertools.count(1)

ROUTES_YAML = """\
version: 1
environments:
  prod:
    name: analytics-prod
    transport: invoke_rest_api
    airflow_major: 3
s3:
  - name: sales-csv
    buckets: [landing]
    environment: prod
    dag_id: ingest_sales
schedules:
  - name: nightly-sales
    environment: prod
    dag_id: nightly_sales
    conf:
      day: "{{ scheduled_date }}"
      region: "{{ conf.region | default('global') }}"
      fired_for: "{{ scheduled_time }}"
      schedule: "{{ schedule_name }}"
  - name: weekly-report
    environment: prod
    dag_id: weekly_report
  - name: paused-schedule
    environment: prod
    dag_id: never_runs
    paused: true
  - name: broken-conf
    environment: prod
    dag_id: never_runs
    conf_template: '{% if schedule_name %}["not", "an", "object"]{% endif %}'
"""


@pytest.fixture
def routes_yaml() -> str:
    return ROUTES_YAML


@pytest.fixture
def ledger_now() -> datetime:
    return LEDGER_NOW


@pytest.fixture
def ledger_clock(ledger_now: datetime) -> Callable[[], datetime]:
    return lambda: ledger_now


@pytest.fixture
def deps(
    make_deps: Callable[..., Dependencies], ledger_clock: Callable[[], datetime]
) -> Dependencies:
    return make_deps(clock=ledger_clock, trigger_budget_seconds=0.3)


@pytest.fixture
def scheduler(dynamodb: Any) -> Any:
    """A Scheduler client inside the same moto mock as the history table."""
    return boto3.client("scheduler", region_name="us-east-1")


@pytest.fixture
def schedule_group(scheduler: Any) -> Iterator[str]:
    name = f"dagtrigger-test-{next(_groups)}"
    scheduler.create_schedule_group(Name=name)
    yield name
    scheduler.delete_schedule_group(Name=name)
