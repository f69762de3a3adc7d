"""When a failed SQS message comes back: a backoff that grows per receive, not the full timeout.

A message the function reports as failed stays invisible for the queue's visibility timeout
(900 s: six times the function's timeout, as Lambda asks), so one trigger that failed in a burst
waited 15 minutes for its retry. Instead, each failed message's visibility is set to
``base * 2 ** (receives - 1)`` seconds, capped, with jitter (half to all of it), so retries of a
burst spread out instead of returning together. The queue's redrive policy still moves a
message to the dead-letter queue after its ``maxReceiveCount`` receives.

If the change itself fails, the message keeps the full visibility timeout: later, never lost.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dagtrigger.observability import logger

#: entries one ChangeMessageVisibilityBatch call takes
_SQS_BATCH_LIMIT = 10
#: the longest visibility SQS allows (12 hours)
_SQS_MAX_VISIBILITY_SECONDS = 43_200


@dataclass(frozen=True)
class Backoff:
    base_seconds: int
    max_seconds: int

    def delay_seconds(self, receive_count: int, *, draw: Callable[[], float]) -> int:
        """Seconds before receive number ``receive_count + 1``: between half and all of
        ``base * 2 ** (receive_count - 1)``, at most ``max_seconds``."""
        exponent = max(0, receive_count - 1)
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(exponent, 30))
        ceiling = min(ceiling, _SQS_MAX_VISIBILITY_SECONDS)
        return max(1, round(ceiling * (0.5 + draw() / 2)))


class Redelivery:
    """Sets the visibility of failed messages; one per instance (it remembers queue URLs)."""

    def __init__(
        self,
        sqs_client: Callable[[], Any],
        backoff: Backoff,
        *,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._sqs_client = sqs_client
        self._backoff = backoff
        self._draw = draw
        self._queue_urls: dict[str, str] = {}

    def delay_failed(
        self, records: Iterable[Mapping[str, Any]], failed_message_ids: Iterable[str]
    ) -> dict[str, int]:
        """Set each failed message's visibility by its receive count: message id -> delay."""
        failed = set(failed_message_ids)
        by_queue: dict[str, list[dict[str, Any]]] = {}
        delays: dict[str, int] = {}
        for record in records:
            message_id = record.get("messageId")
            if message_id not in failed:
                continue
            receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
            delay = self._backoff.delay_seconds(receives, draw=self._draw)
            delays[message_id] = delay
            by_queue.setdefault(record["eventSourceARN"], []).append(
                {
                    "Id": str(len(delays)),
                    "ReceiptHandle": record["receiptHandle"],
                    "VisibilityTimeout": delay,
                }
            )
        for queue_arn, entries in by_queue.items():
            self._change_visibility(queue_arn, entries)
        return delays

    def _change_visibility(self, queue_arn: str, entries: list[dict[str, Any]]) -> None:
        try:
            client = self._sqs_client()
            queue_url = self._queue_url(client, queue_arn)
            for start in range(0, len(entries), _SQS_BATCH_LIMIT):
                answer = client.change_message_visibility_batch(
                    QueueUrl=queue_url, Entries=entries[start : start + _SQS_BATCH_LIMIT]
                )
                for failure in answer.get("Failed", ()):
                    logger.warning(
                        "a failed message keeps the queue's visibility timeout",
                        extra={"queue": queue_arn, "reason": failure.get("Message")},
                    )
        except (ClientError, BotoCoreError) as error:
            logger.warning(
                "could not shorten the retry wait of failed messages; they keep the queue's "
                "visibility timeout",
                extra={"queue": queue_arn, "reason": str(error)},
            )

    def _queue_url(self, client: Any, queue_arn: str) -> str:
        """The queue's URL from its ARN (``arn:aws:sqs:REGION:ACCOUNT:NAME``), asked once."""
        if queue_arn not in self._queue_urls:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            answer = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            self._queue_urls[queue_arn] = answer["QueueUrl"]
        return self._queue_urls[queue_arn]
