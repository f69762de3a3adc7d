"""History queries: by DAG, source, status and day, newest first, paged with opaque cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from dagtrigger.errors import InvalidCursorError
from dagtrigger.ledger import NewTrigger, Page, TriggerLedger, TriggerStatus
from dagtrigger.transports.base import TriggerResult

from .conftest import FakeClock

MakeTrigger = Callable[..., NewTrigger]
S = TriggerStatus
SOURCE_A = "s3://landing/a.csv"
SOURCE_B = "s3://landing/b.csv"
SOURCE_C = "s3://landing/c.csv"


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


def _triggered(ledger: TriggerLedger, trigger_id: str) -> None:
    result = TriggerResult(dag_run_id=f"run-{trigger_id}", logical_date=None, state="queued")
    ledger.mark_triggered(trigger_id, result=result, attempts=1)


@pytest.fixture
def history(ledger: TriggerLedger, clock: FakeClock, make_trigger: MakeTrigger) -> TriggerLedger:
    """Five triggers over two days, two environments, three sources and several statuses."""

    def add(trigger_id: str, when: datetime, environment: str, dag: str, source: str) -> str:
        clock.now = when
        ledger.claim(
            make_trigger(trigger_id, environment=environment, dag_id=dag, source_key=source)
        )
        return trigger_id

    _triggered(ledger, add("t1", _at(21, 2), "prod", "ingest_sales", SOURCE_A))
    t2 = add("t2", _at(21, 3), "prod", "ingest_sales", SOURCE_B)
    _triggered(ledger, t2)
    ledger.update_run_state(t2, status=S.RUNNING, airflow_state="running")
    _triggered(ledger, add("t3", _at(21, 4), "prod", "other_dag", SOURCE_A))
    clock.now = _at(22, 1)
    ledger.record_final(
        make_trigger("t4", source_key=SOURCE_A), status=S.REJECTED, code="bad", message="bad"
    )
    _triggered(ledger, add("t5", _at(22, 5), "staging", "ingest_sales", SOURCE_C))
    return ledger


def _ids(page: Page) -> list[str]:
    return [item["trigger_id"] for item in page.items]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            lambda lg: lg.query_by_dag("prod", "ingest_sales"), ["t4", "t2", "t1"], id="dag"
        ),
        pytest.param(lambda lg: lg.query_by_dag("staging", "ingest_sales"), ["t5"], id="dag-env"),
        pytest.param(lambda lg: lg.query_by_dag("prod", "nothing"), [], id="dag-unknown"),
        pytest.param(lambda lg: lg.query_by_source(SOURCE_A), ["t4", "t3", "t1"], id="source"),
        pytest.param(lambda lg: lg.query_by_status(S.TRIGGERED), ["t5", "t3", "t1"], id="status"),
        pytest.param(lambda lg: lg.query_by_status(S.RUNNING), ["t2"], id="status-running"),
        pytest.param(lambda lg: lg.query_by_status(S.REJECTED), ["t4"], id="status-rejected"),
        pytest.param(lambda lg: lg.query_by_day(date(2026, 11, 21)), ["t3", "t2", "t1"], id="day"),
        pytest.param(lambda lg: lg.query_by_day(date(2026, 11, 22)), ["t5", "t4"], id="day-2"),
        pytest.param(
            lambda lg: lg.query_by_dag("prod", "ingest_sales", newest_first=False),
            ["t1", "t2", "t4"],
            id="oldest-first",
        ),
        pytest.param(
            lambda lg: lg.query_by_dag("prod", "ingest_sales", since=_at(21, 3), until=_at(21, 23)),
            ["t2"],
            id="between",
        ),
        pytest.param(
            lambda lg: lg.query_by_source(SOURCE_A, since=_at(21, 3)), ["t4", "t3"], id="since"
        ),
        pytest.param(
            lambda lg: lg.query_by_status(S.TRIGGERED, until=_at(21, 4)), ["t3", "t1"], id="until"
        ),
    ],
)
def test_each_query_returns_its_items_newest_first(
    history: TriggerLedger, query: Callable[[TriggerLedger], Page], expected: list[str]
) -> None:
    # Given the seeded history / When queried / Then exactly the matching items, in order
    page = query(history)
    assert _ids(page) == expected
    assert page.next_cursor is None


def test_pages_follow_each_other_through_the_cursor(
    ledger: TriggerLedger, clock: FakeClock, make_trigger: MakeTrigger
) -> None:
    # Given seven triggers of one DAG, a minute apart
    for n in range(7):
        clock.advance(minutes=1)
        ledger.claim(make_trigger(f"p{n}"))

    # When they are read three at a time, following the cursor
    pages = [ledger.query_by_dag("prod", "ingest_sales", limit=3)]
    while pages[-1].next_cursor is not None:
        cursor = pages[-1].next_cursor
        pages.append(ledger.query_by_dag("prod", "ingest_sales", limit=3, cursor=cursor))

    # Then every trigger comes exactly once, newest first, in pages of at most three
    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert [tid for page in pages for tid in _ids(page)] == [f"p{n}" for n in range(6, -1, -1)]
    first_cursor = pages[0].next_cursor
    assert first_cursor is not None
    assert set(first_cursor) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )


def _cursor_of(
    start_key: dict[str, Any], *, index: str = "by_dag", partition: str = "prod#ingest_sales"
) -> str:
    document = {"v": 1, "index": index, "partition": partition, "key": start_key}
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        pytest.param("", "non-empty string", id="empty"),
        pytest.param("not base64 at all!", "not one this API issued", id="not-base64"),
        pytest.param(
            base64.urlsafe_b64encode(b"{not json").decode(),
            "not one this API issued",
            id="not-json",
        ),
        pytest.param(_cursor_of({"pk": "p1"}), "other key attributes", id="missing-keys"),
        pytest.param(
            _cursor_of({"pk": "p1", "status": "RECEIVED", "created_at": "2026-11-21"}),
            "other key attributes",
            id="other-key-attributes",
        ),
        pytest.param(
            _cursor_of(
                {"pk": "p1", "status": "RECEIVED", "created_at": "2026-11-21"},
                index="by_status",
                partition="RECEIVED",
            ),
            "query with other filters",
            id="other-index",
        ),
        pytest.param(
            _cursor_of(
                {"pk": "p1", "dag_key": "prod#other", "created_at": "2026-11-21"},
                partition="prod#other",
            ),
            "different query",
            id="other-dag",
        ),
        pytest.param(
            _cursor_of({"pk": "p1", "dag_key": "prod#other", "created_at": "2026-11-21"}),
            "different dag_key",
            id="key-of-other-dag",
        ),
        pytest.param(
            _cursor_of({"pk": 7, "dag_key": "prod#ingest_sales", "created_at": "2026"}),
            "'pk' must be a non-empty string",
            id="wrong-type",
        ),
        pytest.param("A" * 9000, "at most 8192 characters", id="too-long"),
    ],
)
def test_bad_cursor_is_refused_with_a_clear_error(
    ledger: TriggerLedger, cursor: str, message: str
) -> None:
    # Given / When a query gets a cursor it did not issue / Then a ValueError says why
    with pytest.raises(InvalidCursorError, match=message) as raised:
        ledger.query_by_dag("prod", "ingest_sales", cursor=cursor)
    assert isinstance(raised.value, ValueError)


def test_expired_records_are_left_out_of_queries(
    table: Any, clock: FakeClock, make_trigger: MakeTrigger
) -> None:
    # Given an expired record DynamoDB has not deleted yet, and a live one
    ledger = TriggerLedger(table, history_ttl_days=1, clock=clock)
    ledger.claim(make_trigger("old"))
    clock.advance(days=2)
    ledger.claim(make_trigger("new"))

    # When the DAG's history is read / Then only the live record is listed
    assert _ids(ledger.query_by_dag("prod", "ingest_sales")) == ["new"]
    assert _ids(ledger.query_by_status(S.RECEIVED)) == ["new"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 1000"),
        ({"limit": 1001}, "limit must be between 1 and 1000"),
        ({"since": datetime(2026, 11, 21)}, "since must be timezone-aware"),
        ({"since": _at(22, 0), "until": _at(21, 0)}, "is after until"),
    ],
)
def test_bad_query_arguments_are_refused(
    ledger: TriggerLedger, arguments: dict[str, Any], message: str
) -> None:
    # Given / When a query has bad arguments / Then ValueError names the argument
    with pytest.raises(ValueError, match=message):
        ledger.query_by_dag("prod", "ingest_sales", **arguments)
