"""A DAG that starts paused, so tests can see that a run triggered on a paused DAG is reported."""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.x
    from airflow.decorators import dag, task


@dag(
    dag_id="always_paused",
    description="Starts paused even where new DAGs start unpaused.",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=True,
    tags=["dagtrigger", "sample"],
)
def always_paused() -> None:
    @task(task_id="noop")
    def noop() -> None:
        return None

    noop()


always_paused()
