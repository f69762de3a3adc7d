"""The SQS operations an operator (and the fault matrix) uses: redrive a dead-letter queue, look
inside a queue without consuming it, and read what a function was handed on each receive."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from devstack.reliability.instances import InvocationRecord

_MOVE_TASK_POLL_SECONDS: Final = 1.0
_MOVE_TASK_TIMEOUT_SECONDS: Final = 300.0
_PEEK_VISIBILITY_SECONDS: Final = 30


@dataclass(frozen=True)
class Redrive:
    """One redrive of a dead-letter queue: how many messages went back."""

    moved: int


def queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def message_count(sqs: Any, queue_url: str) -> int:
    """Messages in the queue, visible or in flight (SQS's approximate counts)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


def redrive_dead_letters(sqs: Any, *, dead_letter_url: str, source_url: str) -> Redrive:
    """Move every message of the dead-letter queue back to its source queue, with SQS's own
    redrive (``StartMessageMoveTask``; the local stack's moto has it from
    ``devstack.moto_sqs_redrive``)."""
    waiting = message_count(sqs, dead_letter_url)
    if waiting == 0:
        return Redrive(0)
    task = sqs.start_message_move_task(
        SourceArn=queue_arn(sqs, dead_letter_url),
        DestinationArn=queue_arn(sqs, source_url),
    )
    finished = _wait_for_move_task(sqs, dead_letter_url, task["TaskHandle"])
    return Redrive(int(finished.get("ApproximateNumberOfMessagesMoved", 0)))


def peek_bodies(sqs: Any, queue_url: str) -> list[str]:
    """The bodies of the queue's visible messages, left in the queue and visible again after."""
    bodies: list[str] = []
    handles: list[str] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=_PEEK_VISIBILITY_SECONDS,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            break
        bodies += [message["Body"] for message in messages]
        handles += [message["ReceiptHandle"] for message in messages]
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, handle in enumerate(handles[start : start + 10])
            ],
        )
    return bodies


@dataclass(frozen=True)
class Receipt:
    """One SQS message handed to a function: when, how often so far, and how it ended."""

    message_id: str
    receive_count: int
    received_at: float  # time.monotonic() of the invocation's start
    finished_at: float
    failed: bool  # left on the queue for a retry (a batch item failure or a failed invocation)


def receipts(records: Iterable[InvocationRecord]) -> list[Receipt]:
    """What each SQS invocation received, from the invocations a pool recorded."""
    found: list[Receipt] = []
    for record in records:
        messages = record.event.get("Records") if isinstance(record.event, dict) else None
        if not isinstance(messages, list):
            continue
        failed_ids = _failed_ids(record)
        for message in messages:
            message_id = str(message.get("messageId", ""))
            count = (message.get("attributes") or {}).get("ApproximateReceiveCount", "0")
            found.append(
                Receipt(
                    message_id=message_id,
                    receive_count=int(count),
                    received_at=record.started,
                    finished_at=record.ended,
                    failed=failed_ids is None or message_id in failed_ids,
                )
            )
    return found


def retry_waits(found: Iterable[Receipt]) -> list[float]:
    """Seconds each failed receive waited for the message's next receive."""
    by_message: dict[str, list[Receipt]] = {}
    for receipt in found:
        by_message.setdefault(receipt.message_id, []).append(receipt)
    waits = []
    for history in by_message.values():
        history.sort(key=lambda receipt: receipt.received_at)
        for earlier, later in itertools.pairwise(history):
            if earlier.failed:
                waits.append(later.received_at - earlier.finished_at)
    return waits


def _failed_ids(record: InvocationRecord) -> set[str] | None:
    """The message ids an SQS invocation left for a retry; None when it failed as a whole."""
    if not record.result.succeeded:
        return None
    payload = record.result.payload
    failures = payload.get("batchItemFailures") if isinstance(payload, dict) else None
    return {str(item.get("itemIdentifier")) for item in failures or [] if isinstance(item, dict)}


def _wait_for_move_task(sqs: Any, dead_letter_url: str, task_handle: str) -> dict[str, Any]:
    source_arn = queue_arn(sqs, dead_letter_url)
    deadline = time.monotonic() + _MOVE_TASK_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        # The source's most recent task is ours (one active task per source); SQS lists a
        # task's handle only while it is RUNNING, so the handle cannot find a finished one.
        tasks = sqs.list_message_move_tasks(SourceArn=source_arn).get("Results", [])
        task: dict[str, Any] = tasks[0] if tasks else {}
        status = task.get("Status")
        if status == "COMPLETED":
            return task
        if status in {"FAILED", "CANCELLED"}:
            raise RuntimeError(f"the redrive task ended {status}: {task.get('FailureReason')}")
        time.sleep(_MOVE_TASK_POLL_SECONDS)
    raise TimeoutError(f"the redrive task {task_handle} did not finish")
