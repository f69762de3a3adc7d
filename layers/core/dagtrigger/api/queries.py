"""Reading the trigger history: one trigger, filtered lists, one S3 object's history.

Lists never scan. The filter picks the index (source, then DAG, then status, else the day
index walked back one day at a time), the other filters apply to what the index returns, and
the API's cursor wraps the ledger's: which index, which partition (the day, for the day
index) and the ledger's own opaque cursor within it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dagtrigger.api.context import ApiDependencies
from dagtrigger.api.models import TriggerPage, TriggerRecord
from dagtrigger.api.problems import ApiProblem, ProblemCode
from dagtrigger.api.runs import resolve_environment
from dagtrigger.errors import InvalidCursorError
from dagtrigger.ledger import Page, TriggerLedger, TriggerStatus, dag_key

DEFAULT_LOOKBACK = timedelta(days=7)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
#: index reads one page may make (filters and empty days otherwise make a page unbounded)
MAX_READS_PER_PAGE = 40
_CURSOR_VERSION = 1

INDEX_BY_SOURCE = "by_source"
INDEX_BY_DAG = "by_dag"
INDEX_BY_STATUS = "by_status"
INDEX_BY_DAY = "by_day"


@dataclass(frozen=True)
class TriggerFilters:
    dag_id: str | None = None
    environment: str | None = None
    source: str | None = None
    status: TriggerStatus | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class _Plan:
    """Which index to read, its partitions newest first, and what to filter afterwards."""

    index: str
    partitions: list[str]
    keep: Callable[[dict[str, Any]], bool]


def get_trigger(trigger_id: str, deps: ApiDependencies) -> TriggerRecord:
    record = deps.core.ledger.get(trigger_id)
    if record is None:
        raise ApiProblem(ProblemCode.NOT_FOUND, f"no trigger with id {trigger_id!r}")
    return TriggerRecord.model_validate(record)


def object_history(
    bucket: str, key: str, *, limit: int, cursor: str | None, deps: ApiDependencies
) -> TriggerPage:
    """Every trigger of ``s3://bucket/key``, newest first."""
    return list_triggers(
        TriggerFilters(source=f"s3://{bucket}/{key}"), limit=limit, cursor=cursor, deps=deps
    )


def list_triggers(
    filters: TriggerFilters, *, limit: int, cursor: str | None, deps: ApiDependencies
) -> TriggerPage:
    """One page of triggers matching ``filters``, newest first."""
    since, until = _time_window(filters, deps.core.clock())
    default_environment = None
    if filters.dag_id is not None and filters.environment is None:
        default_environment = resolve_environment(deps.core.routes.get(), None).alias
    plan = _plan(filters, since, until, default_environment)
    start_partition, inner_cursor = _decode_cursor(cursor, plan)
    reader = _reader(deps.core.ledger, plan.index, since, until)
    items, next_position = _collect(reader, plan, start_partition, inner_cursor, limit)
    return TriggerPage(
        items=[TriggerRecord.model_validate(item) for item in items],
        next_cursor=_encode_cursor(plan.index, next_position) if next_position else None,
    )


def _time_window(filters: TriggerFilters, now: datetime) -> tuple[datetime | None, datetime | None]:
    since, until = filters.since, filters.until
    uses_day_index = not (filters.source or filters.dag_id or filters.status)
    if uses_day_index:
        until = until or now
        since = since or until - DEFAULT_LOOKBACK
    if since is not None and until is not None and since > until:
        raise ApiProblem(
            ProblemCode.BAD_REQUEST,
            f"since ({since.isoformat()}) is after until ({until.isoformat()})",
        )
    return since, until


def _plan(
    filters: TriggerFilters,
    since: datetime | None,
    until: datetime | None,
    default_environment: str | None,
) -> _Plan:
    environment = filters.environment or default_environment
    wanted: dict[str, str] = {}
    if filters.source:
        wanted["source_key"] = filters.source
    if filters.dag_id:
        wanted["dag_id"] = filters.dag_id
    if environment:
        wanted["environment"] = environment
    if filters.status:
        wanted["status"] = str(filters.status)

    def keep(record: dict[str, Any]) -> bool:
        return all(record.get(name) == value for name, value in wanted.items())

    if filters.source:
        return _Plan(INDEX_BY_SOURCE, [filters.source], keep)
    if filters.dag_id and environment:
        return _Plan(INDEX_BY_DAG, [dag_key(environment, filters.dag_id)], keep)
    if filters.status:
        return _Plan(INDEX_BY_STATUS, [str(filters.status)], keep)
    if since is None or until is None:
        raise ValueError("the day index needs a time window (_time_window sets one)")
    return _Plan(INDEX_BY_DAY, _days_newest_first(since, until), keep)


def _days_newest_first(since: datetime, until: datetime) -> list[str]:
    first, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    days = (last - first).days + 1
    return [(last - timedelta(days=offset)).isoformat() for offset in range(days)]


Reader = Callable[[str, str | None, int], Page]


def _reader(
    ledger: TriggerLedger, index: str, since: datetime | None, until: datetime | None
) -> Reader:
    """A function reading one partition of ``index``: (partition, cursor, limit) -> Page."""
    window: dict[str, Any] = {"since": since, "until": until}

    def read(partition: str, cursor: str | None, limit: int) -> Page:
        if index == INDEX_BY_SOURCE:
            return ledger.query_by_source(partition, limit=limit, cursor=cursor, **window)
        if index == INDEX_BY_DAG:
            environment, _, dag_id = partition.partition("#")
            return ledger.query_by_dag(environment, dag_id, limit=limit, cursor=cursor, **window)
        if index == INDEX_BY_STATUS:
            status = TriggerStatus(partition)
            return ledger.query_by_status(status, limit=limit, cursor=cursor, **window)
        day = date.fromisoformat(partition)
        return ledger.query_by_day(day, limit=limit, cursor=cursor, **window)

    return read


def _collect(
    read: Reader, plan: _Plan, start: int, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], tuple[str, str | None] | None]:
    """Fill a page from the partitions, from ``start`` on; return it and where to go on."""
    items: list[dict[str, Any]] = []
    position = start
    for _ in range(MAX_READS_PER_PAGE):
        if position >= len(plan.partitions) or len(items) >= limit:
            break
        partition = plan.partitions[position]
        try:
            page = read(partition, cursor, limit - len(items))
        except InvalidCursorError as bad:
            raise ApiProblem(ProblemCode.BAD_REQUEST, f"invalid cursor: {bad}") from None
        items.extend(item for item in page.items if plan.keep(item))
        cursor = page.next_cursor
        if cursor is None:
            position += 1
    if position >= len(plan.partitions):
        return items, None
    return items, (plan.partitions[position], cursor)


# ---------------------------------------------------------------------------------------------
# The API's cursor: {"v": 1, "index": ..., "partition": ..., "cursor": <ledger cursor>}
# ---------------------------------------------------------------------------------------------


def _encode_cursor(index: str, position: tuple[str, str | None]) -> str:
    partition, inner = position
    document = {"v": _CURSOR_VERSION, "index": index, "partition": partition, "cursor": inner}
    text = json.dumps(document, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str | None, plan: _Plan) -> tuple[int, str | None]:
    """(index of the partition to start from, the ledger's cursor within it)."""
    if cursor is None:
        return 0, None
    document = _cursor_document(cursor)
    if document.get("index") != plan.index:
        raise _bad_cursor("it belongs to a query with other filters; start again without it")
    partition, inner = document.get("partition"), document.get("cursor")
    if partition not in plan.partitions:
        raise _bad_cursor("it is outside this query's time range; start again without it")
    if inner is not None and not isinstance(inner, str):
        raise _bad_cursor("it is not one this API issued")
    return plan.partitions.index(partition), inner


def _cursor_document(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError):
        raise _bad_cursor("it is not one this API issued") from None
    if not isinstance(document, dict) or document.get("v") != _CURSOR_VERSION:
        raise _bad_cursor("it is not one this API issued")
    return document


def _bad_cursor(why: str) -> ApiProblem:
    return ApiProblem(ProblemCode.BAD_REQUEST, f"invalid cursor: {why}")
