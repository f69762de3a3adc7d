"""Kill points: where a function's process dies on purpose, recognised at its AWS calls.

A kill point is found at the wire, not inside the product's code, so the code under test runs
unchanged and the point means the same thing whatever the code is called:

* ``after_claim``: DynamoDB accepted the ledger's claim (a ``PutItem`` of a record whose status
  is ``RECEIVED``); the process dies before it does anything else.
* ``after_run_accepted``: MWAA answered 200 to ``InvokeRestApi`` ``POST /dags/{id}/dagRuns``
  (Airflow created the run); the process dies before it reads the answer.
* ``before_final_write``: the process is about to send the ledger's ``UpdateItem`` that sets
  status ``TRIGGERED``; it dies before the request leaves.

`KillSwitch` installs on a boto3 session's event hooks (``before-call`` and ``after-call``, the
public botocore events) and is armed with at most one point per invocation. Dying is
``os._exit``: no ``finally`` block, no flush, no goodbye, as when Lambda's sandbox is torn down.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

#: the exit status of a process that died at its kill point
KILLED_AT_POINT_EXIT_STATUS = 86
_DAG_RUNS_PATH = re.compile(r"^/?dags/[^/]+/dagRuns/?$")
_ARMED_CALL = "devstack_kill_point"


class KillPoint(StrEnum):
    AFTER_CLAIM = "after_claim"
    AFTER_RUN_ACCEPTED = "after_run_accepted"
    BEFORE_FINAL_WRITE = "before_final_write"


@dataclass(frozen=True)
class AwsCall:
    """One API call as it goes on the wire: service id (hyphenated), operation, JSON body."""

    service: str
    operation: str
    body: Mapping[str, Any]


def is_claim(call: AwsCall) -> bool:
    item = call.body.get("Item")
    return (
        call.service == "dynamodb"
        and call.operation == "PutItem"
        and isinstance(item, Mapping)
        and item.get("status") == {"S": "RECEIVED"}
    )


def is_run_trigger(call: AwsCall) -> bool:
    path = call.body.get("Path")
    return (
        call.service == "mwaa"
        and call.operation == "InvokeRestApi"
        and call.body.get("Method") == "POST"
        and isinstance(path, str)
        and bool(_DAG_RUNS_PATH.match(path))
    )


def is_triggered_write(call: AwsCall) -> bool:
    values = call.body.get("ExpressionAttributeValues")
    return (
        call.service == "dynamodb"
        and call.operation == "UpdateItem"
        and isinstance(values, Mapping)
        and {"S": "TRIGGERED"} in values.values()
    )


def dies_before(point: KillPoint | None, call: AwsCall) -> bool:
    """Whether a process armed with `point` dies before sending `call`."""
    return point is KillPoint.BEFORE_FINAL_WRITE and is_triggered_write(call)


def dies_after(point: KillPoint | None, call: AwsCall, http_status: int) -> bool:
    """Whether a process armed with `point` dies once `call` was answered `http_status`."""
    if not 200 <= http_status < 300:
        return False
    if point is KillPoint.AFTER_CLAIM:
        return is_claim(call)
    if point is KillPoint.AFTER_RUN_ACCEPTED:
        return is_run_trigger(call)
    return False


def _die(status: int) -> NoReturn:
    os._exit(status)


class KillSwitch:
    """Kills this process at the armed kill point of the current invocation."""

    def __init__(self, die: Callable[[int], NoReturn] = _die) -> None:
        self._die = die
        self.armed: KillPoint | None = None

    def install(self, events: Any) -> None:
        """Register on a botocore event emitter (``boto3.Session().events``) before any client
        of that session exists: clients copy the session's hooks when they are made."""
        events.register("before-call", self._before_call)
        events.register("after-call", self._after_call)

    def arm(self, point: KillPoint | str | None) -> None:
        self.armed = KillPoint(point) if point else None

    def _before_call(
        self, *, model: Any, params: Mapping[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        if self.armed is None:
            return
        call = AwsCall(
            service=model.service_model.service_id.hyphenize(),
            operation=model.name,
            body=_json_body(params.get("body")),
        )
        if dies_before(self.armed, call):
            self._die(KILLED_AT_POINT_EXIT_STATUS)
        context[_ARMED_CALL] = call

    def _after_call(self, *, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        call = context.get(_ARMED_CALL)
        if isinstance(call, AwsCall) and dies_after(self.armed, call, http_response.status_code):
            self._die(KILLED_AT_POINT_EXIT_STATUS)


def _json_body(body: Any) -> Mapping[str, Any]:
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        return {}  # not a JSON protocol (S3, SQS query): no kill point looks at it
    return parsed if isinstance(parsed, Mapping) else {}
