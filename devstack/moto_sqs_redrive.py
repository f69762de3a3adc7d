"""SQS's dead-letter queue redrive (message move tasks) for moto, which lacks it.

moto 5.2.5 has no ``StartMessageMoveTask``, ``ListMessageMoveTasks`` or
``CancelMessageMoveTask``: its server answers each with a bare HTTP 500 ("The
start_message_move_task action has not been implemented"). ``install()`` adds them to moto's
SQS, as the SQS API reference documents them
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
and the dead-letter queue redrive guide):

* the source must be a dead-letter queue of another SQS queue: some queue's ``RedrivePolicy``
  names it, and the source's ``RedriveAllowPolicy`` lets that queue do so (``allowAll``, the
  default; ``byQueue`` with its ARN; never ``denyAll``). Otherwise ``InvalidParameterValue``
  "Source queue must be configured as a Dead Letter Queue.";
* a missing source or destination is ``ResourceNotFoundException``; one active task per source;
* without ``DestinationArn`` the messages go back to the queue they came from (here: the one
  queue whose redrive policy names the source; with several, moto cannot tell and refuses);
* moved messages are new messages (new message id, enqueue time and receive count, same body
  and attributes), oldest first; messages in flight stay;
* ``ListMessageMoveTasks`` lists a source's most recent tasks, newest first (``MaxResults``
  1 by default, at most 10), with a ``TaskHandle`` only while a task is ``RUNNING``.

One difference, on purpose: a task moves its messages before ``StartMessageMoveTask`` answers
and is ``COMPLETED`` from then on (SQS moves them in the background, at
``MaxNumberOfMessagesPerSecond``); a caller that follows the task the way SQS asks (list it
until it is no longer ``RUNNING``) sees the same end.

``python -m devstack.moto_sqs_redrive`` runs ``moto_server`` with the additions installed (what
``devstack.moto_server`` starts); in-process tests call ``install()`` before ``mock_aws``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from moto.core.responses import ActionResult, EmptyResult
from moto.sqs.exceptions import SQSException
from moto.sqs.models import Queue, SQSBackend
from moto.sqs.responses import SQSResponse

NOT_A_DEAD_LETTER_QUEUE: Final = "Source queue must be configured as a Dead Letter Queue."
MAX_LISTED_TASKS: Final = 10
_TASKS_ATTRIBUTE: Final = "_devstack_message_move_tasks"
_lock = threading.Lock()


class _InvalidParameterValue(SQSException):
    code = "InvalidParameterValue"


class _ResourceNotFound(SQSException):
    code = "ResourceNotFoundException"


@dataclass
class MessageMoveTask:
    handle: str
    source_arn: str
    destination_arn: str | None
    max_per_second: int | None
    started_ms: int
    to_move: int
    status: str = "RUNNING"
    moved: int = 0

    def listed(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.status == "RUNNING":
            result["TaskHandle"] = self.handle
        if self.destination_arn is not None:
            result["DestinationArn"] = self.destination_arn
        if self.max_per_second is not None:
            result["MaxNumberOfMessagesPerSecond"] = self.max_per_second
        return result


def install() -> None:
    """Add the three operations to moto's SQS (idempotent)."""
    SQSResponse.start_message_move_task = _start_message_move_task  # type: ignore[attr-defined]
    SQSResponse.list_message_move_tasks = _list_message_move_tasks  # type: ignore[attr-defined]
    SQSResponse.cancel_message_move_task = _cancel_message_move_task  # type: ignore[attr-defined]


def _start_message_move_task(self: SQSResponse) -> ActionResult:
    backend = self.sqs_backend
    source_arn = str(self._get_param("SourceArn") or "")
    destination_arn = self._get_param("DestinationArn") or None
    max_per_second = self._get_param("MaxNumberOfMessagesPerSecond")
    if max_per_second is not None and not 1 <= int(max_per_second) <= 500:
        raise _InvalidParameterValue(
            f"Value {max_per_second} for parameter MaxNumberOfMessagesPerSecond is invalid. "
            "Reason: Must be between 1 and 500, if provided."
        )
    source = _queue_by_arn(backend, source_arn, "SourceArn")
    origins = _dead_letter_sources(backend, source)
    if not origins:
        raise _InvalidParameterValue(NOT_A_DEAD_LETTER_QUEUE)
    if destination_arn is not None:
        destination = _queue_by_arn(backend, destination_arn, "DestinationArn")
        if destination is source:
            raise _InvalidParameterValue(
                "Source queue arn and destination queue arn cannot be the same."
            )
    elif len(origins) == 1:
        destination = origins[0]
    else:
        raise _InvalidParameterValue(
            "the local stack cannot tell which of several source queues each message came "
            "from: pass DestinationArn"
        )
    with _lock:
        tasks = _tasks_of(backend)
        if any(t.source_arn == source_arn and t.status == "RUNNING" for t in tasks):
            raise _InvalidParameterValue(
                "There is already a task running. Only one active task is allowed for a source "
                "queue arn at a given time."
            )
        waiting = sorted(source.messages, key=lambda message: message.sent_timestamp or 0)
        task = MessageMoveTask(
            handle=_task_handle(source_arn),
            source_arn=source_arn,
            destination_arn=destination_arn,
            max_per_second=None if max_per_second is None else int(max_per_second),
            started_ms=int(time.time() * 1000),
            to_move=len(waiting),
        )
        tasks.append(task)
        for message in waiting:
            backend.send_message(
                destination.name,
                message.body,
                message_attributes=message.message_attributes,
                group_id=message.group_id,
                deduplication_id=message.id if destination.fifo_queue else None,
            )
            source._messages.remove(message)  # moto keeps a queue's messages there
            task.moved += 1
        task.status = "COMPLETED"
    return ActionResult({"TaskHandle": task.handle})


def _list_message_move_tasks(self: SQSResponse) -> ActionResult:
    backend = self.sqs_backend
    source_arn = str(self._get_param("SourceArn") or "")
    _queue_by_arn(backend, source_arn, "SourceArn")
    limit = int(self._get_param("MaxResults") or 1)
    if not 1 <= limit <= MAX_LISTED_TASKS:
        raise _InvalidParameterValue(
            f"Value {limit} for parameter MaxResults is invalid. Reason: You must enter a number "
            f"that's between 1 and {MAX_LISTED_TASKS}."
        )
    with _lock:
        tasks = [task for task in _tasks_of(backend) if task.source_arn == source_arn]
        newest_first = [task.listed() for task in reversed(tasks)][:limit]
    return ActionResult({"Results": newest_first})


def _cancel_message_move_task(self: SQSResponse) -> ActionResult | EmptyResult:
    handle = str(self._get_param("TaskHandle") or "")
    with _lock:
        task = next((t for t in _tasks_of(self.sqs_backend) if t.handle == handle), None)
        if task is None or task.status != "RUNNING":
            raise _ResourceNotFound("Task does not exist.")
        task.status = "CANCELLED"
        return ActionResult({"ApproximateNumberOfMessagesMoved": task.moved})


def _tasks_of(backend: SQSBackend) -> list[MessageMoveTask]:
    """The backend's tasks, oldest first; a moto reset makes new backends, and so no tasks."""
    tasks: list[MessageMoveTask] = backend.__dict__.setdefault(_TASKS_ATTRIBUTE, [])
    return tasks


def _queue_by_arn(backend: SQSBackend, arn: str, parameter: str) -> Queue:
    for queue in backend.queues.values():
        if queue.queue_arn == arn:
            return queue
    raise _ResourceNotFound(
        f"The resource that you specified for the {parameter} parameter doesn't exist."
    )


def _dead_letter_sources(backend: SQSBackend, dead_letter: Queue) -> list[Queue]:
    """The queues whose redrive policy names ``dead_letter`` and that its redrive allow policy
    lets do so."""
    allow = _redrive_allow_policy(dead_letter)
    permission = allow.get("redrivePermission", "allowAll")
    allowed_arns = set(allow.get("sourceQueueArns") or ())
    sources = []
    for queue in backend.queues.values():
        policy = queue.redrive_policy or {}
        if policy.get("deadLetterTargetArn") != dead_letter.queue_arn:
            continue
        if permission == "allowAll" or (
            permission == "byQueue" and queue.queue_arn in allowed_arns
        ):
            sources.append(queue)
    return sources


def _redrive_allow_policy(queue: Queue) -> dict[str, Any]:
    """moto keeps the attribute as it was set: JSON text (or a dict, in process)."""
    policy = getattr(queue, "redrive_allow_policy", None)
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return {}
    return policy if isinstance(policy, dict) else {}


def _task_handle(source_arn: str) -> str:
    # SQS's handles are opaque base64 text; any unique string serves a caller
    return f"{uuid.uuid4()}:{source_arn}"


def main(argv: list[str] | None = None) -> None:
    """``moto_server`` with the redrive operations installed."""
    from moto.server import main as moto_server_main

    install()
    moto_server_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
