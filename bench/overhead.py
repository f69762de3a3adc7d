"""Per-trigger platform overhead and DynamoDB requests per new trigger, measured in this process.

The s3 function's handler (functions/s3_events/app.py, loaded here under a name of its own) is
invoked directly, one SQS record a batch, with the function's own variables (the runner's
``function_environment``: DynamoDB Local, the MWAA emulator, the stack's routes). No runner, so
nothing but the handler runs in the measuring thread. botocore's events on the default session
(the one the layer's clients come from) give, for that thread only: the time inside MWAA calls
(``before-send`` to ``after-call``, i.e. the HTTP exchange and parsing) and the DynamoDB
requests by operation. Overhead = handler time - time inside MWAA calls; the CPU time of the
handler's thread is reported beside it (our code, botocore and Powertools, without any wait).
Events are paced below one instance's share of MWAA's rate (the function's REST_API_MAX_TPS), so
that no rate-limit wait is counted (a wait would show as overhead).
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from bench.baseline_side import environment
from bench.events import PutObject, eventbridge_event
from bench.stats import percentile
from devstack.lambda_context import LambdaContext
from devstack.paths import REPO_ROOT
from devstack.stack import LocalStack

HANDLER_FILE = REPO_ROOT / "functions" / "s3_events" / "app.py"
FUNCTION = "S3EventsFunction"
DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})


@dataclass
class OverheadResult:
    triggers: int
    warmup: int
    overhead_ms: list[float] = field(default_factory=list)
    handler_ms: list[float] = field(default_factory=list)
    mwaa_ms: list[float] = field(default_factory=list)
    dynamodb_ms: list[float] = field(default_factory=list)  # inside DynamoDB calls (part of it)
    cpu_ms: list[float] = field(default_factory=list)  # CPU time of the handler's thread
    pace_per_second: float = 0.0
    dynamodb: Counter[str] = field(default_factory=Counter)  # by operation, measured triggers
    mwaa_calls: Counter[str] = field(default_factory=Counter)
    failures: int = 0

    def p(self, q: float) -> float:
        return percentile(self.overhead_ms, q)

    @property
    def writes_per_trigger(self) -> float:
        return sum(self.dynamodb[op] for op in DYNAMODB_WRITES) / max(1, len(self.overhead_ms))

    @property
    def reads_per_trigger(self) -> float:
        return sum(self.dynamodb[op] for op in DYNAMODB_READS) / max(1, len(self.overhead_ms))


class ThreadProbe:
    """botocore event handlers that count and time the calls of one thread."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.mwaa_seconds = 0.0
        self.dynamodb_seconds = 0.0
        self.dynamodb: Counter[str] = Counter()
        self.mwaa: Counter[str] = Counter()
        self._sent_at = 0.0
        self._dynamodb_sent_at = 0.0

    def reset(self) -> None:
        self.mwaa_seconds = 0.0
        self.dynamodb_seconds = 0.0
        self.dynamodb = Counter()
        self.mwaa = Counter()

    def before_send(self, event_name: str, **_: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        _stage, service, operation = event_name.split(".", 2)
        if service == "dynamodb":
            self.dynamodb[operation] += 1
            self._dynamodb_sent_at = time.perf_counter()
        elif service == "mwaa":
            self.mwaa[operation] += 1
            self._sent_at = time.perf_counter()

    def after_call(self, event_name: str, **_: Any) -> None:
        if threading.get_ident() == self.thread and self._sent_at:
            self.mwaa_seconds += time.perf_counter() - self._sent_at
            self._sent_at = 0.0

    def after_dynamodb_call(self, event_name: str, **_: Any) -> None:
        if threading.get_ident() == self.thread and self._dynamodb_sent_at:
            self.dynamodb_seconds += time.perf_counter() - self._dynamodb_sent_at
            self._dynamodb_sent_at = 0.0


def measure(
    stack: LocalStack, *, triggers: int, warmup: int = 5, pace_per_second: float | None = None
) -> OverheadResult:
    runner = stack.runner
    assert runner is not None
    variables = runner.function_environment(FUNCTION)
    if pace_per_second is None:  # 80% of one instance's share: its limiter never waits
        pace_per_second = 0.8 * float(variables.get("REST_API_MAX_TPS", "5"))
    result = OverheadResult(triggers, warmup, pace_per_second=pace_per_second)
    run = uuid.uuid4().hex[:8]
    with probing() as probe, environment(variables):
        try:
            reset_layer()
            handler = load_handler(HANDLER_FILE)
            started = time.monotonic()
            for index in range(warmup + triggers):
                delay = started + index / pace_per_second - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                body = json.dumps(eventbridge_event(_object(stack, run, index)))
                event = {"Records": [sqs_record(body)]}
                probe.reset()
                began, cpu_began = time.perf_counter(), time.thread_time()
                answer = handler(event, lambda_context(variables))
                elapsed = time.perf_counter() - began
                cpu = time.thread_time() - cpu_began
                if answer.get("batchItemFailures"):
                    result.failures += 1
                    continue
                if index < warmup:
                    continue
                result.handler_ms.append(elapsed * 1000)
                result.mwaa_ms.append(probe.mwaa_seconds * 1000)
                result.dynamodb_ms.append(probe.dynamodb_seconds * 1000)
                result.cpu_ms.append(cpu * 1000)
                result.overhead_ms.append((elapsed - probe.mwaa_seconds) * 1000)
                result.dynamodb.update(probe.dynamodb)
                result.mwaa_calls.update(probe.mwaa)
        finally:
            reset_layer()  # the runner's functions build theirs again, with their variables
    return result


@contextmanager
def probing() -> Iterator[ThreadProbe]:
    """A probe of this thread's AWS calls, hooked into the layer's clients' session."""
    probe = ThreadProbe()
    events = boto3._get_default_session().events
    events.register("before-send", probe.before_send, unique_id="bench-before-send")
    events.register("after-call.mwaa", probe.after_call, unique_id="bench-after-call")
    events.register("after-call-error.mwaa", probe.after_call, unique_id="bench-after-error")
    events.register("after-call.dynamodb", probe.after_dynamodb_call, unique_id="bench-ddb-call")
    try:
        yield probe
    finally:
        events.unregister("before-send", unique_id="bench-before-send")
        events.unregister("after-call.mwaa", unique_id="bench-after-call")
        events.unregister("after-call-error.mwaa", unique_id="bench-after-error")
        events.unregister("after-call.dynamodb", unique_id="bench-ddb-call")


def _object(stack: LocalStack, run: str, index: int) -> PutObject:
    return PutObject(
        stack.source_bucket,
        f"sales/bench-overhead-{run}-{index:05}.csv",
        23,
        f"{index:032x}",
        f"overhead{run}{index:020}",
        int(time.time() * 1000),
    )


def sqs_record(body: str) -> dict[str, Any]:
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "bench",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now_ms,
            "SenderId": "bench",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
        "awsRegion": "us-east-1",
    }


def lambda_context(variables: dict[str, str], timeout_seconds: float = 60) -> LambdaContext:
    name = variables.get("AWS_LAMBDA_FUNCTION_NAME", "s3-events")
    return LambdaContext(
        function_name=name,
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        memory_limit_in_mb=512,
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{name}",
        log_stream_name="bench",
        deadline_monotonic=time.monotonic() + timeout_seconds,
    )


def load_handler(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("bench_s3_events_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


def reset_layer() -> None:
    from dagtrigger.dependencies import reset_instance_state

    reset_instance_state()
