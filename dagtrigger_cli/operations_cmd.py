"""`dagtrigger replay`, `redrive` and `backfill`: recovering after an outage or a wrong route.

Each one goes through the path a deployment already has, so the ledger's rules hold: a replay
is the API's replay (a failed trigger retried in place, never a second run), a redrive is SQS's
own (StartMessageMoveTask from the S3 dead-letter queue back to the S3 queue), and a backfill
sends each existing object to the S3 queue as the EventBridge event a new object makes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from dagtrigger.clock import iso_utc, utc_now
from dagtrigger.ids import TRIGGER_ID_PATTERN
from dagtrigger.sources.s3.backfill import backfill_event
from dagtrigger_cli.api import ApiClient, ApiError
from dagtrigger_cli.history_cmd import history_query, parse_moment, read_triggers
from dagtrigger_cli.output import console, errors, fail, styled_status
from dagtrigger_cli.target import Target, target_of

#: how long `redrive` waits for SQS's move task unless told
REDRIVE_WAIT_SECONDS: Final = 300
_TASK_POLL_SECONDS: Final = 1.0
#: SendMessageBatch's limit
_BATCH: Final = 10
#: rows a dry run shows before it says how many more
_DRY_RUN_ROWS: Final = 50
_TRIGGER_ID = re.compile(TRIGGER_ID_PATTERN)
_S3_URI = re.compile(r"s3://(?P<bucket>[^/]+)/?(?P<prefix>.*)", re.DOTALL)
_QUEUE_COUNTS: Final = {
    "ApproximateNumberOfMessages": "waiting",
    "ApproximateNumberOfMessagesNotVisible": "in flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}
SCHEDULES_NOT_REDRIVEN: Final = (
    "the schedules' dead-letter queue cannot be redriven: it holds the schedule fires "
    "EventBridge Scheduler (and the function's own retries) could not deliver to the schedules "
    "function, and SQS's redrive (StartMessageMoveTask) moves messages only back into SQS "
    "queues whose dead-letter queue it is (its RedriveAllowPolicy is denyAll); invoke the "
    "function with a message's body to run a fire again, or replay a fire's TRIGGER_FAILED "
    "trigger: dagtrigger replay --status TRIGGER_FAILED --since T"
)


class ReplayableStatus(StrEnum):
    TRIGGER_FAILED = "TRIGGER_FAILED"
    REJECTED = "REJECTED"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command("replay")(replay)
    app.command("redrive")(redrive)
    app.command("backfill")(backfill)


# ------------------------------------------------------------------------------------ replay


@dataclass(frozen=True)
class ReplayResult:
    trigger_id: str
    outcome: str  # "replayed", "skipped" or "failed"
    detail: str
    record: dict[str, Any]


def replay(
    context: typer.Context,
    trigger_ids: Annotated[
        list[str] | None, typer.Argument(metavar="[ID]...", help="trigger ids (t-...)")
    ] = None,
    status: Annotated[
        ReplayableStatus | None,
        typer.Option(help="replay every trigger in this status (with --since)"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="with --status: created at or after (2026-11-21T02:00Z, or 12h)"),
    ] = None,
    until: Annotated[str | None, typer.Option(help="with --status: created at or before")] = None,
    environment: Annotated[
        str | None, typer.Option(help="with --status: only this environment alias")
    ] = None,
    dag: Annotated[str | None, typer.Option(help="with --status: only this DAG id")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would be replayed; replay nothing")
    ] = False,
) -> None:
    """Replay failed or rejected triggers in place: the same trigger, conf and DAG run id.

    A replay never starts a second run: a trigger that ran meanwhile (a redelivery of its event
    retried it, or an earlier replay did) is skipped, and one whose run Airflow already has is
    recorded as triggered. Each replay carries an Idempotency-Key made from the trigger id and
    its replay count, so running the command again is safe.
    """
    by_filter = status is not None
    if trigger_ids and by_filter:
        fail("give trigger ids or --status, not both")
    if not trigger_ids and not by_filter:
        fail("give trigger ids to replay, or --status TRIGGER_FAILED|REJECTED --since T")
    if by_filter and since is None:
        fail("--status needs --since: how far back to look for triggers to replay")
    if not by_filter and (since or until or environment or dag):
        fail("--since, --until, --environment and --dag select triggers with --status")
    malformed = [
        trigger_id for trigger_id in trigger_ids or () if not _TRIGGER_ID.match(trigger_id)
    ]
    if malformed:
        fail(f"not a trigger id: {', '.join(malformed)} (t- and 32 hex digits)")
    client = ApiClient(target_of(context))
    if by_filter:
        query = history_query(
            dag=dag, environment=environment, status=status, since=since, until=until
        )
        records, _ = read_triggers(client, query, wanted=None, cursor=None)
    else:
        records = [client.get(f"/v1/triggers/{trigger_id}") for trigger_id in trigger_ids or ()]
    if not records:
        console.print("nothing to replay: no trigger matches")
        return
    if dry_run:
        _print_replay_plan(records)
        return
    results = [
        _replay_one(client, record)
        for record in _with_progress(records, f"replaying {_many(len(records), 'trigger')}")
    ]
    _print_replay_summary(results)
    if any(result.outcome == "failed" for result in results):
        raise typer.Exit(1)


def replay_key(record: dict[str, Any]) -> str:
    """The Idempotency-Key of the trigger's next replay: the same for a retry of that replay
    (a rerun of the command), new once it was replayed."""
    return f"dagtrigger-replay-{record['trigger_id']}-{int(record.get('replays') or 0)}"


def _replay_one(client: ApiClient, record: dict[str, Any]) -> ReplayResult:
    trigger_id = str(record["trigger_id"])
    try:
        answer = client.post(
            f"/v1/triggers/{trigger_id}/replay", headers={"Idempotency-Key": replay_key(record)}
        )
    except ApiError as refused:
        now_in = refused.problem.get("trigger_status")
        if refused.status == 409 and now_in:
            return ReplayResult(trigger_id, "skipped", f"now {now_in}", record)
        return ReplayResult(trigger_id, "failed", refused.message, record)
    detail = "Airflow already had the run" if answer.get("already_existed") else "run started"
    return ReplayResult(trigger_id, "replayed", detail, {**record, **answer})


def _print_replay_plan(records: list[dict[str, Any]]) -> None:
    table = _trigger_table("would replay")
    for record in records[:_DRY_RUN_ROWS]:
        replayable = record.get("status") in ReplayableStatus.__members__
        verdict = "replay" if replayable else f"skip: already {record.get('status')}"
        table.add_row(*_trigger_row(record), verdict)
    console.print(table)
    if len(records) > _DRY_RUN_ROWS:
        console.print(f"... and {len(records) - _DRY_RUN_ROWS} more")
    console.print(f"dry run: {_many(len(records), 'trigger')} listed, nothing replayed")


def _print_replay_summary(results: list[ReplayResult]) -> None:
    unusual = [result for result in results if result.outcome != "replayed"]
    if unusual:
        table = _trigger_table("result")
        for result in unusual:
            style = "yellow" if result.outcome == "skipped" else "red"
            table.add_row(
                *_trigger_row(result.record), f"[{style}]{result.outcome}[/]: {result.detail}"
            )
        console.print(table)
    counts = {
        outcome: sum(1 for result in results if result.outcome == outcome)
        for outcome in ("replayed", "skipped", "failed")
    }
    existed = sum(1 for result in results if result.detail == "Airflow already had the run")
    console.print(
        f"replayed {counts['replayed']} (runs started: {counts['replayed'] - existed}, "
        f"already in Airflow: {existed}), skipped {counts['skipped']} (already ran or "
        f"running), failed {counts['failed']}"
    )


def _trigger_table(last_column: str) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("trigger", "created", "DAG", "status", last_column):
        table.add_column(column, overflow="fold")
    return table


def _trigger_row(record: dict[str, Any]) -> tuple[str, str, str, str]:
    status = str(record.get("status") or "")
    return (
        str(record.get("trigger_id")),
        str(record.get("created_at") or "")[:19],
        str(record.get("dag_id") or "-"),
        styled_status(status),
    )


# ----------------------------------------------------------------------------------- redrive


def redrive(
    context: typer.Context,
    schedules: Annotated[
        bool, typer.Option("--schedules", help="the schedules' dead-letter queue (not possible)")
    ] = False,
    wait: Annotated[
        int, typer.Option(min=1, help="seconds to wait for SQS's move task to finish")
    ] = REDRIVE_WAIT_SECONDS,
) -> None:
    """Move the S3 dead-letter queue's messages back to the S3 queue (SQS's own redrive).

    Each message is processed again as it was first: an object whose trigger failed is retried
    with its recorded run id, and one that started its run meanwhile starts nothing.
    """
    if schedules:
        fail(SCHEDULES_NOT_REDRIVEN)
    target = target_of(context)
    sqs = target.client("sqs")
    dlq_arn, queue_arn = _queue_arn(sqs, target.dlq_url), _queue_arn(sqs, target.queue_url)
    before = _counts(sqs, target)
    _print_counts("before", before)
    if before["dead-letter queue"]["waiting"] == 0:
        console.print("nothing to redrive: the dead-letter queue has no waiting messages")
        return
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn)
    with console.status("SQS is moving the messages back ...", spinner="dots"):
        task = _wait_for_move_task(sqs, dlq_arn, wait)
    _print_counts("after", _counts(sqs, target))
    moved = task.get("ApproximateNumberOfMessagesMoved", 0)
    to_move = task.get("ApproximateNumberOfMessagesToMove", moved)
    status = task.get("Status")
    if status == "COMPLETED":
        console.print(f"moved {moved} of {_many(to_move, 'message')} back to {target.queue_url}")
        return
    if status == "RUNNING":
        fail(
            f"the move task is still running after {wait} s ({moved} of {to_move} moved): "
            f"follow it with aws sqs list-message-move-tasks --source-arn {dlq_arn}"
        )
    fail(f"the move task ended {status} after moving {moved}: {task.get('FailureReason')}")


def _wait_for_move_task(sqs: Any, source_arn: str, wait_seconds: int) -> dict[str, Any]:
    """The source's latest move task once it is no longer RUNNING, or as it is when the wait
    ends. SQS runs one task per source at a time and lists the latest first."""
    deadline = time.monotonic() + wait_seconds
    while True:
        results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"]
        task: dict[str, Any] = results[0] if results else {"Status": "RUNNING"}
        if task.get("Status") != "RUNNING" or time.monotonic() >= deadline:
            return task
        time.sleep(_TASK_POLL_SECONDS)


def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _counts(sqs: Any, target: Target) -> dict[str, dict[str, int]]:
    """SQS's approximate counts of the S3 queue and its dead-letter queue."""
    counts = {}
    for name, url in (("queue", target.queue_url), ("dead-letter queue", target.dlq_url)):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(_QUEUE_COUNTS))
        counts[name] = {
            label: int(attributes["Attributes"].get(attribute, 0))
            for attribute, label in _QUEUE_COUNTS.items()
        }
    return counts


def _print_counts(when: str, counts: dict[str, dict[str, int]]) -> None:
    parts = [
        f"{name}: " + ", ".join(f"{number} {label}" for label, number in numbers.items())
        for name, numbers in counts.items()
    ]
    console.print(f"{when:<6}  " + "; ".join(parts))


# ---------------------------------------------------------------------------------- backfill


@dataclass(frozen=True)
class ExistingObject:
    key: str
    size: int
    etag: str
    version_id: str | None
    last_modified: datetime


def backfill(
    context: typer.Context,
    location: Annotated[str, typer.Argument(metavar="s3://BUCKET/PREFIX", help="what to send")],
    since: Annotated[
        str | None,
        typer.Option(help="only objects modified at or after (2026-11-21T02:00Z, or 12h)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the objects that would be sent; send nothing")
    ] = False,
) -> None:
    """Send objects that already exist through the path of a new object.

    Each object goes to the S3 queue as the EventBridge "Object Created" event S3 would have
    sent (marked as a backfill). An object that already started its run is skipped by the
    history, so a backfill can be run again; one recorded as unrouted runs once a route
    matches it.
    """
    found = _S3_URI.fullmatch(location)
    if found is None:
        fail(f"{location!r} is not an S3 location: give s3://BUCKET/PREFIX")
    bucket, prefix = found["bucket"], found["prefix"]
    started = utc_now()
    not_before = parse_moment(since, "--since", started) if since else None
    target = target_of(context)
    s3 = target.client("s3")
    versioned = _versioning(s3, bucket) in ("Enabled", "Suspended")
    listed = list(_existing_objects(s3, bucket, prefix, versioned=versioned))
    chosen = [item for item in listed if not_before is None or item.last_modified >= not_before]
    skipped = len(listed) - len(chosen)
    where = f"s3://{bucket}/{prefix}"
    if dry_run:
        _print_backfill_plan(chosen, where, skipped=skipped, versioned=versioned)
        return
    if not chosen:
        console.print(f"nothing to send: no object under {where}" + _older(skipped))
        return
    sqs = target.client("sqs")
    if not versioned:
        _warn_if_events_wait(sqs, target)
    failures = _send(sqs, target, bucket, chosen)
    sent = len(chosen) - len(failures)
    console.print(
        f"sent {_many(sent, 'object')} under {where} to the S3 queue{_older(skipped)}; the s3 "
        "function starts a run for each one no run was started for"
    )
    console.print(
        f"follow them with: dagtrigger history --since {iso_utc(started.replace(microsecond=0))}"
    )
    if failures:
        fail(f"{_many(len(failures), 'object')} not sent: {'; '.join(failures[:5])}")


def _versioning(s3: Any, bucket: str) -> str | None:
    status: str | None = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    return status


def _existing_objects(
    s3: Any, bucket: str, prefix: str, *, versioned: bool
) -> Iterator[ExistingObject]:
    """The objects that exist under ``prefix``: the latest version of each key (a key whose
    latest version is a delete marker does not exist), or each object of an unversioned bucket."""
    if versioned:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                if version.get("IsLatest"):
                    yield _existing(version, version.get("VersionId"))
    else:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield _existing(obj, None)


def _existing(listed: dict[str, Any], version_id: str | None) -> ExistingObject:
    return ExistingObject(
        key=str(listed["Key"]),
        size=int(listed.get("Size", 0)),
        etag=str(listed.get("ETag", "")),
        version_id=version_id,
        last_modified=listed["LastModified"],
    )


def _send(sqs: Any, target: Target, bucket: str, objects: list[ExistingObject]) -> list[str]:
    """Send each object's event (SendMessageBatch); the failures, as "key: reason"."""
    failures: list[str] = []
    batches = [objects[start : start + _BATCH] for start in range(0, len(objects), _BATCH)]
    with _progress(f"sending {_many(len(objects), 'object')}") as progress:
        task = progress.add_task("send", total=len(objects))
        for batch in batches:
            entries = [
                {"Id": str(index), "MessageBody": json.dumps(_event_of(item, bucket, target))}
                for index, item in enumerate(batch)
            ]
            answer = sqs.send_message_batch(QueueUrl=target.queue_url, Entries=entries)
            failures += [
                f"{batch[int(failed['Id'])].key}: {failed.get('Message') or failed.get('Code')}"
                for failed in answer.get("Failed", [])
            ]
            progress.advance(task, len(batch))
    return failures


def _event_of(item: ExistingObject, bucket: str, target: Target) -> dict[str, Any]:
    return backfill_event(
        bucket=bucket,
        key=item.key,
        size=item.size,
        etag=item.etag,
        version_id=item.version_id,
        last_modified=item.last_modified,
        region=target.region,
    )


def _warn_if_events_wait(sqs: Any, target: Target) -> None:
    """In an unversioned bucket a backfill knows an object's run by its own event's record: an
    event still waiting in a queue has none yet, and would start a second run after this one."""
    counts = _counts(sqs, target)
    waiting = sum(sum(numbers.values()) for numbers in counts.values())
    if waiting:
        errors.print(
            "[yellow]warning:[/yellow] the S3 queue and its dead-letter queue hold "
            f"{_many(waiting, 'message')}. In an unversioned bucket, an object whose own event is "
            "among them can run twice: redrive the dead-letter queue and let the queue drain "
            "first.",
            soft_wrap=True,
        )


def _print_backfill_plan(
    objects: list[ExistingObject], where: str, *, skipped: int, versioned: bool
) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("key", "size", "last modified", "version" if versioned else "etag"):
        table.add_column(column, overflow="fold")
    for item in objects[:_DRY_RUN_ROWS]:
        identity = item.version_id if versioned else item.etag.strip('"')
        table.add_row(item.key, str(item.size), iso_utc(item.last_modified), str(identity))
    if objects:
        console.print(table)
    if len(objects) > _DRY_RUN_ROWS:
        console.print(f"... and {len(objects) - _DRY_RUN_ROWS} more")
    console.print(
        f"dry run: {_many(len(objects), 'object')} under {where} would be sent{_older(skipped)}"
    )


def _older(skipped: int) -> str:
    return f" ({skipped} older than --since skipped)" if skipped else ""


def _many(number: int, thing: str) -> str:
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"


# ------------------------------------------------------------------------------------ shared


def _progress(description: str) -> Progress:
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    )


def _with_progress(items: list[dict[str, Any]], description: str) -> Iterable[dict[str, Any]]:
    with _progress(description) as progress:
        yield from progress.track(items, description=description)
