"""`dagtrigger replay`, `redrive` and `backfill` against the real api function (over HTTP,
signed) and moto's SQS and S3 in-process: plans, summaries and one-line errors."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from dagtrigger.ledger import TriggerStatus
from dagtrigger.sources.s3.parse import parse_sqs_body
from dagtrigger.sources.s3.service import handle_s3_message
from dagtrigger_cli.operations_cmd import SCHEDULES_NOT_REDRIVEN, replay_key
from devstack.moto_sqs_redrive import install as install_sqs_redrive
from tests.unit.cli.conftest import ApiStack, DagtriggerRunner
from tests.unit.cli.test_history_cmd import assert_one_line_error, record_trigger

MISSING_ID = "t-" + "0" * 32


def replay_requests(stack: ApiStack) -> list[dict[str, Any]]:
    return [event for event in stack.events if event["rawPath"].endswith("/replay")]


def drain(stack: ApiStack, url: str) -> list[str]:
    """Every message body in the queue (received and deleted)."""
    sqs = stack.target.client("sqs")
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [message["Body"] for message in messages]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )
    return bodies


def summary_line(output: str, start: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(start))


# --------------------------------------------------------------------------------------- help


def test_the_help_lists_the_recovery_commands(cli_runner: DagtriggerRunner) -> None:
    result = cli_runner.run("--help")

    assert result.exit_code == 0
    for command in ("replay", "redrive", "backfill"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "replay",
            ["[ID]...", "--status", "--since", "--until", "--environment", "--dag", "--dry-run"],
        ),
        ("redrive", ["dead-letter queue", "--schedules", "--wait"]),
        ("backfill", ["s3://BUCKET/PREFIX", "--since", "--dry-run", "Object Created"]),
    ],
)
def test_each_recovery_command_explains_its_options(
    cli_runner: DagtriggerRunner, command: str, expected: list[str]
) -> None:
    result = cli_runner.run(command, "--help")

    assert result.exit_code == 0
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.stdout


# ------------------------------------------------------------------------------------- replay


def test_replay_by_status_retries_each_failed_trigger_in_place_once(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    # Given three triggers that failed during an outage and one that ran
    failed = [record_trigger(api_stack, str(n), TriggerStatus.TRIGGER_FAILED) for n in (1, 2, 3)]
    record_trigger(api_stack, "4", TriggerStatus.SUCCESS)

    # When the failed ones are replayed
    result = cli_runner.run("replay", "--status", "TRIGGER_FAILED", "--since", "1d")

    # Then each one started its recorded run, and the summary says so
    assert result.exit_code == 0, result.output
    calls = sorted(call.dag_run_id for call in api_stack.transport.calls)
    assert calls == ["dagtrigger__s3__1", "dagtrigger__s3__2", "dagtrigger__s3__3"]
    assert summary_line(result.stdout, "replayed") == (
        "replayed 3 (runs started: 3, already in Airflow: 0), skipped 0 (already ran or "
        "running), failed 0"
    )
    for trigger_id in failed:
        assert api_stack.ledger.get(trigger_id)["status"] == "TRIGGERED"
    # And each replay named itself with a key made of the trigger id and its replay count
    keys = {event["headers"]["idempotency-key"] for event in replay_requests(api_stack)}
    assert keys == {f"dagtrigger-replay-{trigger_id}-0" for trigger_id in failed}

    # When it is run again
    again = cli_runner.run("replay", "--status", "TRIGGER_FAILED", "--since", "1d")

    # Then nothing is left to replay and nothing started
    assert again.exit_code == 0
    assert "nothing to replay" in again.stdout
    assert len(api_stack.transport.calls) == 3


def test_replay_by_id_reports_what_was_skipped_and_what_failed(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    # Given a failed trigger, one that ran, and a rejection that kept no conf
    failed = record_trigger(api_stack, "1", TriggerStatus.TRIGGER_FAILED)
    ran = record_trigger(api_stack, "2", TriggerStatus.SUCCESS)
    no_conf = record_trigger(api_stack, "3", TriggerStatus.REJECTED)
    api_stack.ledger._table.update_item(  # a conf too large to keep
        Key={"pk": no_conf}, UpdateExpression="REMOVE conf SET conf_truncated = :yes",
        ExpressionAttributeValues={":yes": True},
    )  # fmt: skip

    # When the three are replayed by id
    result = cli_runner.run("replay", failed, ran, no_conf)

    # Then the failed one ran, the one that ran was skipped, the other failed with the reason
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if "t-" in line}
    assert failed not in lines
    assert "skipped: now SUCCESS" in lines[ran]
    assert "failed" in lines[no_conf]
    assert "its conf was too large to keep" in lines[no_conf]
    assert summary_line(result.stdout, "replayed").endswith(
        "skipped 1 (already ran or running), failed 1"
    )
    assert [call.dag_run_id for call in api_stack.transport.calls] == ["dagtrigger__s3__1"]

    # When the same ids are replayed again
    again = cli_runner.run("replay", failed)

    # Then the replayed one is skipped: a second replay starts nothing
    assert again.exit_code == 0
    assert "skipped: now TRIGGERED" in again.stdout
    assert len(api_stack.transport.calls) == 1


def test_a_replay_dry_run_lists_the_triggers_and_replays_nothing(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    failed = record_trigger(api_stack, "1", TriggerStatus.REJECTED)
    ran = record_trigger(api_stack, "2", TriggerStatus.TRIGGERED)

    by_status = cli_runner.run("replay", "--status", "REJECTED", "--since", "2h", "--dry-run")
    by_id = cli_runner.run("replay", failed, ran, "--dry-run")

    assert by_status.exit_code == by_id.exit_code == 0
    assert failed in by_status.stdout
    assert "dry run: 1 trigger listed, nothing replayed" in by_status.stdout
    rows = {line.split()[0]: line for line in by_id.stdout.splitlines() if "t-" in line}
    assert rows[failed].rstrip().endswith("replay")
    assert "skip: already TRIGGERED" in rows[ran]
    assert replay_requests(api_stack) == []
    assert api_stack.transport.calls == []


def test_replay_by_status_sends_its_filters_to_the_history_list(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    result = cli_runner.run(
        "replay", "--status", "TRIGGER_FAILED", "--since", "2026-11-21T02:00Z",
        "--until", "2026-11-21T04:00Z", "--environment", "prod", "--dag", "ingest_sales",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    (query,) = api_stack.queries("/v1/triggers")
    assert query["status"] == "TRIGGER_FAILED"
    assert (query["dag_id"], query["environment"]) == ("ingest_sales", "prod")
    assert query["since"] == "2026-11-21T02:00:00Z"
    assert query["until"] == "2026-11-21T04:00:00Z"


def test_the_replay_key_names_the_next_replay_of_a_trigger() -> None:
    assert replay_key({"trigger_id": MISSING_ID}) == f"dagtrigger-replay-{MISSING_ID}-0"
    assert replay_key({"trigger_id": MISSING_ID, "replays": 2}) == (
        f"dagtrigger-replay-{MISSING_ID}-2"
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ([], "give trigger ids to replay, or --status"),
        ([MISSING_ID, "--status", "REJECTED", "--since", "1d"], "not both"),
        (["--status", "TRIGGER_FAILED"], "--status needs --since"),
        ([MISSING_ID, "--since", "1d"], "select triggers with --status"),
        (["t-123", "../health"], "not a trigger id: t-123, ../health"),
        (["--status", "REJECTED", "--since", "yesterday"], "--since 'yesterday' is not a time"),
    ],
)
def test_bad_replay_arguments_are_one_line_errors_before_any_call(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, arguments: list[str], expected: str
) -> None:
    result = cli_runner.run("replay", *arguments)

    assert_one_line_error(result, expected)
    assert api_stack.events == []


def test_replaying_an_unknown_trigger_is_the_apis_one_line_problem(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    result = cli_runner.run("replay", MISSING_ID)

    assert_one_line_error(result, f"no trigger with id '{MISSING_ID}'", "404")


# ------------------------------------------------------------------------------------ redrive


@pytest.fixture
def dead_letters(api_stack: ApiStack) -> int:
    """Three messages that failed on the S3 queue and moved to its dead-letter queue."""
    install_sqs_redrive()
    sqs = api_stack.target.client("sqs")
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=api_stack.target.dlq_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}
    sqs.set_queue_attributes(
        QueueUrl=api_stack.target.queue_url, Attributes={"RedrivePolicy": json.dumps(policy)}
    )
    for index in range(3):
        sqs.send_message(QueueUrl=api_stack.target.queue_url, MessageBody=f"event {index}")
    queue = api_stack.target.queue_url
    sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)
    sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)  # past maxReceiveCount
    return 3


def test_redrive_moves_the_dead_letters_back_and_shows_the_counts(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, dead_letters: int
) -> None:
    result = cli_runner.run("redrive")

    assert result.exit_code == 0, result.output
    before = summary_line(result.stdout, "before")
    after = summary_line(result.stdout, "after")
    assert "queue: 0 waiting" in before
    assert "dead-letter queue: 3 waiting" in before
    assert "queue: 3 waiting" in after
    assert "dead-letter queue: 0 waiting" in after
    assert f"moved 3 of 3 messages back to {api_stack.target.queue_url}" in result.stdout
    assert sorted(drain(api_stack, api_stack.target.queue_url)) == [
        "event 0",
        "event 1",
        "event 2",
    ]


def test_redrive_with_an_empty_dead_letter_queue_moves_nothing(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    result = cli_runner.run("redrive")

    assert result.exit_code == 0, result.output
    assert "nothing to redrive" in result.stdout


def test_redrive_of_a_queue_that_is_no_dead_letter_queue_is_sqss_one_line_answer(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    # Given a "dead-letter queue" no queue's redrive policy names, holding a message
    install_sqs_redrive()
    sqs = api_stack.target.client("sqs")
    sqs.send_message(QueueUrl=api_stack.target.dlq_url, MessageBody="stray")

    result = cli_runner.run("redrive")

    assert result.exit_code == 1
    (error,) = result.stderr.strip().splitlines()
    assert error.startswith("error: StartMessageMoveTask: InvalidParameterValue")
    assert "Source queue must be configured as a Dead Letter Queue" in error
    assert "Traceback" not in result.output


def test_the_schedules_dead_letter_queue_is_not_redriven_and_the_command_says_why(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    result = cli_runner.run("redrive", "--schedules")

    assert_one_line_error(result, SCHEDULES_NOT_REDRIVEN)


# ----------------------------------------------------------------------------------- backfill


def put_objects(api_stack: ApiStack, bucket: str, keys: list[str]) -> None:
    s3 = api_stack.target.client("s3")
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=f"data of {key}".encode())


@pytest.fixture
def prefix() -> str:
    """A folder of the sales route no other test writes to (moto's bucket outlives a test)."""
    return f"sales/{uuid.uuid4().hex[:8]}/"


def test_backfill_sends_each_object_under_the_prefix_as_an_object_created_event(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, prefix: str
) -> None:
    # Given objects of an unversioned bucket, three under the prefix
    keys = [f"{prefix}a.csv", f"{prefix}c++ notes%20v2.csv", f"{prefix}q4/b.csv"]
    put_objects(api_stack, "landing", [*keys, f"other/{prefix}x.csv"])

    # When they are backfilled
    result = cli_runner.run("backfill", f"s3://landing/{prefix}")

    # Then each one is on the S3 queue as the event the s3 function reads, marked as a backfill
    assert result.exit_code == 0, result.output
    assert f"sent 3 objects under s3://landing/{prefix} to the S3 queue" in result.stdout
    assert "follow them with: dagtrigger history --since 20" in result.stdout
    bodies = drain(api_stack, api_stack.target.queue_url)
    events = [parse_sqs_body(body).events[0] for body in bodies]
    assert sorted(event.key for event in events) == sorted(keys)
    assert all(event.backfill and event.bucket == "landing" for event in events)
    assert all(event.etag and '"' not in event.etag for event in events)
    assert {event.version_id for event in events} == {None}


def test_backfill_of_a_versioned_bucket_sends_the_latest_version_of_each_existing_key(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, prefix: str
) -> None:
    # Given a versioned bucket: a key written twice, and a key deleted since
    s3 = api_stack.target.client("s3")
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    put_objects(api_stack, "versioned", [f"{prefix}a.csv", f"{prefix}a.csv", f"{prefix}gone.csv"])
    s3.delete_object(Bucket="versioned", Key=f"{prefix}gone.csv")
    latest = s3.head_object(Bucket="versioned", Key=f"{prefix}a.csv")["VersionId"]

    result = cli_runner.run("backfill", f"s3://versioned/{prefix}")

    assert result.exit_code == 0, result.output
    (body,) = drain(api_stack, api_stack.target.queue_url)
    (event,) = parse_sqs_body(body).events
    assert (event.key, event.version_id) == (f"{prefix}a.csv", latest)


def test_backfill_runs_each_object_once_however_often_it_is_run(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, prefix: str
) -> None:
    # Given two objects for the sales route, one of which ran when it landed
    put_objects(api_stack, "landing", [f"{prefix}ran.csv", f"{prefix}missed.csv"])
    cli_runner.run("backfill", f"s3://landing/{prefix}ran.csv")
    for body in drain(api_stack, api_stack.target.queue_url):
        handle_s3_message(body, api_stack.deps)
    assert len(api_stack.transport.calls) == 1

    # When the prefix is backfilled twice and the s3 function handles what was sent
    for _ in range(2):
        assert cli_runner.run("backfill", f"s3://landing/{prefix}").exit_code == 0
        for body in drain(api_stack, api_stack.target.queue_url):
            handle_s3_message(body, api_stack.deps)

    # Then only the object that had not run started a run
    keys = sorted(call.conf["key"] for call in api_stack.transport.calls)
    assert keys == [f"{prefix}missed.csv", f"{prefix}ran.csv"]


def test_a_backfill_dry_run_lists_the_objects_and_sends_nothing(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, prefix: str
) -> None:
    put_objects(api_stack, "landing", [f"{prefix}a.csv", f"{prefix}b.csv"])

    result = cli_runner.run("backfill", f"s3://landing/{prefix}", "--dry-run")

    assert result.exit_code == 0, result.output
    assert f"{prefix}a.csv" in result.stdout
    assert f"{prefix}b.csv" in result.stdout
    assert f"dry run: 2 objects under s3://landing/{prefix} would be sent" in result.stdout
    assert drain(api_stack, api_stack.target.queue_url) == []


def test_backfill_since_skips_older_objects_and_says_how_many(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, prefix: str
) -> None:
    put_objects(api_stack, "landing", [f"{prefix}a.csv", f"{prefix}b.csv"])

    result = cli_runner.run("backfill", f"s3://landing/{prefix}", "--since", "2999-01-01")

    assert result.exit_code == 0, result.output
    expected = f"nothing to send: no object under s3://landing/{prefix} (2 older than --since"
    assert expected in result.stdout
    assert drain(api_stack, api_stack.target.queue_url) == []


def test_backfill_of_an_unversioned_bucket_warns_when_events_wait_in_the_queues(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, prefix: str
) -> None:
    put_objects(api_stack, "landing", [f"{prefix}a.csv"])
    api_stack.target.client("sqs").send_message(
        QueueUrl=api_stack.target.dlq_url, MessageBody="an object's own event"
    )

    result = cli_runner.run("backfill", f"s3://landing/{prefix}")

    assert result.exit_code == 0, result.output
    assert "warning: the S3 queue and its dead-letter queue hold 1 message." in result.stderr


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("landing/sales/", "'landing/sales/' is not an S3 location: give s3://BUCKET/PREFIX"),
        ("s3://no-such-bucket/x", "NoSuchBucket"),
    ],
)
def test_a_bad_backfill_location_is_one_line(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, location: str, expected: str
) -> None:
    result = cli_runner.run("backfill", location)

    assert_one_line_error(result, expected)
