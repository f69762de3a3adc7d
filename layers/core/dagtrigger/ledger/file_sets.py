"""File sets in the history table: one item per set, one per member, changed by conditional
writes only, so that a set starts exactly one run whatever the order, redelivery or concurrency
of its objects.

* A member joins with one transaction: its own record (put if absent: a redelivery of the same
  object fails here and is counted instead) and the set's counters (the set is created by its
  first member; the write holds only while the set is OPEN and below its limit). A set that is
  no longer open refuses the whole transaction: the object is late. A marker's folder listing
  joins the objects not yet recorded up to 99 to a transaction (with one update of the set).
* Completion is one conditional write, OPEN -> SET_COMPLETE with its reason: whoever makes it
  starts the set's run. A set keeps ``pending_event = file_set`` (the sparse ``by_pending_event``
  index) from its creation until its run is recorded, so the reconciler's pass reads every open
  set there, completes those whose quiet time or longest wait has passed, and starts the run of
  a completed set whose completer died. Its cost: one read of that index partition per pass,
  whatever the number of objects; no item per set is polled and nothing scans the table.
* Members carry ``set_id`` (the sparse ``by_set`` index): the set's object list.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from dagtrigger.clock import utc_now
from dagtrigger.errors import LedgerContentionError
from dagtrigger.ledger.encoding import (
    cap_text,
    encode_source_ref,
    from_low_level,
    to_day,
    to_epoch_seconds,
    to_record,
    to_timestamp,
)
from dagtrigger.ledger.records import PendingEvent, SourceType, TriggerStatus
from dagtrigger.ledger.schema import (
    INDEX_BY_PENDING_EVENT,
    INDEX_BY_SET,
    PARTITION_KEY,
    SORT_ATTRIBUTE,
    TTL_ATTRIBUTE,
)

S = TriggerStatus
#: transactions tried before concluding that other writers keep winning (a busy set's item is
#: written by every member; DynamoDB refuses concurrent transactions on one item)
MAX_TRANSACTION_ATTEMPTS: Final = 12
#: listed members joined per transaction: DynamoDB takes 100 writes in one, one is the set's
LISTED_MEMBERS_PER_TRANSACTION: Final = 99
#: keys per BatchGetItem (DynamoDB's limit)
KEYS_PER_BATCH_GET: Final = 100


class CompletionReason(StrEnum):
    MARKER = "marker"
    COUNT = "count"
    QUIET = "quiet_seconds"
    MAX_WAIT = "max_wait_seconds"
    MAX_OBJECTS = "max_objects"


class JoinOutcome(StrEnum):
    JOINED = "joined"
    #: the object's record exists: a redelivery, counted on it
    DUPLICATE = "duplicate"
    #: the set is complete (or full): the object is late for it
    SET_CLOSED = "set_closed"


@dataclass(frozen=True)
class FileSetRef:
    """A set, as its members and its run name it."""

    set_id: str
    route: str
    group: str
    environment: str
    dag_id: str
    #: the most members the set takes (its count, else its max_objects)
    limit: int
    #: 0 for a group's first set; a late object with ``late: new_set`` opens the next one
    generation: int = 0


@dataclass(frozen=True)
class SetMember:
    """One object joining a set."""

    trigger_id: str
    source_key: str
    source_identity: str
    source_ref: dict[str, Any]
    size: int
    event_time: datetime | None = None


@dataclass(frozen=True)
class Joined:
    outcome: JoinOutcome
    #: the set as the write left it (JOINED), or as it stood (SET_CLOSED); the member's record
    #: for DUPLICATE
    record: dict[str, Any]


class FileSetLedger:
    """Sets and their members in the history table (a boto3 ``Table`` resource)."""

    def __init__(
        self,
        table: Any,
        *,
        history_ttl_days: int = 90,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._table = table
        self._ttl = timedelta(days=history_ttl_days)
        self._clock = clock
        self._sleep = sleep
        self._draw = draw

    # ---------------------------------------------------------------- joining

    def join(self, file_set: FileSetRef, member: SetMember) -> Joined:
        """Add ``member`` to ``file_set`` (creating the set with its first member)."""
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            now = self._clock()
            try:
                self._transact_join(file_set, [member], now, delivered=True)
            except ClientError as exc:
                reasons = _cancellation_reasons(exc, 2)
                if reasons is None:
                    raise
                member_reason, set_reason = reasons
                if member_reason.code == "ConditionalCheckFailed":
                    return Joined(JoinOutcome.DUPLICATE, self._count_delivery(member, now))
                if set_reason.code == "ConditionalCheckFailed":
                    return Joined(JoinOutcome.SET_CLOSED, to_record(set_reason.item, PARTITION_KEY))
                # TransactionConflict: another member's transaction holds the set's item
                self._back_off(attempt)
                continue
            record = self.get(file_set.set_id)
            if record is None:  # written a moment ago; only its TTL, years away, removes it
                raise RuntimeError(f"set {file_set.set_id} vanished after its member joined")
            return Joined(JoinOutcome.JOINED, record)
        raise LedgerContentionError(file_set.set_id, MAX_TRANSACTION_ATTEMPTS)

    def join_listed(self, file_set: FileSetRef, members: Sequence[SetMember]) -> int:
        """Add the listed ``members`` (a marker's folder: up to 10,000 objects in one
        invocation) that are not recorded yet, up to 99 per transaction; how many joined.

        Objects already recorded are left as they are: a listing is not a delivery. Found by
        BatchGetItem first, so a marker after its parts writes nothing for them; one recorded
        meanwhile fails its transaction, which is tried again without it. A set that closes,
        or has no room left for a whole chunk, takes the chunk's objects one by one, as their
        own events would."""
        unique = list({member.trigger_id: member for member in members}.values())
        recorded = self._recorded({member.trigger_id for member in unique})
        waiting = [member for member in unique if member.trigger_id not in recorded]
        per_transaction = max(1, min(LISTED_MEMBERS_PER_TRANSACTION, file_set.limit))
        return sum(
            self._join_chunk(file_set, waiting[start : start + per_transaction])
            for start in range(0, len(waiting), per_transaction)
        )

    def _join_chunk(self, file_set: FileSetRef, chunk: list[SetMember]) -> int:
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            if not chunk:
                return 0
            try:
                self._transact_join(file_set, chunk, self._clock(), delivered=False)
            except ClientError as exc:
                reasons = _cancellation_reasons(exc, len(chunk) + 1)
                if reasons is None:
                    raise
                *member_reasons, set_reason = reasons
                recorded = {
                    member.trigger_id
                    for member, reason in zip(chunk, member_reasons, strict=True)
                    if reason.code == "ConditionalCheckFailed"
                }
                if recorded:  # their own events joined them meanwhile
                    chunk = [member for member in chunk if member.trigger_id not in recorded]
                elif set_reason.code == "ConditionalCheckFailed":
                    joined = (self.join(file_set, member).outcome for member in chunk)
                    return sum(1 for outcome in joined if outcome is JoinOutcome.JOINED)
                else:
                    self._back_off(attempt)
                continue
            return len(chunk)
        raise LedgerContentionError(file_set.set_id, MAX_TRANSACTION_ATTEMPTS)

    def _transact_join(
        self, file_set: FileSetRef, members: Sequence[SetMember], now: datetime, *, delivered: bool
    ) -> None:
        """``delivered``: the members' own events (False: a listing, so their records count no
        delivery until their events come)."""
        # The table resource's client takes and gives Python values, as the table does.
        self._table.meta.client.transact_write_items(
            TransactItems=[
                *(self._member_put(file_set, member, now, delivered) for member in members),
                self._set_update(file_set, members, now),
            ]
        )

    def _recorded(self, trigger_ids: set[str]) -> set[str]:
        """Which of ``trigger_ids`` have a record (eventually consistent: a transaction's
        condition has the last word)."""
        found: set[str] = set()
        ordered = sorted(trigger_ids)
        for start in range(0, len(ordered), KEYS_PER_BATCH_GET):
            request: dict[str, Any] = {
                self._table.name: {
                    "Keys": [
                        {PARTITION_KEY: key} for key in ordered[start : start + KEYS_PER_BATCH_GET]
                    ],
                    "ProjectionExpression": "#pk",
                    "ExpressionAttributeNames": {"#pk": PARTITION_KEY},
                }
            }
            for attempt in range(MAX_TRANSACTION_ATTEMPTS):
                response = self._table.meta.client.batch_get_item(RequestItems=request)
                items = response.get("Responses", {}).get(self._table.name, ())
                found.update(str(item[PARTITION_KEY]) for item in items)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._back_off(attempt)
            # Keys still unprocessed count as not recorded: their transaction decides.
        return found

    def _back_off(self, attempt: int) -> None:
        self._sleep(self._draw() * min(1.0, 0.02 * 2**attempt))  # full jitter

    def record_outside_set(
        self,
        member: SetMember,
        *,
        file_set: FileSetRef,
        status: TriggerStatus,
        fields: dict[str, str],
    ) -> tuple[bool, dict[str, Any]]:
        """Record an object that is not a member of ``file_set`` (LATE for it, or its marker):
        (True, record) the first time, (False, record) for a redelivery (counted)."""
        now = self._clock()
        item = self._member_item(file_set, member, now, status=status)
        del item["set_id"]  # not in the set's object list
        item.update(
            {
                name: cap_text(value) if isinstance(value, str) else value
                for name, value in fields.items()
            }
        )
        try:
            self._table.put_item(Item=item, ConditionExpression=Attr(PARTITION_KEY).not_exists())
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return False, self._count_delivery(member, now)
        return True, to_record(item, PARTITION_KEY)

    # ------------------------------------------------------------- completing

    def complete(
        self, set_id: str, reason: CompletionReason, *, at_least: int | None = None
    ) -> dict[str, Any] | None:
        """OPEN -> SET_COMPLETE for ``reason`` (with ``at_least``: only if the set holds that
        many members). The completed set for the one caller whose write made it; None for
        every other (the set was completed already, or is not full)."""
        now = self._clock()
        stamp = to_timestamp(now)
        condition = Attr("status").eq(S.SET_OPEN)
        if at_least is not None:
            condition = condition & Attr("member_count").gte(at_least)
        try:
            response = self._table.update_item(
                Key={PARTITION_KEY: set_id},
                UpdateExpression=(
                    "SET #status = :complete, completion_reason = :reason, completed_at = :now, "
                    "updated_at = :now, transitions = list_append(transitions, :moved) "
                    "ADD revision :one"
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":complete": str(S.SET_COMPLETE),
                    ":reason": str(reason),
                    ":now": stamp,
                    ":moved": [{"status": str(S.SET_COMPLETE), "at": stamp, "reason": str(reason)}],
                    ":one": 1,
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return to_record(response["Attributes"], PARTITION_KEY)

    def record_run(self, set_id: str, *, run_trigger_id: str, run_status: str) -> None:
        """The completed set's run is recorded (``run_trigger_id``): it leaves the sweep."""
        self._table.update_item(
            Key={PARTITION_KEY: set_id},
            UpdateExpression=(
                "SET run_trigger_id = :run, run_status = :status, updated_at = :now "
                "REMOVE pending_event"
            ),
            ConditionExpression=Attr("status").eq(S.SET_COMPLETE),
            ExpressionAttributeValues={
                ":run": run_trigger_id,
                ":status": run_status,
                ":now": to_timestamp(self._clock()),
            },
        )

    # ---------------------------------------------------------------- reading

    def get(self, set_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={PARTITION_KEY: set_id}, ConsistentRead=True).get("Item")
        if item is None or item.get("kind") != "file_set":
            return None
        return to_record(item, PARTITION_KEY)

    def sets_in_progress(self) -> Iterator[dict[str, Any]]:
        """Every set that is open, or complete without a recorded run, oldest first."""
        arguments: dict[str, Any] = {
            "IndexName": INDEX_BY_PENDING_EVENT,
            "KeyConditionExpression": Key("pending_event").eq(str(PendingEvent.FILE_SET)),
            "ScanIndexForward": True,
        }
        yield from self._pages(arguments)

    def members(self, set_id: str) -> list[dict[str, Any]]:
        """The set's members, oldest first (an index read: a member that joined a moment ago
        may be missing; compare with the set's ``member_count``)."""
        arguments: dict[str, Any] = {
            "IndexName": INDEX_BY_SET,
            "KeyConditionExpression": Key("set_id").eq(set_id),
            "ScanIndexForward": True,
        }
        return list(self._pages(arguments))

    # -------------------------------------------------------------- internals

    def _pages(self, arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            response = self._table.query(**arguments)
            for item in response.get("Items", ()):
                yield to_record(item, PARTITION_KEY)
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            arguments = {**arguments, "ExclusiveStartKey": last_key}

    def _member_item(
        self,
        file_set: FileSetRef,
        member: SetMember,
        now: datetime,
        *,
        status: TriggerStatus,
        deliveries: int = 1,
    ) -> dict[str, Any]:
        stamp = to_timestamp(now)
        item: dict[str, Any] = {
            PARTITION_KEY: member.trigger_id,
            "trigger_id": member.trigger_id,
            "status": str(status),
            "source_type": str(SourceType.S3),
            "source_key": member.source_key,
            "source_identity": cap_text(member.source_identity),
            "source_ref": encode_source_ref(member.source_ref),
            "route": file_set.route,
            "environment": file_set.environment,
            "dag_id": file_set.dag_id,
            "set_id": file_set.set_id,
            "set_group": cap_text(file_set.group, 512),
            SORT_ATTRIBUTE: stamp,
            "updated_at": stamp,
            "created_day": to_day(now),
            TTL_ATTRIBUTE: to_epoch_seconds(now + self._ttl),
            "deliveries": deliveries,
            "attempts": 0,
            "revision": 1,
            "transitions": [{"status": str(status), "at": stamp}],
        }
        if member.event_time is not None:
            item["event_time"] = to_timestamp(member.event_time, "event_time")
        return item

    def _member_put(
        self, file_set: FileSetRef, member: SetMember, now: datetime, delivered: bool
    ) -> dict[str, Any]:
        item = self._member_item(
            file_set, member, now, status=S.IN_SET, deliveries=1 if delivered else 0
        )
        return {
            "Put": {
                "TableName": self._table.name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": PARTITION_KEY},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _set_update(
        self, file_set: FileSetRef, members: Sequence[SetMember], now: datetime
    ) -> dict[str, Any]:
        """Create the set with its first members, or count ``members`` more in it (while it is
        open and has room for all of them)."""
        stamp = to_timestamp(now)
        created = {
            "trigger_id": file_set.set_id,
            "kind": "file_set",
            "source_type": str(SourceType.S3),
            "source_key": cap_text(f"set:{file_set.route}:{file_set.group}", 1024),
            "route": file_set.route,
            "environment": file_set.environment,
            "dag_id": file_set.dag_id,
            "set_group": cap_text(file_set.group, 512),
            "set_limit": file_set.limit,
            "generation": file_set.generation,
            SORT_ATTRIBUTE: stamp,
            "created_day": to_day(now),
            "first_member_at": stamp,
            "pending_event": str(PendingEvent.FILE_SET),
            TTL_ATTRIBUTE: to_epoch_seconds(now + self._ttl),
            "transitions": [{"status": str(S.SET_OPEN), "at": stamp}],
        }
        names = {"#status": "status", "#pk": PARTITION_KEY}
        values: dict[str, Any] = {":open": str(S.SET_OPEN), ":now": stamp, ":one": 1}
        values[":joined"] = len(members)
        values[":size"] = sum(member.size for member in members)
        values[":room"] = file_set.limit - len(members)
        assignments = ["#status = if_not_exists(#status, :open)", "last_member_at = :now"]
        assignments.append("updated_at = :now")
        for index, (name, value) in enumerate(created.items()):
            names[f"#c{index}"] = name
            values[f":c{index}"] = value
            assignments.append(f"#c{index} = if_not_exists(#c{index}, :c{index})")
        return {
            "Update": {
                "TableName": self._table.name,
                "Key": {PARTITION_KEY: file_set.set_id},
                "UpdateExpression": (
                    f"SET {', '.join(assignments)} "
                    "ADD member_count :joined, total_size :size, revision :one"
                ),
                "ConditionExpression": (
                    "attribute_not_exists(#pk) OR (#status = :open AND member_count <= :room)"
                ),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _count_delivery(self, member: SetMember, now: datetime) -> dict[str, Any]:
        response = self._table.update_item(
            Key={PARTITION_KEY: member.trigger_id},
            UpdateExpression="ADD deliveries :one SET last_delivery_at = :now",
            ExpressionAttributeValues={":one": 1, ":now": to_timestamp(now)},
            ReturnValues="ALL_NEW",
        )
        return to_record(response["Attributes"], PARTITION_KEY)


@dataclass(frozen=True)
class _Reason:
    code: str | None
    item: dict[str, Any]


def _cancellation_reasons(exc: ClientError, items: int) -> list[_Reason] | None:
    """The reasons of a cancelled transaction of ``items`` writes, in their order, else None."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons") or []
    if len(reasons) != items:
        # Some clients leave the reasons out; the message lists them in order.
        message = exc.response.get("Error", {}).get("Message", "")
        codes = message.partition("[")[2].rstrip("]").split(", ")
        reasons = [{"Code": code.strip()} for code in codes]
        if len(reasons) != items:
            return None
    return [
        _Reason(reason.get("Code"), from_low_level(reason.get("Item") or {})) for reason in reasons
    ]


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
