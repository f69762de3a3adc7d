"""The trigger history ledger: one DynamoDB item per trigger, changed by conditional writes only.

``claim`` is what makes "one run per event" hold: a conditional put decides which delivery
owns a trigger; every later delivery finds the record and is counted, unless the earlier
attempt gave up (TRIGGER_FAILED) or crashed (its lease ran out), in which case exactly one
redelivery takes it over. Items past ``expires_at`` count as absent, because DynamoDB's TTL
deletes them days late.

The write that ends a run (SUCCESS, FAILED, UNKNOWN) also puts the run's "finished" event in
an outbox on the same item (``pending_event``, the deliveries still due and a lease), so the
conditional status change that decides which reconciler pass ends the run also decides which
pass tells of it; ``pending_events`` finds what a crashed pass left undelivered.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypedDict, Unpack

from boto3.dynamodb.conditions import Attr, ConditionBase, Key
from botocore.exceptions import ClientError

from dagtrigger.clock import utc_now
from dagtrigger.errors import InvalidTransitionError, LedgerContentionError, TriggerNotFoundError
from dagtrigger.ledger.cursor import CursorPosition, decode_cursor, encode_cursor
from dagtrigger.ledger.encoding import (
    cap_text,
    encode_conf,
    encode_source_ref,
    from_low_level,
    to_day,
    to_epoch_seconds,
    to_record,
    to_timestamp,
)
from dagtrigger.ledger.records import (
    RUN_ENDINGS,
    Claim,
    ClaimOutcome,
    NewTrigger,
    Page,
    PendingEvent,
    TriggerStatus,
    dag_key,
)
from dagtrigger.ledger.schema import (
    INDEX_BY_DAG,
    INDEX_BY_DAY,
    INDEX_BY_PENDING_EVENT,
    INDEX_BY_SOURCE,
    INDEX_BY_STATUS,
    INDEX_PARTITION_KEYS,
    PARTITION_KEY,
    SORT_ATTRIBUTE,
    TTL_ATTRIBUTE,
)
from dagtrigger.ledger.updates import UpdateExpression
from dagtrigger.transports.base import FailedTasks, TriggerResult

if TYPE_CHECKING:
    from dagtrigger.transports.asset_events import AssetEvent

S = TriggerStatus

#: the state machine: each status and the statuses it may be reached from
ALLOWED_FROM: Final[dict[TriggerStatus, frozenset[TriggerStatus]]] = {
    S.TRIGGERED: frozenset({S.RECEIVED}),
    S.EVENT_CREATED: frozenset({S.RECEIVED}),
    S.REJECTED: frozenset({S.RECEIVED}),
    S.TRIGGER_FAILED: frozenset({S.RECEIVED}),
    S.RUNNING: frozenset({S.TRIGGERED}),
    S.SUCCESS: frozenset({S.TRIGGERED, S.RUNNING}),
    S.FAILED: frozenset({S.TRIGGERED, S.RUNNING}),
    S.UNKNOWN: frozenset({S.TRIGGERED, S.RUNNING}),
}
RUN_STATES: Final = frozenset({S.RUNNING, S.SUCCESS, S.FAILED})
#: statuses a replay reopens (``reopen_for_replay``): the trigger started no run it knows of
REPLAYABLE: Final = frozenset({S.TRIGGER_FAILED, S.REJECTED})
FINAL_RECORD_STATES: Final = frozenset({S.REJECTED, S.IGNORED})

MAX_TRANSITIONS: Final = 50
#: the runs an asset event's answer names, kept in its record (Airflow usually names none yet)
MAX_RECORDED_RUN_IDS: Final = 20
MAX_ERRORS: Final = 5
MAX_ERROR_CHARS: Final = 1000
#: conditional writes tried before concluding that other writers keep winning
MAX_CONDITIONAL_WRITES: Final = 5
MAX_PAGE_SIZE: Final = 1000
#: the outbox of a run's "finished" event: the kind of event, the deliveries still due (a string
#: set) and the lease of the pass delivering them
PENDING_EVENT: Final = "pending_event"
PENDING_DELIVERIES: Final = "pending_deliveries"
PENDING_EVENT_LEASE: Final = "pending_event_lease_until"

_CONDITION_FAILED = "ConditionalCheckFailedException"


class QueryOptions(TypedDict, total=False):
    """What every history query takes besides its partition (see ``TriggerLedger.query``)."""

    since: datetime | None
    until: datetime | None
    limit: int
    cursor: str | None
    newest_first: bool


@dataclass(frozen=True)
class _Change:
    """One conditional status change of an existing record."""

    to: TriggerStatus
    #: server-side precondition on the current record, and the same test in Python
    precondition: ConditionBase
    accepts: Callable[[dict[str, Any]], bool]
    allowed_from: frozenset[TriggerStatus]
    set_values: dict[str, Any] = field(default_factory=dict)
    add_values: dict[str, int] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    error_entry: dict[str, str] | None = None
    #: facts the new ``transitions`` entry carries beside the status and time
    transition_details: dict[str, str] = field(default_factory=dict)


class TriggerLedger:
    """Reads and writes trigger records in the history table (a boto3 ``Table`` resource)."""

    def __init__(
        self,
        table: Any,
        *,
        history_ttl_days: int = 90,
        ignored_ttl_days: int = 7,
        conf_max_bytes: int = 32768,
        lease_seconds: int = 60,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        for name, value in (
            ("history_ttl_days", history_ttl_days),
            ("ignored_ttl_days", ignored_ttl_days),
            ("conf_max_bytes", conf_max_bytes),
            ("lease_seconds", lease_seconds),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1 (got {value})")
        self._table = table
        self._history_ttl = timedelta(days=history_ttl_days)
        self._ignored_ttl = timedelta(days=ignored_ttl_days)
        self._conf_max_bytes = conf_max_bytes
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock

    # ----------------------------------------------------------------- claiming

    def claim(self, new: NewTrigger) -> Claim:
        """Record a delivery and say whether the caller owns the trigger (NEW, RETRY) or not."""
        now = self._clock()
        item = self._new_item(new, S.RECEIVED, now, ttl=self._history_ttl)
        item["lease_until"] = to_timestamp(now + self._lease)
        for _ in range(MAX_CONDITIONAL_WRITES):
            existing = self._put_if_absent(item, now)
            if existing is None:
                return Claim(ClaimOutcome.NEW, to_record(item, PARTITION_KEY))
            if self._is_retryable(existing, now):
                try:
                    return Claim(ClaimOutcome.RETRY, self._take_over(new.trigger_id, now))
                except InvalidTransitionError:
                    continue  # another delivery took it over first: look again
            record = self._count_delivery(new.trigger_id, now)
            if record is not None:
                return Claim(ClaimOutcome.DUPLICATE, record)
        raise LedgerContentionError(new.trigger_id, MAX_CONDITIONAL_WRITES)

    def record_final(
        self, new: NewTrigger, *, status: TriggerStatus, code: str, message: str
    ) -> Claim:
        """Record a trigger that ends where it starts: REJECTED or IGNORED (shorter TTL)."""
        if status not in FINAL_RECORD_STATES:
            raise ValueError(f"record_final takes REJECTED or IGNORED, not {status}")
        now = self._clock()
        ttl = self._ignored_ttl if status is S.IGNORED else self._history_ttl
        item = self._new_item(new, status, now, ttl=ttl)
        item["reject_code"] = cap_text(code, 100)
        item["reason"] = cap_text(message)
        for _ in range(MAX_CONDITIONAL_WRITES):
            if self._put_if_absent(item, now) is None:
                return Claim(ClaimOutcome.NEW, to_record(item, PARTITION_KEY))
            record = self._count_delivery(new.trigger_id, now)
            if record is not None:
                return Claim(ClaimOutcome.DUPLICATE, record)
        raise LedgerContentionError(new.trigger_id, MAX_CONDITIONAL_WRITES)

    def abandoned_claims(self, *, limit: int = 100, cursor: str | None = None) -> Page:
        """RECEIVED records whose lease ran out: their holder died between claim and record.

        Only records created a lease ago or earlier can have an expired lease, so the index is
        read up to then, oldest first; the page may hold fewer than ``limit`` items.
        """
        now = self._clock()
        page = self.query_by_status(
            S.RECEIVED, until=now - self._lease, limit=limit, cursor=cursor, newest_first=False
        )
        expired = [record for record in page.items if self._is_retryable(record, now)]
        return Page(items=expired, next_cursor=page.next_cursor)

    def take_over_abandoned(self, trigger_id: str) -> dict[str, Any]:
        """Own an abandoned claim with a fresh lease (``InvalidTransitionError`` if another
        delivery or pass took it first, or it was finished meanwhile)."""
        now = self._clock()
        return self._apply(trigger_id, self._takeover(now, count_delivery=False), now)

    def reopen_for_replay(
        self, record: dict[str, Any], *, replayed_by: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Own a TRIGGER_FAILED or REJECTED ``record`` again, to retry its run in place.

        The record becomes RECEIVED with a fresh lease, as a redelivery's takeover makes it; the
        new transition says who replayed it (and with which idempotency key) and ``replays``
        counts the replays. The write is conditional on the status ``record`` was read with, so
        a replay racing a redelivery or another replay has exactly one winner; the loser gets
        ``InvalidTransitionError`` holding the record as it now is. A rejection's code and
        reason move to ``errors``: they no longer describe the record.
        """
        status = TriggerStatus(record["status"])
        if status not in REPLAYABLE:
            raise ValueError(f"only {sorted(REPLAYABLE)} records are replayed, not {status}")
        now = self._clock()
        stamp = to_timestamp(now)
        details = {"replayed_by": cap_text(replayed_by, 500)}
        if idempotency_key is not None:
            details["idempotency_key"] = idempotency_key
        rejection = None
        if status is S.REJECTED:
            code, reason = record.get("reject_code") or "", record.get("reason") or ""
            rejection = {
                "at": str(record.get("updated_at") or stamp),
                "message": cap_text(f"REJECTED ({code}): {reason}", MAX_ERROR_CHARS),
            }
        change = _Change(
            to=S.RECEIVED,
            precondition=Attr("status").eq(str(status)),
            accepts=lambda current: current.get("status") == status,
            allowed_from=frozenset({status}),
            set_values={
                "lease_until": to_timestamp(now + self._lease),
                TTL_ATTRIBUTE: to_epoch_seconds(now + self._history_ttl),
                "replayed_by": details["replayed_by"],
                "last_replayed_at": stamp,
            },
            add_values={"replays": 1},
            remove=("reject_code", "reason") if rejection else (),
            error_entry=rejection,
            transition_details=details,
        )
        return self._apply(str(record["trigger_id"]), change, now)

    # ---------------------------------------------------------- status changes

    def mark_triggered(
        self, trigger_id: str, *, result: TriggerResult, attempts: int
    ) -> dict[str, Any]:
        now = self._clock()
        values: dict[str, Any] = {
            "dag_run_id": result.dag_run_id,
            "already_existed": result.already_existed,
            "triggered_at": to_timestamp(now),
        }
        optional = {
            "logical_date": result.logical_date,
            "airflow_state": result.state,
            "dag_paused": result.dag_paused,
        }
        values.update({name: value for name, value in optional.items() if value is not None})
        change = self._status_change(S.TRIGGERED, values, attempts=attempts)
        return self._apply(trigger_id, change, now)

    def mark_event_created(
        self, trigger_id: str, *, event: AssetEvent, attempts: int
    ) -> dict[str, Any]:
        """Record the asset event Airflow holds for an asset route's trigger (final)."""
        now = self._clock()
        values: dict[str, Any] = {
            "already_existed": event.already_existed,
            "triggered_at": to_timestamp(now),
        }
        optional = {
            "asset_event_id": event.event_id,
            "asset_id": event.asset_id,
            "asset_event_timestamp": event.timestamp and cap_text(event.timestamp, 64),
            "asset_event_run_ids": list(event.created_run_ids[:MAX_RECORDED_RUN_IDS]) or None,
        }
        values.update({name: value for name, value in optional.items() if value is not None})
        change = self._status_change(S.EVENT_CREATED, values, attempts=attempts)
        return self._apply(trigger_id, change, now)

    def mark_rejected(
        self, trigger_id: str, *, code: str, message: str, attempts: int
    ) -> dict[str, Any]:
        values = {"reject_code": cap_text(code, 100), "reason": cap_text(message)}
        change = self._status_change(S.REJECTED, values, attempts=attempts)
        return self._apply(trigger_id, change, self._clock())

    def mark_trigger_failed(
        self, trigger_id: str, *, message: str, attempts: int
    ) -> dict[str, Any]:
        now = self._clock()
        error = cap_text(message, MAX_ERROR_CHARS)
        change = self._status_change(
            S.TRIGGER_FAILED,
            {"last_error": error},
            attempts=attempts,
            error_entry={"at": to_timestamp(now), "message": error},
        )
        return self._apply(trigger_id, change, now)

    def update_run_state(
        self,
        trigger_id: str,
        *,
        status: TriggerStatus,
        airflow_state: str,
        start_date: str | None = None,
        end_date: str | None = None,
        failed_tasks: FailedTasks | None = None,
        deliveries: Collection[str] = (),
    ) -> dict[str, Any]:
        """Record what the reconciler saw of the DAG run: RUNNING, SUCCESS or FAILED.

        A run that started is no longer queued on a paused DAG, so ``dag_paused`` goes. Ending
        the run (SUCCESS, FAILED) puts its event's ``deliveries`` in the record's outbox in the
        same conditional write (see ``pending_events``).
        """
        if status not in RUN_STATES:
            raise ValueError(f"update_run_state takes RUNNING, SUCCESS or FAILED, not {status}")
        now = self._clock()
        values: dict[str, Any] = {"airflow_state": cap_text(airflow_state, 100)}
        dates = {"start_date": start_date, "end_date": end_date}
        values.update({name: cap_text(value, 64) for name, value in dates.items() if value})
        if failed_tasks is not None:
            values.update(_failed_task_values(failed_tasks))
        if status in RUN_ENDINGS:
            values.update(self._ending_values(now, deliveries))
        change = self._status_change(status, values, remove=("dag_paused",))
        return self._apply(trigger_id, change, now)

    def mark_unknown(
        self, trigger_id: str, *, reason: str, deliveries: Collection[str] = ()
    ) -> dict[str, Any]:
        """End a record whose run was not seen to finish within the reconciler's horizon (its
        event's ``deliveries`` go in the outbox in the same write)."""
        now = self._clock()
        values = {"reason": cap_text(reason), **self._ending_values(now, deliveries)}
        change = self._status_change(S.UNKNOWN, values)
        return self._apply(trigger_id, change, now)

    def set_dag_paused(self, trigger_id: str, *, paused: bool) -> bool:
        """Keep a queued (TRIGGERED) record's ``dag_paused`` current; False if it moved on."""
        now = self._clock()
        updated = self._update_if(
            trigger_id,
            condition=Attr("status").eq(S.TRIGGERED) & _is_live(now),
            update="SET dag_paused = :paused, updated_at = :now ADD revision :one",
            values={":paused": paused, ":now": to_timestamp(now), ":one": 1},
        )
        return updated is not None

    # ------------------------------------------------------ the finished-event outbox

    def pending_events(self, *, limit: int = 100) -> Page:
        """Records whose run ended but whose event is not all delivered, oldest first.

        One page of the sparse ``by_pending_event`` index: records leave it when their event is
        delivered, so it holds only the leftovers of crashed or failed deliveries (normally
        nothing). Its reads are eventually consistent: ``claim_pending_event`` decides.
        """
        return self.query(
            INDEX_BY_PENDING_EVENT, PendingEvent.RUN_FINISHED, limit=limit, newest_first=False
        )

    def claim_pending_event(self, trigger_id: str) -> dict[str, Any] | None:
        """Own a record's undelivered event for one lease: the record, or None when it was
        delivered meanwhile or another pass holds the lease."""
        now = self._clock()
        stamp = to_timestamp(now)
        lease_free = Attr(PENDING_EVENT_LEASE).not_exists() | Attr(PENDING_EVENT_LEASE).lt(stamp)
        return self._update_if(
            trigger_id,
            condition=Attr(PENDING_EVENT).exists() & lease_free,
            update=f"SET {PENDING_EVENT_LEASE} = :until",
            values={":until": to_timestamp(now + self._lease)},
        )

    def settle_pending_event(
        self, trigger_id: str, *, delivered: Collection[str], remaining: Collection[str]
    ) -> None:
        """Record a delivery attempt: with nothing ``remaining`` the record leaves the outbox;
        otherwise the ``delivered`` ones are crossed off and the lease released, so the next
        pass retries the rest at once."""
        now = self._clock()
        expression = UpdateExpression()
        if remaining:
            if delivered:
                expression.delete(PENDING_DELIVERIES, set(delivered))
        else:
            expression.set("finished_event_delivered_at", to_timestamp(now))
            expression.remove(PENDING_EVENT)
            expression.remove(PENDING_DELIVERIES)
        expression.remove(PENDING_EVENT_LEASE)
        rendered = expression.render()
        self._update_if(
            trigger_id,
            condition=Attr(PENDING_EVENT).exists(),
            update=rendered["UpdateExpression"],
            values=rendered["ExpressionAttributeValues"],
            names=rendered["ExpressionAttributeNames"],
        )

    # ------------------------------------------------------------------ reading

    def get(self, trigger_id: str) -> dict[str, Any] | None:
        """The record, or None when there is none or it has expired (TTL deletes lag)."""
        item = self._read_raw(trigger_id)
        if item is None or _is_expired(item, self._clock()):
            return None
        return to_record(item, PARTITION_KEY)

    def query_by_dag(self, environment: str, dag_id: str, **options: Unpack[QueryOptions]) -> Page:
        return self.query(INDEX_BY_DAG, dag_key(environment, dag_id), **options)

    def query_by_source(self, source_key: str, **options: Unpack[QueryOptions]) -> Page:
        return self.query(INDEX_BY_SOURCE, source_key, **options)

    def query_by_status(self, status: TriggerStatus, **options: Unpack[QueryOptions]) -> Page:
        return self.query(INDEX_BY_STATUS, str(TriggerStatus(status)), **options)

    def query_by_day(self, day: date, **options: Unpack[QueryOptions]) -> Page:
        return self.query(INDEX_BY_DAY, day.isoformat(), **options)

    def query(
        self,
        index_name: str,
        partition_value: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = True,
    ) -> Page:
        """One page of one partition of an index, newest first unless asked otherwise."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE} (got {limit})")
        partition_attribute = INDEX_PARTITION_KEYS[index_name]
        key_condition = Key(partition_attribute).eq(partition_value)
        time_range = _time_range(since, until)
        if time_range is not None:
            key_condition = key_condition & time_range
        arguments: dict[str, Any] = {
            "IndexName": index_name,
            "KeyConditionExpression": key_condition,
            "FilterExpression": _is_live(self._clock()),
            "Limit": limit,
            "ScanIndexForward": not newest_first,
        }
        if cursor is not None:
            position = decode_cursor(
                cursor,
                index=index_name,
                partitions=[partition_value],
                key_attributes={
                    PARTITION_KEY: None,
                    partition_attribute: partition_value,
                    SORT_ATTRIBUTE: None,
                },
            )
            if position.start_key is not None:
                arguments["ExclusiveStartKey"] = position.start_key
        response = self._table.query(**arguments)
        last_key = response.get("LastEvaluatedKey")
        return Page(
            items=[to_record(item, PARTITION_KEY) for item in response.get("Items", [])],
            next_cursor=(
                encode_cursor(CursorPosition(index_name, partition_value, last_key))
                if last_key
                else None
            ),
        )

    # ---------------------------------------------------------------- internals

    def _ending_values(self, now: datetime, deliveries: Collection[str]) -> dict[str, Any]:
        """When the run ended, and its event's outbox, leased to the pass that ends it."""
        values: dict[str, Any] = {"finished_at": to_timestamp(now)}
        if deliveries:
            values[PENDING_EVENT] = str(PendingEvent.RUN_FINISHED)
            values[PENDING_DELIVERIES] = set(deliveries)
            values[PENDING_EVENT_LEASE] = to_timestamp(now + self._lease)
        return values

    def _update_if(
        self,
        trigger_id: str,
        *,
        condition: ConditionBase,
        update: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """One conditional update outside the status machine: the new record, or None when
        the condition did not hold."""
        arguments: dict[str, Any] = {
            "Key": {PARTITION_KEY: trigger_id},
            "UpdateExpression": update,
            "ConditionExpression": condition & Attr(PARTITION_KEY).exists(),
            "ReturnValues": "ALL_NEW",
        }
        if values:
            arguments["ExpressionAttributeValues"] = values
        if names:
            arguments["ExpressionAttributeNames"] = names
        try:
            response = self._table.update_item(**arguments)
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return to_record(response["Attributes"], PARTITION_KEY)

    def _new_item(
        self, new: NewTrigger, status: TriggerStatus, now: datetime, *, ttl: timedelta
    ) -> dict[str, Any]:
        stamp = to_timestamp(now)
        optional: dict[str, Any] = {
            "route": new.route,
            "environment": new.environment,
            "dag_id": new.dag_id,
            "dag_key": new.dag_key,
            "dag_run_id": new.dag_run_id,
            "asset_uri": new.asset_uri,
            "event_time": new.event_time and to_timestamp(new.event_time, "event_time"),
            "scheduled_time": new.scheduled_time
            and to_timestamp(new.scheduled_time, "scheduled_time"),
            "requested_logical_date": new.logical_date
            and to_timestamp(new.logical_date, "logical_date"),
            "request_fingerprint": new.request_fingerprint,
            "note": new.note and cap_text(new.note),
        }
        return {
            PARTITION_KEY: new.trigger_id,
            "trigger_id": new.trigger_id,
            "status": str(status),
            "source_type": str(new.source_type),
            "source_key": new.source_key,
            "source_identity": cap_text(new.source_identity),
            "source_ref": encode_source_ref(new.source_ref),
            **{name: value for name, value in optional.items() if value is not None},
            **encode_conf(new.conf, self._conf_max_bytes),
            SORT_ATTRIBUTE: stamp,
            "updated_at": stamp,
            "created_day": to_day(now),
            TTL_ATTRIBUTE: to_epoch_seconds(now + ttl),
            "deliveries": 1,
            "attempts": 0,
            "revision": 1,
            "transitions": [{"status": str(status), "at": stamp}],
        }

    def _put_if_absent(self, item: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        """Write ``item`` unless a live record exists; return that record (raw) if one does."""
        absent = Attr(PARTITION_KEY).not_exists() | Attr(TTL_ATTRIBUTE).lt(to_epoch_seconds(now))
        try:
            self._table.put_item(
                Item=item,
                ConditionExpression=absent,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            # DynamoDB returns ALL_OLD here; the read covers an emulator that does not
            return _condition_failure_item(exc) or self._read_raw(item[PARTITION_KEY]) or {}
        return None

    def _read_raw(self, trigger_id: str) -> dict[str, Any] | None:
        response = self._table.get_item(Key={PARTITION_KEY: trigger_id}, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _count_delivery(self, trigger_id: str, now: datetime) -> dict[str, Any] | None:
        """Add one delivery to a live record; None if it vanished or expired meanwhile."""
        try:
            response = self._table.update_item(
                Key={PARTITION_KEY: trigger_id},
                UpdateExpression="ADD deliveries :one SET last_delivery_at = :now",
                ConditionExpression=_is_live(now),
                ExpressionAttributeValues={":one": 1, ":now": to_timestamp(now)},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return to_record(response["Attributes"], PARTITION_KEY)

    def _is_retryable(self, item: dict[str, Any], now: datetime) -> bool:
        status = item.get("status")
        if status == S.TRIGGER_FAILED:
            return True
        lease_until = item.get("lease_until")
        return status == S.RECEIVED and (lease_until is None or lease_until < to_timestamp(now))

    def _take_over(self, trigger_id: str, now: datetime) -> dict[str, Any]:
        """Give a failed or crashed attempt's record to this delivery (raises if it lost)."""
        return self._apply(trigger_id, self._takeover(now, count_delivery=True), now)

    def _takeover(self, now: datetime, *, count_delivery: bool) -> _Change:
        """A failed or crashed attempt's record, owned again with a fresh lease."""
        stamp = to_timestamp(now)
        lease_expired = Attr("lease_until").not_exists() | Attr("lease_until").lt(stamp)
        precondition = Attr("status").eq(S.TRIGGER_FAILED) | (
            Attr("status").eq(S.RECEIVED) & lease_expired
        )
        values = {
            "lease_until": to_timestamp(now + self._lease),
            TTL_ATTRIBUTE: to_epoch_seconds(now + self._history_ttl),
        }
        values["last_delivery_at" if count_delivery else "taken_over_at"] = stamp
        return _Change(
            to=S.RECEIVED,
            precondition=precondition,
            accepts=lambda record: self._is_retryable(record, now),
            allowed_from=frozenset({S.TRIGGER_FAILED, S.RECEIVED}),
            set_values=values,
            add_values={"deliveries": 1} if count_delivery else {},
        )

    def _status_change(
        self,
        to: TriggerStatus,
        values: dict[str, Any],
        *,
        attempts: int | None = None,
        error_entry: dict[str, str] | None = None,
        remove: tuple[str, ...] = (),
    ) -> _Change:
        allowed = ALLOWED_FROM[to]
        adds = {}
        if attempts is not None:
            if attempts < 0:
                raise ValueError(f"attempts must not be negative (got {attempts})")
            adds["attempts"] = attempts
        return _Change(
            to=to,
            precondition=Attr("status").is_in([str(status) for status in sorted(allowed)]),
            accepts=lambda record: record.get("status") in allowed,
            allowed_from=allowed,
            set_values=values,
            add_values=adds,
            remove=("lease_until", *remove),
            error_entry=error_entry,
        )

    def _apply(self, trigger_id: str, change: _Change, now: datetime) -> dict[str, Any]:
        """Apply ``change`` conditionally, keeping ``transitions`` and ``errors`` bounded.

        The usual write appends to both lists in place. Once a list is full, the record is
        rewritten with the oldest entries dropped, guarded by the revision just read, so a
        concurrent writer makes us start over instead of being overwritten.
        """
        transition = {
            "status": str(change.to),
            "at": to_timestamp(now),
            **change.transition_details,
        }
        for _ in range(MAX_CONDITIONAL_WRITES):
            appended = self._conditional_update(
                trigger_id, change, now, transition, replace_lists_of=None
            )
            if appended.succeeded:
                return appended.record
            current = appended.record
            if not current:
                raise TriggerNotFoundError(trigger_id)
            if not change.accepts(current):
                raise InvalidTransitionError(
                    trigger_id,
                    current=current.get("status"),
                    requested=change.to,
                    allowed_from=change.allowed_from,
                    record=to_record(current, PARTITION_KEY),
                )
            rewritten = self._conditional_update(
                trigger_id, change, now, transition, replace_lists_of=current
            )
            if rewritten.succeeded:
                return rewritten.record
        raise LedgerContentionError(trigger_id, MAX_CONDITIONAL_WRITES)

    def _conditional_update(
        self,
        trigger_id: str,
        change: _Change,
        now: datetime,
        transition: dict[str, str],
        *,
        replace_lists_of: dict[str, Any] | None,
    ) -> _UpdateOutcome:
        """One update_item for ``change``: appending to the lists, or replacing them trimmed."""
        expression = _base_expression(change, now)
        lists = {"transitions": (transition, MAX_TRANSITIONS)}
        if change.error_entry is not None:
            lists["errors"] = (change.error_entry, MAX_ERRORS)
        condition = change.precondition & Attr(PARTITION_KEY).exists()
        if replace_lists_of is None:
            for name, (entry, capacity) in lists.items():
                expression.append(name, entry)
                condition &= Attr(name).not_exists() | Attr(name).size().lt(capacity)
        else:
            for name, (entry, capacity) in lists.items():
                kept = list(replace_lists_of.get(name) or [])[-(capacity - 1) :]
                expression.set(name, [*kept, entry])
            condition &= _has_revision(replace_lists_of.get("revision"))
        try:
            response = self._table.update_item(
                Key={PARTITION_KEY: trigger_id},
                ConditionExpression=condition,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expression.render(),
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return _UpdateOutcome(succeeded=False, record=_condition_failure_item(exc) or {})
        return _UpdateOutcome(
            succeeded=True, record=to_record(response["Attributes"], PARTITION_KEY)
        )


@dataclass(frozen=True)
class _UpdateOutcome:
    succeeded: bool
    record: dict[str, Any]  # the new record, or the current one (raw) when the condition failed


def _base_expression(change: _Change, now: datetime) -> UpdateExpression:
    """Status, timestamps, values and counters of ``change``; every change bumps ``revision``."""
    expression = UpdateExpression()
    expression.set("status", str(change.to))
    expression.set("updated_at", to_timestamp(now))
    for name, value in change.set_values.items():
        expression.set(name, value)
    for name, amount in {**change.add_values, "revision": 1}.items():
        expression.add(name, amount)
    for name in change.remove:
        if name not in change.set_values:
            expression.remove(name)
    return expression


def _failed_task_values(failed: FailedTasks) -> dict[str, Any]:
    if failed.unavailable is not None:
        return {"failed_tasks_unavailable": cap_text(failed.unavailable, 500)}
    return {"failed_tasks": list(failed.task_ids), "failed_task_count": failed.count}


def _has_revision(revision: Any) -> ConditionBase:
    return Attr("revision").not_exists() if revision is None else Attr("revision").eq(revision)


def _is_live(now: datetime) -> ConditionBase:
    """Exists and has not passed its TTL (the opposite of what ``_put_if_absent`` overwrites)."""
    return Attr(PARTITION_KEY).exists() & (
        Attr(TTL_ATTRIBUTE).not_exists() | Attr(TTL_ATTRIBUTE).gte(to_epoch_seconds(now))
    )


def _is_expired(item: dict[str, Any], now: datetime) -> bool:
    expires_at = item.get(TTL_ATTRIBUTE)
    return expires_at is not None and int(expires_at) < to_epoch_seconds(now)


def _time_range(since: datetime | None, until: datetime | None) -> ConditionBase | None:
    start = since and to_timestamp(since, "since")
    end = until and to_timestamp(until, "until")
    if start and end:
        if start > end:
            raise ValueError(f"since ({start}) is after until ({end})")
        return Key(SORT_ATTRIBUTE).between(start, end)
    if start:
        return Key(SORT_ATTRIBUTE).gte(start)
    if end:
        return Key(SORT_ATTRIBUTE).lte(end)
    return None


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED


def _condition_failure_item(exc: ClientError) -> dict[str, Any] | None:
    """The current item DynamoDB returns with a failed condition (ALL_OLD), resource-style."""
    item = exc.response.get("Item")
    return from_low_level(item) if item else None
