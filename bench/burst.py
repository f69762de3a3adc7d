"""A burst of S3 objects on the local stack: time to trigger them all, and MWAA calls per function.

    .venv/bin/python -m bench.burst --files 1000 --reconcile-every 10
    .venv/bin/python -m bench.burst --files 1000 --reconcile-every 0   # no reconciler

Puts ``--files`` objects under ``sales/`` at once (the emulator caps InvokeRestApi at MWAA's ~10
requests a second), runs the reconciler every ``--reconcile-every`` seconds as its schedule would,
and prints: the time until every object's record left RECEIVED, the records per status, duplicate
runs in Airflow, and the MWAA calls each function made (counted at botocore's ``before-send``).
Numbers only; nothing is asserted. Every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

from devstack.paths import STATE_DIR
from devstack.stack import LocalStack, StackConfig

_OPEN_OR_DONE = ("TRIGGERED", "RUNNING", "SUCCESS", "FAILED", "UNKNOWN")
_ALL = (*_OPEN_OR_DONE, "RECEIVED", "TRIGGER_FAILED", "REJECTED", "IGNORED")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--reconcile-every", type=float, default=10.0, help="0: no reconciler")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()

    calls: Counter[str] = Counter()
    calls_lock = threading.Lock()

    def count_call(**_: Any) -> None:
        with calls_lock:
            calls[os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "(outside a function)")] += 1

    boto3._get_default_session().events.register("before-send.mwaa", count_call)
    stack = LocalStack(StackConfig(state_dir=STATE_DIR / "burst"), progress=lambda _: None)
    stack.start()
    try:
        _run(stack, args, calls)
    finally:
        stack.stop()


def _run(stack: LocalStack, args: argparse.Namespace, calls: Counter[str]) -> None:
    runner = stack.runner
    assert runner is not None
    bucket = stack.config.source_bucket
    run = time.strftime("%H%M%S")
    stop = threading.Event()
    passes: list[dict[str, Any]] = []

    def reconcile_on_schedule() -> None:
        while not stop.wait(args.reconcile_every):
            result = runner.invoke("ReconcilerFunction", {"source": "bench.burst"})
            summary = dict(result.payload) if isinstance(result.payload, dict) else {}
            passes.append({**summary, "seconds": result.duration_seconds})

    if args.reconcile_every > 0:
        threading.Thread(target=reconcile_on_schedule, daemon=True).start()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(
            pool.map(
                lambda n: stack.s3.put_object(
                    Bucket=bucket, Key=f"sales/burst-{run}-{n:05}.csv", Body=b"a,b\n1,2\n"
                ),
                range(args.files),
            )
        )
    put_seconds = time.monotonic() - started
    table = stack.history_table()
    counts: Counter[str] = Counter()
    while time.monotonic() - started < args.timeout:
        counts = _count_by_status(table, run)
        if sum(counts[status] for status in _OPEN_OR_DONE) >= args.files:
            break
        time.sleep(2)
    triggered_seconds = time.monotonic() - started
    stop.set()
    runs = _airflow_run_ids(stack)
    ours = [run_id for run_id in runs if f"burst-{run}-" in run_id]
    print(f"files: {args.files} (put in {put_seconds:.1f} s)")
    print(f"reconciler: every {args.reconcile_every:g} s, {len(passes)} passes")
    print(f"all triggered after: {triggered_seconds:.1f} s")
    floor = args.files / 10
    print(f"floor at 10 calls/s: {floor:.1f} s -> ratio {triggered_seconds / floor:.2f}")
    print(f"records by status: {dict(counts)}")
    print(f"Airflow runs: {len(ours)}, distinct: {len(set(ours))}")
    for function, number in sorted(calls.items()):
        print(f"MWAA calls by {function}: {number} ({number / args.files:.2f} per file)")
    if passes:
        listed = sum(int(p.get("dags_listed", 0)) for p in passes)
        checked = sum(int(p.get("checked", 0)) for p in passes)
        busy = sum(float(p["seconds"]) for p in passes)
        print(f"reconciler: {listed} DAG list reads for {checked} record checks, {busy:.1f} s busy")


def _count_by_status(table: Any, run: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for status in _ALL:
        kwargs: dict[str, Any] = {
            "IndexName": "by_status",
            "KeyConditionExpression": Key("status").eq(status),
            "ProjectionExpression": "source_key",
        }
        while True:
            page = table.query(**kwargs)
            counts[status] += sum(
                1 for item in page["Items"] if f"burst-{run}-" in item["source_key"]
            )
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return counts


def _airflow_run_ids(stack: LocalStack) -> list[str]:
    airflow = stack.airflow
    assert airflow is not None
    session = airflow.api_session()
    run_ids: list[str] = []
    offset = 0
    while True:
        answer = session.get(
            airflow.api_url("/dags/ingest_sales/dagRuns"),
            params={"limit": 100, "offset": offset},
            timeout=30,
        )
        answer.raise_for_status()
        page = answer.json().get("dag_runs", [])
        run_ids.extend(run["dag_run_id"] for run in page)
        if len(page) < 100:
            return run_ids
        offset += 100


if __name__ == "__main__":
    main()
