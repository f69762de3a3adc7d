"""One S3 event delivered 50 times at once (S3 and SQS deliver at least once) starts one run.

The first delivery comes the real way (S3 -> EventBridge -> SQS); the harness takes it off the
queue and hands 50 copies, each its own SQS message, to the s3 function's execution
environments at the same moment. The ledger's conditional claim must let exactly one of them
trigger and count the other 49 on the same record.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devstack.reliability import drivers
from devstack.reliability.accounting import ScenarioRow, row
from devstack.reliability.harness import ReliabilityHarness
from devstack.reliability.instances import InstancePool

DELIVERIES = 50
DRAIN_TIMEOUT_SECONDS = 180


def copies(record: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """`count` SQS events, each holding one new message with the record's body."""
    return [
        {
            "Records": [
                {
                    **record,
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": uuid.uuid4().hex,
                    "attributes": {**record.get("attributes", {}), "ApproximateReceiveCount": "1"},
                }
            ]
        }
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    "instances",
    [
        pytest.param(10, id="10-instances"),
        pytest.param(DELIVERIES, id="50-instances", marks=pytest.mark.reliability),
    ],
)
def test_fifty_concurrent_deliveries_of_one_s3_event_start_one_run(
    harness: ReliabilityHarness,
    fault_matrix: list[ScenarioRow],
    unique: str,
    instances: int,
) -> None:
    # Given one object put into S3, its delivery taken off the queue as SQS handed it over
    bucket, key = harness.stack.config.source_bucket, f"sales/concurrent/{unique}.csv"
    event = drivers.s3_event(bucket, key)
    harness.put_object(key, b"region,amount\nnorth,1\n")
    delivery = harness.take_s3_delivery(key, timeout=60)
    # And `instances` warm execution environments of the s3 function
    pool = InstancePool.for_function(
        harness.runner,
        "S3EventsFunction",
        log_dir=harness.work_dir / f"concurrent-{instances}",
        max_instances=instances,
    )
    try:
        pool.prewarm(instances)

        # When the event is delivered 50 times at once
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=DELIVERIES) as senders:
            results = list(senders.map(pool.invoke, copies(delivery, DELIVERIES)))
    finally:
        pool.stop()
    drain = harness.wait_for_drain([event], since=started, timeout=DRAIN_TIMEOUT_SECONDS)
    (fate,) = harness.observe([event])
    records = harness.records(event.source_key)
    fault_matrix.append(
        row(
            f"{DELIVERIES} concurrent deliveries of one S3 event ({instances} instances)",
            [fate],
            drain_seconds=drain.seconds,
            note=f"record deliveries: {records[0].get('deliveries') if records else '-'}",
        )
    )

    # Then every delivery was handled and acknowledged (no item left for a retry)
    assert [r.error for r in results if not r.succeeded] == []
    assert all(not (r.payload or {}).get("batchItemFailures") for r in results)
    # And one run, one record counting all 50 deliveries, which reached its run's final state
    assert fate.runs == 1
    assert len(records) == 1
    assert int(records[0]["deliveries"]) == DELIVERIES
    assert drain.seconds is not None, f"not drained in {DRAIN_TIMEOUT_SECONDS} s: {fate}"
    assert records[0]["status"] == "SUCCESS"
