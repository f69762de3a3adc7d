"""SQS event source mappings: poll a queue, invoke with Lambda's SQS event, delete what succeeded.

What Lambda does, and so what this does:

* receive up to ``BatchSize`` messages (10 per ReceiveMessage call, with every system
  attribute), waiting up to ``MaximumBatchingWindowInSeconds`` to fill the batch;
* invoke with ``{"Records": [...]}`` in Lambda's record shape;
* handler raised (or timed out): delete nothing; every message comes back after the queue's
  visibility timeout;
* handler returned: delete every message, except, with ``ReportBatchItemFailures``, the ones
  named in ``batchItemFailures``. A malformed failure list (an id that is not in the batch,
  an empty id) fails the whole batch, as Lambda does.

The redrive to the dead-letter queue after ``maxReceiveCount`` receives is moto's own (it
applies the queue's RedrivePolicy on ReceiveMessage, measured with moto 5.2.5), as in SQS.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from devstack.runner.invoke import InvocationResult
from devstack.runner.moto_fidelity import MotoS3EventFidelity
from devstack.runner.template import SqsEventSource

logger = logging.getLogger(__name__)
_MAX_MESSAGES_PER_RECEIVE: Final = 10
_DELETE_BATCH: Final = 10

Invoke = Callable[[dict[str, Any]], InvocationResult]


@dataclass(frozen=True)
class BatchOutcome:
    """What one batch did: the ids deleted and the ids left for a retry."""

    deleted: tuple[str, ...]
    retried: tuple[str, ...]
    result: InvocationResult


def lambda_sqs_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One message as Lambda's SQS event record."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: _lambda_message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(
    result: InvocationResult, batch_ids: list[str], reports_failures: bool
) -> set[str]:
    """The ids to leave on the queue after an invocation, following Lambda's rules."""
    if not result.succeeded:
        return set(batch_ids)
    if not reports_failures:
        return set()
    payload = result.payload
    if payload is None or (isinstance(payload, dict) and not payload.get("batchItemFailures")):
        return set()
    failures = payload.get("batchItemFailures") if isinstance(payload, dict) else None
    if not isinstance(failures, list):
        logger.warning("batchItemFailures is not a list: the whole batch fails")
        return set(batch_ids)
    named = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            logger.warning("batchItemFailures names %r, not in the batch: it all fails", identifier)
            return set(batch_ids)
        named.add(identifier)
    return named


@dataclass(kw_only=True)
class SqsPoller:
    """Polls one queue for one event source; run `run_until` in as many threads as wanted.

    `batching_window_seconds` caps the source's MaximumBatchingWindowInSeconds (None keeps it).
    """

    sqs_client: Any
    queue_url: str
    source: SqsEventSource
    region: str
    invoke: Invoke
    fidelity: MotoS3EventFidelity | None
    poll_wait_seconds: int = 1
    batching_window_seconds: float | None = None

    @property
    def _batching_window(self) -> float:
        window = self.source.maximum_batching_window_seconds
        if self.batching_window_seconds is None:
            return window
        return min(self.batching_window_seconds, window)

    def run_until(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_once(stop)
            except Exception:
                logger.exception("poller of %s failed; retrying", self.source.event_id)
                stop.wait(1.0)

    def poll_once(self, stop: threading.Event | None = None) -> BatchOutcome | None:
        """Receive one batch (possibly empty) and process it."""
        messages = self._receive_batch(stop)
        if not messages:
            return None
        return self.process(messages)

    def process(self, messages: list[dict[str, Any]]) -> BatchOutcome:
        if self.fidelity is not None:
            messages = [self.fidelity.apply(message) for message in messages]
        records = [
            lambda_sqs_record(message, queue_arn=self.source.queue_arn, region=self.region)
            for message in messages
        ]
        result = self.invoke({"Records": records})
        ids = [message["MessageId"] for message in messages]
        failed = failed_message_ids(result, ids, self.source.report_batch_item_failures)
        to_delete = [message for message in messages if message["MessageId"] not in failed]
        self._delete(to_delete)
        return BatchOutcome(
            deleted=tuple(message["MessageId"] for message in to_delete),
            retried=tuple(message_id for message_id in ids if message_id in failed),
            result=result,
        )

    def _receive_batch(self, stop: threading.Event | None) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        deadline: float | None = None
        while len(batch) < self.source.batch_size:
            if stop is not None and stop.is_set():
                break
            wait = self.poll_wait_seconds
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait = min(wait, max(0, int(remaining)))
            received = self.sqs_client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(
                    _MAX_MESSAGES_PER_RECEIVE, self.source.batch_size - len(batch)
                ),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            batch.extend(received)
            if batch and deadline is None:
                deadline = time.monotonic() + self._batching_window
            if not received and (not batch or self._batching_window <= 0):
                break
            if self._batching_window <= 0 and len(received) < _MAX_MESSAGES_PER_RECEIVE:
                break
        return batch

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _DELETE_BATCH):
            chunk = messages[start : start + _DELETE_BATCH]
            answer = self.sqs_client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(chunk)
                ],
            )
            for failure in answer.get("Failed", []):
                logger.warning("could not delete a message: %s", failure.get("Message"))


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": base64.b64encode(binary).decode() if binary is not None else None,
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [
            base64.b64encode(item).decode() for item in value.get("BinaryListValues") or []
        ],
        "dataType": value.get("DataType", "String"),
    }
