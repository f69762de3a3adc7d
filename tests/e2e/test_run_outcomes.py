"""End to end: each DAG run that ends publishes one "DAG Run Finished" event on the default
EventBridge bus (moto), and an ordinary rule delivers it to an SQS queue; a failed run names its
failing task on the event, in the ledger and in `dagtrigger show`. The routes file is checked and
dry-run by the command first, as an operator would before deploying it.

Two runs are started through the IAM-signed API on the local stack's real Airflow: one of
``ingest_sales`` (succeeds) and one of ``fails_in_a_task`` (fails in its task ``load``). The
reconciler is invoked until both records end, then again, while the runner's own one-minute
schedule may run it too: the queue must still hold exactly one event per run.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.processes import wait_until
from devstack.stack import LocalStack
from tests.e2e.test_http_and_schedules import RUN_TIMEOUT_SECONDS, api_url, iam_signed

pytestmark = pytest.mark.e2e

#: how long the queue is watched for a second copy of an event after the first arrived
QUIET_SECONDS = 5


@pytest.fixture
def finished_runs_queue(stack: LocalStack) -> Iterator[str]:
    """An SQS queue that a rule on the default bus fills with "DAG Run Finished" events."""
    name = f"dag-run-finished-{uuid.uuid4().hex[:8]}"
    queue_url = stack.sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = stack.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    pattern = {"source": ["dagtrigger"], "detail-type": ["DAG Run Finished"]}
    stack.events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
    stack.events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    yield queue_url
    stack.events.remove_targets(Rule=name, Ids=["queue"])
    stack.events.delete_rule(Name=name)
    stack.sqs.delete_queue(QueueUrl=queue_url)


def start_run(stack: LocalStack, dag_id: str) -> dict[str, Any]:
    answer = iam_signed(
        "POST", api_url(stack, f"/v1/dags/{dag_id}/runs"), body={"conf": {"e2e": "run outcomes"}}
    )
    assert answer.status_code == 202, answer.text
    accepted: dict[str, Any] = answer.json()
    return accepted


def record_of(stack: LocalStack, trigger_id: str) -> dict[str, Any]:
    item: dict[str, Any] = stack.history_table().get_item(
        Key={"pk": trigger_id}, ConsistentRead=True
    )["Item"]
    return item


def receive_events(stack: LocalStack, queue_url: str) -> list[dict[str, Any]]:
    """The events the queue holds now (each deleted once read)."""
    events: list[dict[str, Any]] = []
    while True:
        answer = stack.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages = answer.get("Messages", [])
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            stack.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_each_finished_run_sends_one_event_through_an_ordinary_rule(
    stack: LocalStack, finished_runs_queue: str, dagtrigger: Any
) -> None:
    started = time.monotonic()
    assert stack.runner is not None

    # Given the stack's routes file, checked and dry-run by the command as an operator would
    routes_file = stack.resources()["routes_file"]
    checked = dagtrigger("routes", "check", routes_file)
    assert checked.exit_code == 0
    assert "is valid" in checked.stdout
    dry_run = dagtrigger(
        "routes", "test", routes_file, "--bucket", "landing", "--key", "sales/2026-11-21.csv"
    )
    assert dry_run.exit_code == 0
    assert "would start 1 DAG run" in dry_run.stdout
    assert "ingest_sales" in dry_run.stdout

    # Given a run that succeeds and a run that fails in its task "load"
    succeeding = start_run(stack, "ingest_sales")
    failing = start_run(stack, "fails_in_a_task")
    ours = {succeeding["trigger_id"], failing["trigger_id"]}

    # When the reconciler follows them until both records have ended
    def both_ended() -> bool:
        stack.runner.invoke("ReconcilerFunction", {"source": "e2e"})  # type: ignore[union-attr]
        statuses = {record_of(stack, trigger_id)["status"] for trigger_id in ours}
        return statuses <= {"SUCCESS", "FAILED"}

    wait_until(both_ended, timeout=RUN_TIMEOUT_SECONDS, interval=3, what="both runs to end")

    # Then the queue receives one event for each, and no second copy while passes go on
    received: list[dict[str, Any]] = []

    def both_received() -> bool:
        received.extend(receive_events(stack, finished_runs_queue))
        return ours <= {event["detail"]["trigger_id"] for event in received}

    wait_until(both_received, timeout=60, what="the DAG Run Finished events in the queue")
    for _ in range(2):
        stack.runner.invoke("ReconcilerFunction", {"source": "e2e"})
    time.sleep(QUIET_SECONDS)
    received.extend(receive_events(stack, finished_runs_queue))
    mine = [event for event in received if event["detail"]["trigger_id"] in ours]
    assert Counter(event["detail"]["trigger_id"] for event in mine) == dict.fromkeys(ours, 1)

    # And each event is the rule's kind and says how its run ended
    by_trigger = {event["detail"]["trigger_id"]: event for event in mine}
    success, failure = by_trigger[succeeding["trigger_id"]], by_trigger[failing["trigger_id"]]
    for event in (success, failure):
        assert (event["source"], event["detail-type"]) == ("dagtrigger", "DAG Run Finished")
        assert event["detail"]["source_type"] == "api"
        assert event["detail"]["environment"] == "demo"
        assert event["detail"]["timings"]["finished_at"]
    assert (success["detail"]["dag_id"], success["detail"]["state"]) == ("ingest_sales", "SUCCESS")
    assert "failed_tasks" not in success["detail"]
    assert (failure["detail"]["dag_id"], failure["detail"]["state"]) == (
        "fails_in_a_task", "FAILED",
    )  # fmt: skip
    assert failure["detail"]["failed_tasks"] == ["load"]
    assert failure["detail"]["dag_run_id"] == failing["dag_run_id"]

    # And the ledger's record of the failed run names its failing task, with nothing left due
    failed_record = record_of(stack, failing["trigger_id"])
    assert failed_record["failed_tasks"] == ["load"]
    assert failed_record["failed_task_count"] == 1
    assert "pending_event" not in failed_record

    # And `dagtrigger show` tells the operator the run failed, and in which task
    shown = dagtrigger("show", failing["trigger_id"])
    assert shown.exit_code == 0
    assert "FAILED" in shown.stdout
    assert "failed tasks: load" in shown.stdout
    print(f"\nrun outcomes end to end: {time.monotonic() - started:.1f} s")
