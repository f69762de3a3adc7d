"""Sample DAGs that show what conf a triggered run received.

`ingest_sales` and `echo_conf` log their dag_run.conf and write it as JSON to
<sink>/<dag_id>/<run_id>.json, where <sink> is the environment variable DAGTRIGGER_CONF_SINK or
else the Airflow Variable `dagtrigger_conf_sink`; with neither they only log it. Contract and
end-to-end tests read those files to assert that "the task sees the conf". They parse on
Airflow 3 (airflow.sdk) and on Airflow 2.10 (airflow.decorators).

`load_export` is what a file-set route's DAG does with its conf: it takes the set's objects
from ``conf["objects"]`` or, when the list was too large for a conf, from the JSON manifest that
``conf["manifest"]`` names (read with boto3, so on MWAA the execution role needs s3:GetObject
there; the local stack points it at moto through the Airflow Variable
`dagtrigger_s3_endpoint_url`), checks the list against ``conf["set"]["object_count"]`` and
records the keys it would load.
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
#: where S3 answers, for a local stack (unset on MWAA: boto3's own endpoint)
S3_ENDPOINT_VARIABLE = "dagtrigger_s3_endpoint_url"
_UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.~+-]")
log = logging.getLogger(__name__)


def conf_sink_directory() -> Path | None:
    configured = os.environ.get(SINK_ENV) or _variable_or_none(SINK_VARIABLE)
    return Path(configured) if configured else None


def record_conf(dag_run: Any, **found: Any) -> dict[str, Any]:
    """Log the run's conf and, when a sink is configured, write it there atomically, with
    whatever else the task ``found`` (e.g. a file set's object keys)."""
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
            json.dumps({"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "conf": conf, **found})
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


def file_set_objects(conf: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The objects of the file set a run was started for, and where they were listed ("conf"
    or the manifest's URI). Raises ValueError when the list is not the set's."""
    about = conf.get("set") or {}
    if "objects" in conf:
        objects, listed_in = list(conf["objects"]), "conf"
    elif "manifest" in conf:
        listed_in = str(conf["manifest"])
        manifest = _read_s3_json(listed_in)
        if (manifest.get("set") or {}).get("id") != about.get("id"):
            raise ValueError(f"{listed_in} is the manifest of another set, not {about.get('id')}")
        objects = list(manifest["objects"])
    else:
        raise ValueError("the conf names neither objects nor a manifest: not a file set's run")
    if len(objects) != about.get("object_count"):
        raise ValueError(
            f"{listed_in} lists {len(objects)} objects, the set has {about.get('object_count')}"
        )
    return objects, listed_in


def _read_s3_json(uri: str) -> dict[str, Any]:
    import boto3  # MWAA's images have it; imported here so the other DAGs parse without it

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=_variable_or_none(S3_ENDPOINT_VARIABLE))
    document: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return document


@dag(
    dag_id="load_export",
    description="Load the objects of a file set (an export's parts), listed in conf or manifest.",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["dagtrigger", "sample", "file-set"],
)
def load_export() -> None:
    @task(task_id="load_objects")
    def load_objects(dag_run: Any = None) -> int:
        conf = dict(dag_run.conf or {})
        objects, listed_in = file_set_objects(conf)
        for obj in objects:
            log.info("would load s3://%s/%s (%s bytes)", obj["bucket"], obj["key"], obj["size"])
        keys = [str(obj["key"]) for obj in objects]
        record_conf(dag_run, object_keys=keys, objects_listed_in=listed_in)
        return len(keys)

    load_objects()


load_export()
ingest_sales = _conf_recording_dag("ingest_sales", "Ingest a sales file named in the run's conf.")
echo_conf = _conf_recording_dag("echo_conf", "Log and record whatever conf the run was given.")
