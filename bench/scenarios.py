"""The stack scenarios, one side at a time: dagtrigger (the stack's s3 function, fed by S3 ->
EventBridge -> SQS) and the baseline (the sample handler invoked per event).

Calls are counted at the MWAA emulator (`bench.emulator_calls`). While a dagtrigger side
triggers, the reconciler's scheduled passes are held (the runner's invocation route), so that
every call counted is the trigger path's; the reconciler then runs ``RECONCILER_PASSES`` passes
of its own, counted apart.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.conditions import Key

from bench.baseline_side import BaselineOutcome, SampleLambda
from bench.emulator_calls import CallCount, EmulatorTally
from bench.events import PutObject, RunCount, count_runs, put_objects, redeliver
from devstack.runner import LambdaRunner
from devstack.runner.invoke import InvocationResult
from devstack.stack import LocalStack

RECONCILER = "ReconcilerFunction"
RECONCILER_PASSES = 2
_DONE = ("TRIGGERED", "RUNNING", "SUCCESS", "FAILED", "UNKNOWN")
_ALL = (*_DONE, "RECEIVED", "TRIGGER_FAILED", "REJECTED", "IGNORED")


@dataclass
class SideResult:
    side: str  # "dagtrigger" or "baseline"
    objects: int
    redelivered: int
    seconds: float  # puts start -> every object triggered (dagtrigger), or every invocation done
    calls: CallCount
    runs: RunCount
    timed_out: bool = False
    statuses: dict[str, int] = field(default_factory=dict)
    reconciler_calls: CallCount | None = None
    reconciler_passes: int = 0
    baseline: BaselineOutcome | None = None

    @property
    def calls_per_trigger(self) -> float:
        return self.calls.total / self.objects if self.objects else 0.0


@contextlib.contextmanager
def reconciler_held(runner: LambdaRunner) -> Iterator[list[float]]:
    """Scheduled reconciler passes are answered without running while inside; the list holds
    when each was held."""
    held: list[float] = []

    def hold(_event: Any) -> InvocationResult:
        held.append(time.monotonic())
        return InvocationResult(RECONCILER, "bench-held", payload={"held_by": "bench"})

    runner.route_invocations(RECONCILER, hold)
    try:
        yield held
    finally:
        runner.route_invocations(RECONCILER, None)


def reconciler_passes(
    runner: LambdaRunner, tally: EmulatorTally, passes: int = RECONCILER_PASSES
) -> tuple[CallCount, int]:
    """Run the reconciler `passes` times now; the MWAA calls they made."""
    mark = tally.mark()
    for _ in range(passes):
        runner.invoke(RECONCILER, {"source": "bench"})
    return tally.count(mark), passes


def dagtrigger_side(
    stack: LocalStack,
    tally: EmulatorTally,
    *,
    prefix: str,
    objects: int,
    pace_per_second: float,
    redeliver_fraction: float,
    timeout: float,
) -> SideResult:
    """Put `objects` under `prefix` (at once, or at a pace), redeliver a fraction of their
    events, and wait until every object's record left RECEIVED and the queue is empty."""
    runner = stack.runner
    assert runner is not None
    keys = [f"{prefix}{n:05}.csv" for n in range(objects)]
    again = math.ceil(objects * redeliver_fraction)
    table = stack.history_table()
    with reconciler_held(runner):
        mark = tally.mark()
        started = time.monotonic()
        put = put_objects(stack, keys, pace_per_second=pace_per_second)
        redeliver(stack, put[:again])
        timed_out = True
        statuses: Counter[str] = Counter()
        while time.monotonic() - started < timeout:
            statuses = _statuses(table, prefix)
            if sum(statuses[status] for status in _DONE) >= objects:
                timed_out = False
                break
            time.sleep(1)
        seconds = time.monotonic() - started
        _wait_queue_empty(stack, deadline=started + timeout + 60)
        statuses = _statuses(table, prefix)
        end = tally.mark()
        calls = tally.count(mark, end)
    reconciler_calls, passes = reconciler_passes(runner, tally)
    return SideResult(
        "dagtrigger",
        objects,
        again,
        seconds,
        calls,
        count_runs(stack, prefix, objects),
        timed_out,
        dict(statuses),
        reconciler_calls,
        passes,
    )


def baseline_side(
    stack: LocalStack,
    tally: EmulatorTally,
    sample: SampleLambda,
    *,
    prefix: str,
    objects: int,
    redeliver_fraction: float,
) -> SideResult:
    """Invoke the sample once per event (and again for the redelivered ones)."""
    keys = [f"{prefix}{n:05}.csv" for n in range(objects)]
    again = math.ceil(objects * redeliver_fraction)
    now_ms = int(time.time() * 1000)
    # The sample never reads the object: events for objects it is told about are enough (and
    # putting them would also feed dagtrigger's queue).
    fabricated = [
        PutObject(stack.source_bucket, key, 23, f"{n:032x}", f"bench{n:027}", now_ms)
        for n, key in enumerate(keys)
    ]
    assert stack.runner is not None
    with reconciler_held(stack.runner):  # its scheduled passes would count as the sample's
        mark = tally.mark()
        outcome = sample.invoke_all(fabricated + fabricated[:again])
        end = tally.mark()
    return SideResult(
        "baseline",
        objects,
        again,
        outcome.seconds,
        tally.count(mark, end),
        count_runs(stack, prefix, objects),
        baseline=outcome,
    )


def _statuses(table: Any, token: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for status in _ALL:
        kwargs: dict[str, Any] = {
            "IndexName": "by_status",
            "KeyConditionExpression": Key("status").eq(status),
            "ProjectionExpression": "source_key",
        }
        while True:
            page = table.query(**kwargs)
            counts[status] += sum(1 for item in page["Items"] if token in item["source_key"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return counts


def _wait_queue_empty(stack: LocalStack, *, deadline: float) -> None:
    """Until the s3 function's queue holds no message, visible or in flight, twice running."""
    assert stack.runner is not None
    resources = stack.runner.resources
    queue_url = resources.queue_url(resources["S3EventsQueue"].arn)
    sqs = stack.sqs
    empty_reads = 0
    while time.monotonic() < deadline and empty_reads < 2:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
        empty_reads = empty_reads + 1 if waiting == 0 else 0
        time.sleep(1)
