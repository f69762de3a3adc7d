"""End to end: recovering with the `dagtrigger` command on the local stack, counting Airflow's runs.

An emulated MWAA outage leaves TRIGGER_FAILED records and dead letters; `dagtrigger redrive` and
`dagtrigger replay --status TRIGGER_FAILED` then recover every object with exactly one run, and
replaying again starts nothing. `dagtrigger backfill` over a prefix of 20 objects, 10 of which
already ran, starts exactly 10 runs, and a second backfill starts none. The command runs in this
process (typer's runner), pointed at the stack through the state file `make up` would write.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from boto3.dynamodb.conditions import Key

from dagtrigger.clock import iso_utc
from devstack.processes import wait_until
from devstack.stack import LocalStack

pytestmark = pytest.mark.e2e

BUCKET = "landing"
DAG_ID = "ingest_sales"
OUTAGE_OBJECTS = 4
#: the source bucket's notification configuration (as the runner provisions it)
#: settled: the trigger started its run (or Airflow's run is already further on)
STARTED = frozenset({"TRIGGERED", "RUNNING", "SUCCESS", "FAILED"})


@pytest.fixture
def started_at() -> datetime:
    # Airflow's and DynamoDB's clocks are this machine's; a margin covers rounding
    return datetime.now(UTC) - timedelta(seconds=5)


def unique_prefix(name: str) -> str:
    return f"sales/{name}-{secrets.token_hex(3)}/"


def runs_per_key(stack: LocalStack, since: datetime, prefix: str) -> Counter[str]:
    """How many runs of ingest_sales Airflow has for each object under ``prefix`` (by conf)."""
    assert stack.airflow is not None
    session = stack.airflow.api_session()
    created_after = "run_after_gte" if stack.airflow.major >= 3 else "execution_date_gte"
    runs: dict[str, str] = {}
    offset = 0
    while True:
        answer = session.get(
            stack.airflow.api_url(f"/dags/{quote(DAG_ID, safe='')}/dagRuns"),
            params={"limit": 100, "offset": offset, "order_by": "id", created_after: since},
            timeout=60,
        )
        answer.raise_for_status()
        page = answer.json()
        batch = page.get("dag_runs", [])
        runs.update({run["dag_run_id"]: str((run.get("conf") or {}).get("key")) for run in batch})
        offset += len(batch)
        if not batch or offset >= int(page.get("total_entries", 0)):
            break
    return Counter(key for key in runs.values() if key.startswith(prefix))


def records_of(stack: LocalStack, key: str) -> list[dict[str, Any]]:
    answer = stack.history_table().query(
        IndexName="by_source", KeyConditionExpression=Key("source_key").eq(f"s3://{BUCKET}/{key}")
    )
    return list(answer["Items"])


def statuses(stack: LocalStack, keys: list[str]) -> dict[str, list[str]]:
    return {key: sorted(str(r["status"]) for r in records_of(stack, key)) for key in keys}


def queue_counts(stack: LocalStack, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


def settled(stack: LocalStack, keys: list[str]) -> dict[str, list[str]] | None:
    """Each object's statuses once every object has one record that started its run and the
    S3 queue has nothing left in it; None until then."""
    resources = stack.resources()
    if queue_counts(stack, resources["queue_url"]):
        return None
    found = statuses(stack, keys)
    done = all(len(found[key]) == 1 and found[key][0] in STARTED for key in keys)
    return found if done else None


@pytest.fixture
def dead_letters_after_one_failed_receive(stack: LocalStack) -> Iterator[None]:
    """The S3 queue moves a message to its dead-letter queue after one failed receive (the
    template's 9 receives take about an hour); the template's policy is put back after."""
    queue_url = stack.resources()["queue_url"]
    attributes = stack.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    template_policy = attributes["Attributes"]["RedrivePolicy"]
    quick = {**json.loads(template_policy), "maxReceiveCount": 1}
    stack.sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"RedrivePolicy": json.dumps(quick)}
    )
    try:
        yield
    finally:
        stack.sqs.set_queue_attributes(
            QueueUrl=queue_url, Attributes={"RedrivePolicy": template_policy}
        )


@pytest.mark.timeout(900)
@pytest.mark.usefixtures("dead_letters_after_one_failed_receive")
def test_after_an_mwaa_outage_redrive_and_replay_recover_each_object_with_one_run(
    stack: LocalStack, dagtrigger: Any, started_at: datetime
) -> None:
    assert stack.emulator is not None
    resources = stack.resources()
    prefix = unique_prefix("outage")
    keys = [f"{prefix}{index:02d}.csv" for index in range(OUTAGE_OBJECTS)]

    # Given objects that land while MWAA answers 500 to every call, until each message has
    # failed and moved to the dead-letter queue
    stack.emulator.faults.set("InvokeRestApi", error="InternalServerException", outage=True)
    try:
        for key in keys:
            stack.s3.put_object(Bucket=BUCKET, Key=key, Body=b"region,amount\neast,3\n")
        wait_until(
            lambda: queue_counts(stack, resources["dlq_url"]) == len(keys),
            timeout=300,
            interval=2,
            what="every object's message in the dead-letter queue",
        )
    finally:
        stack.emulator.faults.clear()
    assert statuses(stack, keys) == {key: ["TRIGGER_FAILED"] for key in keys}
    assert runs_per_key(stack, started_at, prefix) == Counter()
    # And one object's dead letter is lost (its retention ran out): only a replay can recover it
    lost_key = keys[0]
    lose_dead_letter_of(stack, resources["dlq_url"], lost_key)

    # When the operator redrives the dead-letter queue and replays what failed, while the
    # redriven messages are being handled
    redrive = dagtrigger("redrive")
    replay = dagtrigger("replay", "--status", "TRIGGER_FAILED", "--since", iso_utc(started_at))

    # Then every object ends with exactly one run
    assert redrive.exit_code == 0
    assert f"moved {len(keys) - 1} of {len(keys) - 1} messages" in redrive.stdout
    assert replay.exit_code == 0
    assert "failed 0" in replay.stdout
    wait_until(lambda: settled(stack, keys), timeout=300, interval=2, what="every object settled")
    assert runs_per_key(stack, started_at, prefix) == Counter(dict.fromkeys(keys, 1))
    assert queue_counts(stack, resources["dlq_url"]) == 0

    # When the failed triggers are replayed again, by status and by id
    again = dagtrigger("replay", "--status", "TRIGGER_FAILED", "--since", iso_utc(started_at))
    trigger_ids = [str(records_of(stack, key)[0]["trigger_id"]) for key in keys]
    by_id = dagtrigger("replay", *trigger_ids)

    # Then nothing is started: there is nothing to replay, and each one is skipped
    assert again.exit_code == 0
    assert "nothing to replay" in again.stdout
    assert by_id.exit_code == 0
    assert f"replayed 0 (runs started: 0, already in Airflow: 0), skipped {len(keys)}" in (
        by_id.stdout
    )
    assert runs_per_key(stack, started_at, prefix) == Counter(dict.fromkeys(keys, 1))


def lose_dead_letter_of(stack: LocalStack, dlq_url: str, key: str) -> None:
    """Delete ``key``'s message from the dead-letter queue; leave the others as they were."""
    messages = stack.sqs.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30
    ).get("Messages", [])
    for message in messages:
        if json.loads(message["Body"])["detail"]["object"]["key"] == key:
            stack.sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        else:
            stack.sqs.change_message_visibility(
                QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    assert queue_counts(stack, dlq_url) == len(messages) - 1


@pytest.mark.timeout(900)
def test_a_backfill_starts_a_run_only_for_the_objects_that_never_ran(
    stack: LocalStack, dagtrigger: Any, started_at: datetime
) -> None:
    prefix = unique_prefix("backfill")
    ran = [f"{prefix}ran-{index:02d}.csv" for index in range(10)]
    missed = [f"{prefix}missed-{index:02d}.csv" for index in range(10)]

    # Given 10 objects that ran when they landed
    for key in ran:
        stack.s3.put_object(Bucket=BUCKET, Key=key, Body=b"region,amount\nnorth,1\n")
    wait_until(lambda: settled(stack, ran), timeout=300, interval=2, what="the first 10 runs")
    # And 10 that landed before the bucket sent its events to dagtrigger
    with stack.s3_events_held_back(BUCKET):
        for key in missed:
            stack.s3.put_object(Bucket=BUCKET, Key=key, Body=b"region,amount\nsouth,2\n")
    assert runs_per_key(stack, started_at, prefix) == Counter(dict.fromkeys(ran, 1))

    # When the prefix is backfilled (after a dry run, which sends nothing)
    plan = dagtrigger("backfill", f"s3://{BUCKET}/{prefix}", "--dry-run")
    assert f"dry run: 20 objects under s3://{BUCKET}/{prefix} would be sent" in plan.stdout
    first = dagtrigger("backfill", f"s3://{BUCKET}/{prefix}")

    # Then exactly the 10 that never ran start a run
    assert first.exit_code == 0
    assert f"sent 20 objects under s3://{BUCKET}/{prefix}" in first.stdout
    everything = ran + missed
    wait_until(lambda: settled(stack, everything), timeout=300, interval=2, what="20 objects")
    assert runs_per_key(stack, started_at, prefix) == Counter(dict.fromkeys(everything, 1))

    # When it is backfilled again
    deliveries = {key: int(records_of(stack, key)[0]["deliveries"]) for key in everything}
    second = dagtrigger("backfill", f"s3://{BUCKET}/{prefix}")

    # Then nothing starts; each record counted the backfill as one more delivery of its event
    assert second.exit_code == 0
    wait_until(
        lambda: all(
            int(records_of(stack, key)[0]["deliveries"]) == deliveries[key] + 1
            for key in everything
        ),
        timeout=300,
        interval=2,
        what="the second backfill to be handled",
    )
    assert runs_per_key(stack, started_at, prefix) == Counter(dict.fromkeys(everything, 1))
