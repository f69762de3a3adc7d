"""A file set as large as a route allows (max_objects: 10,000), measured in this process.

The s3 function's handler is invoked directly (as bench.overhead does) on a set route added to
the stack's routes file (marker ``_SUCCESS``, max_objects 10,000, manifests under the stack's
SetManifestLocation), against DynamoDB Local and the MWAA emulator:

- marker first: a folder of N parts is written, then the marker's event alone: that one
  invocation lists the folder, joins every part, completes the set, writes its manifest and
  starts its run. Its time is what must stay well inside the function's timeout.
- marker last: each part's event is handled first (SQS batches of 10, as the template's event
  source mapping sends them), then the marker's: the listing finds every part recorded.

S3's own notifications are off while the parts are written, so that the runner's functions do
not see them: only the events sent here are handled.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import yaml

from bench.baseline_side import environment
from bench.events import PutObject, eventbridge_event
from bench.overhead import (
    FUNCTION,
    HANDLER_FILE,
    lambda_context,
    load_handler,
    probing,
    reset_layer,
    sqs_record,
)
from dagtrigger import ids
from devstack.stack import SET_MANIFEST_LOCATION, LocalStack

ROUTE = "bench-file-sets"
PREFIX = "bench-sets/"
MARKER = "_SUCCESS"
MAX_OBJECTS = 10_000
#: records per invocation: the template's S3 event source mapping's BatchSize
BATCH_SIZE = 10
#: where the bench's sets write their manifests (under the stack's SetManifestLocation)
MANIFESTS = f"{SET_MANIFEST_LOCATION}bench/"
#: the template's Globals Timeout: what one invocation may take
FUNCTION_TIMEOUT_SECONDS = 120.0


@dataclass
class Invocation:
    """One handler invocation (or several, summed): its time and the calls it made."""

    seconds: float = 0.0
    invocations: int = 0
    failures: int = 0
    dynamodb: Counter[str] = field(default_factory=Counter)
    mwaa: Counter[str] = field(default_factory=Counter)


@dataclass
class FileSetResult:
    parts: int
    #: the marker's invocation when it comes first: its listing joins every part
    marker_first: Invocation
    #: the parts' own events, before the marker of the "marker last" folder
    part_events: Invocation
    parts_by_event: int
    #: the marker's invocation after every part joined by its own event
    marker_last: Invocation
    #: the sets' records as the ledger ended them: (completion reason, members, run recorded)
    outcomes: dict[str, tuple[str, int, bool]]
    manifest_written: bool


def measure(stack: LocalStack, *, parts: int, parts_by_event: int) -> FileSetResult:
    """``parts`` objects for the marker-first set; ``parts_by_event`` for the marker-last one
    (each of its parts is one event handled here, so it is kept smaller)."""
    runner = stack.runner
    assert runner is not None
    variables = runner.function_environment(FUNCTION)
    run = uuid.uuid4().hex[:8]
    first_folder = f"{PREFIX}{run}-marker-first"
    last_folder = f"{PREFIX}{run}-marker-last"
    with _set_route(stack):
        with stack.s3_events_held_back():
            s3, bucket = stack.s3, stack.source_bucket
            _write_parts(s3, bucket, first_folder, parts)  # the marker's listing finds them
            first_marker = _write(s3, bucket, f"{first_folder}/{MARKER}")
            last_parts = _write_parts(s3, bucket, last_folder, parts_by_event)
            last_marker = _write(s3, bucket, f"{last_folder}/{MARKER}")
        marker_first, part_events, marker_last = _handle(
            variables, first_marker, last_parts, last_marker
        )
    outcomes = {
        "marker first": _outcome(stack, first_folder),
        "marker last": _outcome(stack, last_folder),
    }
    return FileSetResult(
        parts=parts,
        marker_first=marker_first,
        part_events=part_events,
        parts_by_event=parts_by_event,
        marker_last=marker_last,
        outcomes=outcomes,
        manifest_written=_manifest_exists(stack, first_folder),
    )


def _handle(
    variables: dict[str, str],
    first_marker: PutObject,
    last_parts: list[PutObject],
    last_marker: PutObject,
) -> tuple[Invocation, Invocation, Invocation]:
    """The marker-first set's marker; the marker-last set's parts, then its marker."""
    with probing() as probe, environment(variables):
        try:
            reset_layer()
            handler = load_handler(HANDLER_FILE)

            def invoke(objects: list[PutObject], into: Invocation) -> None:
                event = {"Records": [sqs_record(json.dumps(eventbridge_event(o))) for o in objects]}
                probe.reset()
                began = time.perf_counter()
                answer = handler(event, lambda_context(variables, FUNCTION_TIMEOUT_SECONDS))
                into.seconds += time.perf_counter() - began
                into.invocations += 1
                into.failures += len(answer.get("batchItemFailures") or ())
                into.dynamodb.update(probe.dynamodb)
                into.mwaa.update(probe.mwaa)

            marker_first = Invocation()
            invoke([first_marker], marker_first)
            part_events = Invocation()
            for start in range(0, len(last_parts), BATCH_SIZE):
                invoke(last_parts[start : start + BATCH_SIZE], part_events)
            marker_last = Invocation()
            invoke([last_marker], marker_last)
        finally:
            reset_layer()
    return marker_first, part_events, marker_last


def _set_route(stack: LocalStack) -> AbstractContextManager[None]:
    """The bench's set route, on the routes file's first environment."""
    assert stack.routes is not None
    environment_name = next(iter(yaml.safe_load(stack.routes.path.read_text())["environments"]))
    return stack.s3_routes_added(
        {
            "name": ROUTE,
            "buckets": [stack.source_bucket],
            "prefix": PREFIX,
            "environment": environment_name,
            "dag_id": "ingest_sales",
            "set": {
                "group": "{{ dirname }}",
                "marker": MARKER,
                "max_objects": MAX_OBJECTS,
                "manifest": MANIFESTS,
            },
        }
    )


def _write_parts(s3: Any, bucket: str, folder: str, count: int) -> list[PutObject]:
    """Put ``count`` parts under ``folder`` with one (thread-safe) client, 8 at a time."""
    keys = [f"{folder}/part-{number:05d}.csv" for number in range(count)]
    with ThreadPoolExecutor(max_workers=8) as writers:
        return list(writers.map(lambda key: _write(s3, bucket, key), keys))


def _write(s3: Any, bucket: str, key: str) -> PutObject:
    body = b"" if key.endswith(MARKER) else b"order,amount\n1,2\n"
    put = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return PutObject(
        bucket,
        key,
        len(body),
        put["ETag"].strip('"'),
        put.get("VersionId"),
        int(time.time() * 1000),
    )


def _outcome(stack: LocalStack, folder: str) -> tuple[str, int, bool]:
    item: dict[str, Any] = (
        stack.history_table()
        .get_item(Key={"pk": ids.file_set_id(ROUTE, folder)}, ConsistentRead=True)
        .get("Item")
        or {}
    )
    return (
        str(item.get("completion_reason", "-")),
        int(item.get("member_count") or 0),
        bool(item.get("run_trigger_id")),
    )


def _manifest_exists(stack: LocalStack, folder: str) -> bool:
    bucket, _, prefix = MANIFESTS.removeprefix("s3://").partition("/")
    key = f"{prefix}{ids.file_set_id(ROUTE, folder)}.json"
    listed = stack.s3.list_objects_v2(Bucket=bucket, Prefix=key)
    return bool(listed.get("KeyCount"))
