"""A DAG whose run always fails in its task `load`, so tests can see a FAILED run reported with
the task that failed. `extract` succeeds first; `load` raises (no retries). It parses on
Airflow 3 (airflow.sdk) and on Airflow 2.10 (airflow.decorators).
"""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.x
    from airflow.decorators import dag, task


@dag(
    dag_id="fails_in_a_task",
    description="Always fails in its task `load`, after `extract` succeeds.",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["dagtrigger", "sample"],
)
def fails_in_a_task() -> None:
    @task(task_id="extract")
    def extract() -> int:
        return 1

    @task(task_id="load", retries=0)
    def load(rows: int) -> None:
        raise RuntimeError(f"refusing to load {rows} row(s): this DAG fails on purpose")

    load(extract())


fails_in_a_task()
