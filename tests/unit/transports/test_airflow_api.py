"""Shared Airflow REST semantics, over in-memory subclasses that answer like Airflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dagtrigger.transports.airflow_api import (
    RUN_SEARCH_MAX_PAGES,
    RUNS_PAGE_LIMIT,
    AirflowApiTransport,
    ApiReply,
    airflow_message,
)
from dagtrigger.transports.base import EnvironmentRef, TransportKind

ENVIRONMENT = EnvironmentRef(alias="prod", name="prod", transport=TransportKind.AIRFLOW_REST)


class PausedFlagAirflow(AirflowApiTransport):
    max_path_length = None

    def __init__(self, **options: Any) -> None:
        super().__init__(ENVIRONMENT, **options)
        self.paused = True
        self.reads = 0

    def airflow_major(self) -> int:
        return 3

    def call(self, method: str, path: str, **_: Any) -> ApiReply:
        assert (method, path) == ("GET", "/dags/etl")
        self.reads += 1
        return ApiReply(200, {"dag_id": "etl", "is_paused": self.paused})


def test_paused_flag_is_reused_for_a_while_then_read_again(clock):
    # Given a DAG that is paused, then unpaused by its owner
    airflow = PausedFlagAirflow(monotonic=clock, paused_cache_seconds=30)
    assert airflow.dag_paused("etl") is True
    airflow.paused = False

    # When asked again within 30 s, and after
    clock.advance(10)
    within = airflow.dag_paused("etl")
    clock.advance(25)
    after = airflow.dag_paused("etl")

    # Then the cached answer served the burst, and the change shows once it expired
    assert (within, after) == (True, False)
    assert airflow.reads == 2


def test_airflow_messages_keep_title_detail_and_validation_locations():
    assert airflow_message(
        {"title": "DAG not found", "detail": "DAG with dag_id: 'x' not found"}
    ) == ("DAG not found: DAG with dag_id: 'x' not found")
    assert airflow_message(
        {"detail": [{"loc": ["body", "conf"], "msg": "Input should be a valid dictionary"}]}
    ) == ("body.conf: Input should be a valid dictionary")
    assert airflow_message(
        {"detail": {"reason": "Unique constraint violation", "statement": "hidden"}}
    ) == ("Unique constraint violation")


LONG_RUN_ID = "dt__" + "f" * 60  # /dags/etl/dagRuns/<id> exceeds InvokeRestApi's 64 characters
TRIGGERED_AT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


class RunListAirflow(AirflowApiTransport):
    """Lists runs like Airflow: filtered by a date at or after the bound, ordered by id."""

    max_path_length = 64

    def __init__(self, major: int, runs: list[dict[str, Any]]) -> None:
        super().__init__(ENVIRONMENT)
        self.major = major
        self.runs = runs  # in id order, each with a "dated" datetime
        self.queries: list[dict[str, Any]] = []

    def airflow_major(self) -> int:
        return self.major

    def call(self, method: str, path: str, *, query: Any = None, **_: Any) -> ApiReply:
        assert (method, path) == ("GET", "/dags/etl/dagRuns")
        self.queries.append(dict(query))
        bound = query.get("run_after_gte") or query.get("execution_date_gte")
        dated = [
            r for r in self.runs if bound is None or r["dated"] >= datetime.fromisoformat(bound)
        ]
        page = dated[query["offset"] : query["offset"] + query["limit"]]
        listed = [{"dag_run_id": r["dag_run_id"], "state": r["state"]} for r in page]
        return ApiReply(200, {"dag_runs": listed, "total_entries": len(dated)})


def runs_after(start: datetime, count: int, *, prefix: str = "other") -> list[dict[str, Any]]:
    return [
        {"dag_run_id": f"{prefix}_{n}", "state": "success", "dated": start + timedelta(seconds=n)}
        for n in range(count)
    ]


def busy_dag(major: int, *, ours_after: int) -> RunListAirflow:
    """500 older runs, then `ours_after` runs since our trigger, ours, then 150 newer ones."""
    older = runs_after(TRIGGERED_AT - timedelta(days=2), 500, prefix="old")
    before_ours = runs_after(TRIGGERED_AT - timedelta(minutes=1), ours_after, prefix="before")
    ours = {"dag_run_id": LONG_RUN_ID, "state": "queued", "dated": TRIGGERED_AT}
    newer = runs_after(TRIGGERED_AT + timedelta(minutes=1), 150, prefix="new")
    return RunListAirflow(major, [*older, *before_ours, ours, *newer])


@pytest.mark.parametrize(
    ("major", "date_filter"), [(3, "run_after_gte"), (2, "execution_date_gte")]
)
def test_a_run_whose_path_is_too_long_is_found_among_the_runs_since_its_trigger(major, date_filter):
    # Given a busy DAG where 120 runs were created in the margin before ours, and 150 after
    airflow = busy_dag(major, ours_after=120)

    # When its state is asked with the trigger time
    state = airflow.get_dag_run_state("etl", LONG_RUN_ID, triggered_after=TRIGGERED_AT)

    # Then it is found on page 2 of the runs dated from 5 minutes before the trigger, oldest first
    assert state == "queued"
    window_start = "2026-11-21T01:55:00.000000+00:00"
    assert airflow.queries == [
        {"limit": 100, "offset": 0, date_filter: window_start, "order_by": "id"},
        {"limit": 100, "offset": 100, date_filter: window_start, "order_by": "id"},
    ]


def test_without_a_trigger_time_only_the_newest_runs_are_read():
    # Given the same busy DAG, where ours is older than the newest 100 runs
    airflow = busy_dag(3, ours_after=0)

    # When its state is asked without a trigger time
    state = airflow.get_dag_run_state("etl", LONG_RUN_ID)

    # Then only the last page is read, and the run looks absent (the limit the hint lifts)
    assert state is None
    assert airflow.queries == [{"limit": 1, "offset": 0}, {"limit": 100, "offset": 551}]


def test_a_run_absent_since_its_trigger_is_none_after_the_last_short_page():
    # Given a DAG with 150 runs since the trigger time, none of them ours
    airflow = RunListAirflow(3, runs_after(TRIGGERED_AT, 150))

    # When our run is looked up
    state = airflow.get_dag_run_state("etl", LONG_RUN_ID, triggered_after=TRIGGERED_AT)

    # Then it is absent, and paging stopped at the first short page
    assert state is None
    assert [query["offset"] for query in airflow.queries] == [0, 100]


def test_the_search_from_a_trigger_time_is_bounded():
    # Given a DAG with far more runs since the trigger time than the search reads
    airflow = RunListAirflow(
        3, runs_after(TRIGGERED_AT, RUNS_PAGE_LIMIT * RUN_SEARCH_MAX_PAGES + 5)
    )

    # When a run that is not there is looked up
    state = airflow.get_dag_run_state("etl", LONG_RUN_ID, triggered_after=TRIGGERED_AT)

    # Then it is reported absent after the page limit, not after reading every run
    assert state is None
    assert len(airflow.queries) == RUN_SEARCH_MAX_PAGES


def test_a_naive_trigger_time_is_taken_as_utc():
    airflow = RunListAirflow(3, [])

    airflow.get_dag_run_state("etl", LONG_RUN_ID, triggered_after=datetime(2026, 11, 21, 2, 0))

    assert airflow.queries[0]["run_after_gte"] == "2026-11-21T01:55:00.000000+00:00"
