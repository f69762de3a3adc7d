"""A DAG that Airflow's data-aware scheduling starts: it consumes the asset (Airflow 3) or
dataset (Airflow 2) ``s3://landing/orders/``, which asset routes post events to.

Each run logs the asset events that triggered it, with their ``extra`` (where dagtrigger puts
the S3 object's details and its trigger id).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pendulum

try:  # Airflow 3
    from airflow.sdk import Asset as _Asset
    from airflow.sdk import dag, task

    TRIGGERING_EVENTS_KEY = "triggering_asset_events"
except ImportError:  # Airflow 2.x
    from airflow.datasets import Dataset as _Asset
    from airflow.decorators import dag, task

    TRIGGERING_EVENTS_KEY = "triggering_dataset_events"

ORDERS_URI = "s3://landing/orders/"
log = logging.getLogger(__name__)


@dag(
    dag_id="consume_orders",
    description="Started by Airflow when the orders asset gets an event.",
    schedule=[_Asset(ORDERS_URI)],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["dagtrigger", "sample", "asset"],
)
def consume_orders() -> None:
    @task(task_id="log_events")
    def log_events(**context: Any) -> None:
        events = context.get(TRIGGERING_EVENTS_KEY) or {}
        for uri, asset_events in dict(events).items():
            for event in asset_events:
                log.info("asset %s event extra %s", uri, json.dumps(dict(event.extra or {})))

    log_events()


consume_orders()
