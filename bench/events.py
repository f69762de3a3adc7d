"""S3 objects for the bench: put them, build the EventBridge event S3 sends for one, count the
DAG runs Airflow holds for them."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from devstack.stack import LocalStack

ACCOUNT = "123456789012"
REGION = "us-east-1"
DAG_ID = "ingest_sales"


@dataclass(frozen=True)
class PutObject:
    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    put_at_ms: int


def eventbridge_event(obj: PutObject) -> dict[str, Any]:
    """The ``Object Created`` event AWS sends for `obj` (as the runner's moto fidelity shapes it).

    A redelivery carries the same object version, so dagtrigger finds the same trigger id.
    """
    sequencer = f"{obj.put_at_ms << 20:016x}"
    detail_object: dict[str, Any] = {
        "key": obj.key,
        "size": obj.size,
        "etag": obj.etag,
        "sequencer": sequencer,
    }
    if obj.version_id:
        detail_object["version-id"] = obj.version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(obj.put_at_ms / 1000)),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{obj.bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": obj.bucket},
            "object": detail_object,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


BODY = b"region,amount\nnorth,12\n"


def put_objects(
    stack: LocalStack, keys: list[str], *, workers: int = 16, pace_per_second: float = 0
) -> list[PutObject]:
    """Put `keys` into the stack's bucket: at once (`workers` in parallel), or one at a time at
    `pace_per_second`."""
    s3 = stack.s3
    bucket = stack.source_bucket

    def put(key: str) -> PutObject:
        answer = s3.put_object(Bucket=bucket, Key=key, Body=BODY)
        return PutObject(
            bucket,
            key,
            len(BODY),
            answer["ETag"].strip('"'),
            answer.get("VersionId"),
            int(time.time() * 1000),
        )

    if pace_per_second <= 0:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(put, keys))
    objects = []
    started = time.monotonic()
    for index, key in enumerate(keys):
        delay = started + index / pace_per_second - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        objects.append(put(key))
    return objects


def redeliver(stack: LocalStack, objects: list[PutObject]) -> None:
    """Send each object's event to the s3 function's queue again (S3 is at-least-once)."""
    assert stack.runner is not None
    resources = stack.runner.resources
    queue_url = resources.queue_url(resources["S3EventsQueue"].arn)
    sqs = stack.sqs
    for obj in objects:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(eventbridge_event(obj)))


@dataclass(frozen=True)
class RunCount:
    objects: int
    runs: int
    distinct: int

    @property
    def lost(self) -> int:
        return self.objects - self.distinct

    @property
    def duplicates(self) -> int:
        return self.runs - self.distinct


def runs_by_key(stack: LocalStack, prefix: str) -> Counter[str]:
    """Airflow runs of ingest_sales whose conf names a key under `prefix`, per key."""
    airflow = stack.airflow
    assert airflow is not None
    session = airflow.api_session()
    counts: Counter[str] = Counter()
    offset = 0
    while True:
        answer = session.get(
            airflow.api_url(f"/dags/{DAG_ID}/dagRuns"),
            params={"limit": 100, "offset": offset},
            timeout=60,
        )
        answer.raise_for_status()
        page = answer.json().get("dag_runs", [])
        for run in page:
            key = (run.get("conf") or {}).get("key", "")
            if isinstance(key, str) and key.startswith(prefix):
                counts[key] += 1
        if len(page) < 100:
            return counts
        offset += 100


def count_runs(stack: LocalStack, prefix: str, objects: int) -> RunCount:
    counts = runs_by_key(stack, prefix)
    return RunCount(objects, sum(counts.values()), len(counts))


def set_dag_paused(stack: LocalStack, paused: bool) -> None:
    """Pause ingest_sales: its runs are created (and counted) but stay queued, so that Airflow's
    task processes do not take the bench machine's CPUs. Triggering is unchanged."""
    airflow = stack.airflow
    assert airflow is not None
    answer = airflow.api_session().patch(
        airflow.api_url(f"/dags/{DAG_ID}"), json={"is_paused": paused}, timeout=30
    )
    answer.raise_for_status()
