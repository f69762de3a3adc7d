"""`make demo`: the main job on one machine.

Scene 1 drops a few files into the local S3 (one key with spaces and an apostrophe, one
delivered twice), waits for the DAG runs to finish in the real Airflow, and prints the trigger
history with each run's Airflow state and timings. Scene 2 writes two exports of 50 part files
and a _SUCCESS marker for the demo's file-set route: the marker's event is delivered last for
one and first for the other, and each export starts exactly one run listing its 50 parts.
Exits non-zero if an expected run did not succeed.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from rich.console import Console
from rich.table import Table

from dagtrigger import ids
from devstack.stack import LocalStack

DEMO_FILES = {
    "sales/2026-11-21.csv": b"region,amount\nnorth,1200\nsouth,950\n",
    "sales/q4 report - o'brien's.csv": b"region,amount\neast,1500\n",
    "sales/c++ notes%20v2.csv": b"region,amount\nwest,700\n",
}
DELIVERED_TWICE = "sales/2026-11-21.csv"
FINAL = {"SUCCESS", "FAILED", "REJECTED", "TRIGGER_FAILED", "IGNORED"}
#: the demo routes' file-set route (devstack/demo/routes.yaml) and its DAG
SET_ROUTE, SET_DAG = "exports", "load_export"
SET_PARTS = 50


@dataclass
class DemoResult:
    rows: list[dict[str, Any]]
    ok: bool


def run_demo(stack: LocalStack, console: Console, *, timeout: float = 90.0) -> DemoResult:
    bucket = stack.config.source_bucket
    for key, body in DEMO_FILES.items():
        console.print(f"  put s3://{bucket}/{key}")
        stack.s3.put_object(Bucket=bucket, Key=key, Body=body)
    _deliver_again(stack, bucket, DELIVERED_TWICE)
    console.print(
        f"  delivered s3://{bucket}/{DELIVERED_TWICE} a second time (S3 is at least once)"
    )

    rows = _wait_for_final(stack, bucket, console, timeout=timeout)
    _print_history(console, rows, stack)
    ok = len(rows) == len(DEMO_FILES) and all(row.get("status") == "SUCCESS" for row in rows)
    duplicate = next((r for r in rows if r["source_key"].endswith(DELIVERED_TWICE)), None)
    ok = ok and duplicate is not None and int(duplicate.get("deliveries", 0)) == 2
    sets_ok = _file_set_scene(stack, bucket, console, timeout=timeout)
    return DemoResult(rows=rows, ok=ok and sets_ok)


def _file_set_scene(stack: LocalStack, bucket: str, console: Console, *, timeout: float) -> bool:
    """Two exports of 50 parts and a marker; the marker's event last for one, first for the
    other: one run each, listing its 50 parts."""
    console.print()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folders = {
        "last": f"exports/demo-{stamp}-marker-last",
        "first": f"exports/demo-{stamp}-marker-first",
    }
    for when, folder in folders.items():
        keys = [f"{folder}/part-{number:05d}.csv" for number in range(SET_PARTS)]
        marker = f"{folder}/_SUCCESS"
        with stack.s3_events_held_back(bucket):  # the demo delivers them, in its order
            s3 = stack.s3
            for key in keys:
                s3.put_object(Bucket=bucket, Key=key, Body=b"order,amount\n1,2\n")
            s3.put_object(Bucket=bucket, Key=marker, Body=b"")
        order = [marker, *keys] if when == "first" else [*keys, marker]
        for number, key in enumerate(order):
            _send_object_created(stack, bucket, key, sequencer=number)
        console.print(
            f"  put s3://{bucket}/{folder}/: {SET_PARTS} parts and _SUCCESS, "
            f"the marker's event delivered {when}"
        )
    results = _wait_for_set_runs(stack, folders, console, timeout=timeout)
    table = Table(title="file sets: one run per export", show_lines=False)
    for column in ("export", "marker", "objects listed", "completion", "dag_run_id", "airflow"):
        table.add_column(column, overflow="fold")
    ok = True
    for when, folder in folders.items():
        result = results.get(folder, {})
        listed = len(result.get("objects") or ())
        ok = ok and listed == SET_PARTS and result.get("state") == "success"
        table.add_row(
            folder,
            f"delivered {when}",
            str(listed),
            str(result.get("completion", "-")),
            str(result.get("dag_run_id", "-")),
            str(result.get("state", "-")),
        )
    console.print(table)
    return ok


def _wait_for_set_runs(
    stack: LocalStack, folders: dict[str, str], console: Console, *, timeout: float
) -> dict[str, dict[str, Any]]:
    """Each folder's set run as Airflow holds it: its run id, state and conf."""
    assert stack.airflow is not None
    assert stack.runner is not None
    table = stack.history_table()
    session = stack.airflow.api_session()
    deadline = time.monotonic() + timeout
    found: dict[str, dict[str, Any]] = {}
    with console.status("waiting for the sets' runs to finish ..."):
        while time.monotonic() < deadline and len(found) < len(folders):
            stack.runner.invoke("ReconcilerFunction", {"source": "devstack.demo"})
            for folder in folders.values():
                set_id = ids.file_set_id(SET_ROUTE, folder)
                item = table.get_item(Key={"pk": set_id}).get("Item") or {}
                run_trigger = item.get("run_trigger_id")
                if folder in found or not run_trigger:
                    continue
                record = table.get_item(Key={"pk": run_trigger}).get("Item") or {}
                run_id = str(record.get("dag_run_id") or "")
                answer = session.get(
                    stack.airflow.api_url(f"/dags/{SET_DAG}/dagRuns/{run_id}"), timeout=10
                )
                run = answer.json() if answer.ok else {}
                if run.get("state") in ("success", "failed"):
                    conf = run.get("conf") or {}
                    found[folder] = {
                        "dag_run_id": run_id,
                        "state": run["state"],
                        "objects": conf.get("objects"),
                        "completion": item.get("completion_reason"),
                    }
            time.sleep(2)
    return found


def _send_object_created(stack: LocalStack, bucket: str, key: str, *, sequencer: int) -> None:
    """The Object Created event S3 sends for the object as it is now, sent to the S3 queue."""
    assert stack.runner is not None
    head = stack.s3.head_object(Bucket=bucket, Key=key)
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": head["ContentLength"],
                "etag": head["ETag"].strip('"'),
                "version-id": head["VersionId"],
                "sequencer": f"{0x0062E99A88DC407460 + sequencer:018X}",
            },
            "reason": "PutObject",
        },
    }
    queue_url = stack.runner.resources["S3EventsQueue"].url
    stack.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))


def _deliver_again(stack: LocalStack, bucket: str, key: str) -> None:
    """Send the same Object Created event again, as S3's at-least-once delivery may (in a
    versioned bucket the version id is the event's identity)."""
    _send_object_created(stack, bucket, key, sequencer=0)


def _records_for(stack: LocalStack, bucket: str) -> list[dict[str, Any]]:
    table = stack.history_table()
    rows = []
    for key in DEMO_FILES:
        answer = table.query(
            IndexName="by_source",
            KeyConditionExpression=Key("source_key").eq(f"s3://{bucket}/{key}"),
        )
        rows.extend(answer["Items"])
    return rows


def _wait_for_final(
    stack: LocalStack, bucket: str, console: Console, *, timeout: float
) -> list[dict[str, Any]]:
    assert stack.runner is not None
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    with console.status("waiting for the DAG runs to finish ...") as status:
        while time.monotonic() < deadline:
            # The reconciler runs every minute when deployed; here it is fired on demand.
            stack.runner.invoke("ReconcilerFunction", {"source": "devstack.demo"})
            rows = _records_for(stack, bucket)
            states = [row.get("status") for row in rows]
            status.update(f"waiting for the DAG runs to finish ... {states}")
            if len(rows) == len(DEMO_FILES) and all(s in FINAL for s in states):
                break
            time.sleep(2)
    return rows


def _print_history(console: Console, rows: list[dict[str, Any]], stack: LocalStack) -> None:
    table = Table(title="dagtrigger history (DynamoDB Local)", show_lines=False)
    for column in ("object", "status", "deliveries", "dag_run_id", "airflow", "trigger", "run"):
        table.add_column(column, overflow="fold")
    runs = _airflow_runs(stack)
    for row in sorted(rows, key=lambda r: r.get("created_at", "")):
        run = runs.get(row.get("dag_run_id", ""), {})
        table.add_row(
            row["source_key"],
            row.get("status", "?"),
            str(row.get("deliveries", "")),
            row.get("dag_run_id", "-"),
            run.get("state", row.get("airflow_state", "-")),
            _seconds_between(row.get("created_at"), row.get("triggered_at")),
            _seconds_between(run.get("start_date"), run.get("end_date")),
        )
    console.print(table)
    console.print(
        "[dim]trigger: event received to DAG run created; run: Airflow start to end[/dim]"
    )


def _airflow_runs(stack: LocalStack) -> dict[str, dict[str, Any]]:
    assert stack.airflow is not None
    session = stack.airflow.api_session()
    answer = session.get(stack.airflow.api_url("/dags/ingest_sales/dagRuns"), timeout=10)
    answer.raise_for_status()
    return {run["dag_run_id"]: run for run in answer.json().get("dag_runs", [])}


def _seconds_between(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    delta = _parse(end) - _parse(start)
    return f"{delta.total_seconds():.2f} s"


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
