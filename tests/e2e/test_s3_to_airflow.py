"""End to end: an object put into S3 travels EventBridge, SQS, the s3 function, the MWAA
emulator and Airflow; DynamoDB Local holds the record of a run that exists in Airflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from boto3.dynamodb.conditions import Key

from devstack.processes import wait_until
from devstack.stack import LocalStack

pytestmark = pytest.mark.e2e


def records_for(stack: LocalStack, bucket: str, key: str) -> list[dict[str, Any]]:
    answer = stack.history_table().query(
        IndexName="by_source", KeyConditionExpression=Key("source_key").eq(f"s3://{bucket}/{key}")
    )
    return answer["Items"]


def test_an_object_put_in_s3_ends_as_a_successful_airflow_run_with_its_conf(
    stack: LocalStack, conf_sink: Path
) -> None:
    # Given a key with spaces, an apostrophe, '+' and a literal %20
    bucket, key = "landing", "sales/e2e c++ o'brien%20v2.csv"
    body = b"region,amount\nnorth,1\n"

    # When it is put into S3
    put = stack.s3.put_object(Bucket=bucket, Key=key, Body=body)

    # Then one trigger record appears and Airflow ran the DAG with the object's conf
    (record,) = wait_until(
        lambda: [r for r in records_for(stack, bucket, key) if r.get("status") != "RECEIVED"],
        timeout=60,
        what="the trigger record",
    )
    assert record["status"] in {"TRIGGERED", "RUNNING", "SUCCESS"}, record
    run_id = record["dag_run_id"]
    assert stack.airflow is not None
    session = stack.airflow.api_session()
    run = session.get(
        stack.airflow.api_url(f"/dags/ingest_sales/dagRuns/{quote(run_id, safe='')}"), timeout=60
    )
    assert run.status_code == 200, run.text

    sink_file = conf_sink / "ingest_sales" / f"{run_id}.json"
    written = wait_until(lambda: sink_file.exists() and sink_file, timeout=90, what=str(sink_file))
    conf = json.loads(written.read_text())["conf"]
    assert conf["bucket"] == bucket
    assert conf["key"] == key
    assert conf["size"] == len(body)
    assert conf["version_id"] == put["VersionId"]

    # And the reconciler brings the record to the run's final state
    assert stack.runner is not None

    def reconciled() -> dict[str, Any] | None:
        stack.runner.invoke("ReconcilerFunction", {"source": "e2e"})  # type: ignore[union-attr]
        (latest,) = records_for(stack, bucket, key)
        return latest if latest["status"] == "SUCCESS" else None

    final = wait_until(reconciled, timeout=60, what="the record to say SUCCESS")
    assert final["airflow_state"] == "success"
    assert final["deliveries"] == 1
