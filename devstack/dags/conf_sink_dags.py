"""Sample DAGs that show what conf a triggered run received.

`ingest_sales` and `echo_conf` log their dag_run.conf and write it as JSON to
<sink>/<dag_id>/<run_id>.json, where <sink> is the environment variable DAGTRIGGER_CONF_SINK or
else the Airflow Variable `dagtrigger_conf_sink`; with neither they only log it. Contract and
end-to-end tests read those files to assert that "the task sees the conf". They parse on
Airflow 3 (airflow.sdk) and on Airflow 2.10 (airflow.decorators).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pendulum

try:  # Airflow 3
    from airflow.sdk import Variable, dag, task
except ImportError:  # Airflow 2.x
    from airflow.decorators import dag, task
    from airflow.models import Variable

SINK_ENV = "DAGTRIGGER_CONF_SINK"
SINK_VARIABLE = "dagtrigger_conf_sink"
_UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.~+-]")
log = logging.getLogger(__name__)


def conf_sink_directory() -> Path | None:
    configured = os.environ.get(SINK_ENV) or _variable_or_none(SINK_VARIABLE)
    return Path(configured) if configured else None


def record_conf(dag_run: Any) -> dict[str, Any]:
    """Log the run's conf and, when a sink is configured, write it there atomically."""
    conf = dict(dag_run.conf or {})
    log.info("dag %s run %s received conf %s", dag_run.dag_id, dag_run.run_id, json.dumps(conf))
    sink = conf_sink_directory()
    if sink is not None:
        target = (
            sink / dag_run.dag_id / f"{_UNSAFE_FILENAME_CHARACTERS.sub('_', dag_run.run_id)}.json"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".json.partial")
        partial.write_text(
            json.dumps({"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "conf": conf})
        )
        partial.replace(target)  # readers never see half a file
        log.info("wrote conf to %s", target)
    return conf


def _variable_or_none(key: str) -> str | None:
    try:
        value = Variable.get(key)
    except Exception:  # a missing Variable raises KeyError on 2.x and a not-found error on 3.x
        return None
    return str(value) if value else None


def _conf_recording_dag(dag_id: str, description: str) -> Any:
    @dag(
        dag_id=dag_id,
        description=description,
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        tags=["dagtrigger", "sample"],
    )
    def conf_recording() -> None:
        @task(task_id="record_conf")
        def record(dag_run: Any = None) -> dict[str, Any]:
            return record_conf(dag_run)

        record()

    return conf_recording()


ingest_sales = _conf_recording_dag("ingest_sales", "Ingest a sales file named in the run's conf.")
echo_conf = _conf_recording_dag("echo_conf", "Log and record whatever conf the run was given.")
