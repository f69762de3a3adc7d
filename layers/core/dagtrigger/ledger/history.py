"""Filtered history reads that never scan: pick the index, read its partitions, filter the rest.

The filter picks the index (source, then DAG, then status, else the day index walked back one
day at a time); the other filters apply to what the index returns. The cursor of a page says
which partition to resume in and where (``dagtrigger.ledger.cursor``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dagtrigger.errors import MalformedRequestError
from dagtrigger.ledger import schema
from dagtrigger.ledger.cursor import CursorPosition, decode_cursor, encode_cursor
from dagtrigger.ledger.ledger import TriggerLedger
from dagtrigger.ledger.records import Page, TriggerStatus, dag_key

#: how far back a read without a DAG, source or status looks unless told
DEFAULT_LOOKBACK = timedelta(days=7)
#: the widest time range such a read walks (one day partition at a time)
MAX_DAY_RANGE = 93
#: index reads one page may make (filters and empty days otherwise make a page unbounded)
MAX_READS_PER_PAGE = 40


@dataclass(frozen=True)
class TriggerFilters:
    """What to list; a ``dag_id`` needs its ``environment`` (the caller picks a default)."""

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


def find_triggers(
    ledger: TriggerLedger,
    filters: TriggerFilters,
    *,
    limit: int,
    cursor: str | None,
    now: datetime,
) -> Page:
    """One page of the triggers matching ``filters``, newest first.

    A page may hold fewer than ``limit`` items (filters apply after the index read) and still
    have a next page. Raises ``MalformedRequestError`` for a time window that ends before it
    starts and ``InvalidCursorError`` for a cursor this query did not issue.
    """
    if filters.dag_id is not None and filters.environment is None:
        raise ValueError("a dag_id filter needs its environment")
    since, until = _time_window(filters, now)
    plan = _plan(filters, since, until)
    position, inner_cursor = _start(cursor, plan)
    items: list[dict[str, Any]] = []
    for _ in range(MAX_READS_PER_PAGE):
        if position >= len(plan.partitions) or len(items) >= limit:
            break
        page = ledger.query(
            plan.index,
            plan.partitions[position],
            since=since,
            until=until,
            limit=limit - len(items),
            cursor=inner_cursor,
        )
        items.extend(item for item in page.items if plan.keep(item))
        inner_cursor = page.next_cursor
        if inner_cursor is None:
            position += 1
    if position >= len(plan.partitions):
        return Page(items=items, next_cursor=None)
    resume = inner_cursor or encode_cursor(
        CursorPosition(plan.index, plan.partitions[position], None)
    )
    return Page(items=items, next_cursor=resume)


def _time_window(filters: TriggerFilters, now: datetime) -> tuple[datetime | None, datetime | None]:
    since, until = filters.since, filters.until
    uses_day_index = not (filters.source or filters.dag_id or filters.status)
    if uses_day_index:
        until = until or now
        since = since or until - DEFAULT_LOOKBACK
    if since is not None and until is not None and since > until:
        raise MalformedRequestError(
            f"since ({since.isoformat()}) is after until ({until.isoformat()})"
        )
    if uses_day_index and since is not None and until is not None:
        days = (until.astimezone(UTC).date() - since.astimezone(UTC).date()).days + 1
        if days > MAX_DAY_RANGE:
            raise MalformedRequestError(
                f"since and until span {days} days; without a DAG, source or status filter "
                f"at most {MAX_DAY_RANGE} days are listed at once"
            )
    return since, until


def _plan(filters: TriggerFilters, since: datetime | None, until: datetime | None) -> _Plan:
    wanted: dict[str, str] = {}
    if filters.source:
        wanted["source_key"] = filters.source
    if filters.dag_id:
        wanted["dag_id"] = filters.dag_id
    if filters.environment:
        wanted["environment"] = filters.environment
    if filters.status:
        wanted["status"] = str(filters.status)

    def keep(record: dict[str, Any]) -> bool:
        return all(record.get(name) == value for name, value in wanted.items())

    if filters.source:
        return _Plan(schema.INDEX_BY_SOURCE, [filters.source], keep)
    if filters.dag_id and filters.environment:
        return _Plan(schema.INDEX_BY_DAG, [dag_key(filters.environment, filters.dag_id)], keep)
    if filters.status:
        return _Plan(schema.INDEX_BY_STATUS, [str(filters.status)], keep)
    if since is None or until is None:
        raise ValueError("the day index needs a time window (_time_window sets one)")
    return _Plan(schema.INDEX_BY_DAY, _days_newest_first(since, until), keep)


def _days_newest_first(since: datetime, until: datetime) -> list[str]:
    first, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    days = (last - first).days + 1
    return [(last - timedelta(days=offset)).isoformat() for offset in range(days)]


def _start(cursor: str | None, plan: _Plan) -> tuple[int, str | None]:
    """(index of the partition to start from, the cursor to read it with)."""
    if cursor is None:
        return 0, None
    position = decode_cursor(
        cursor,
        index=plan.index,
        partitions=plan.partitions,
        key_attributes={
            schema.PARTITION_KEY: None,
            schema.INDEX_PARTITION_KEYS[plan.index]: None,
            schema.SORT_ATTRIBUTE: None,
        },
    )
    return plan.partitions.index(position.partition), cursor
