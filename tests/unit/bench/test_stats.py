"""The bench's figures: percentiles, ratios, verdicts, tables, the emulator call tally."""

from __future__ import annotations

import time

import pytest

from bench.cold import parse_table
from bench.emulator_calls import EmulatorTally, kind_of
from bench.stats import Target, format_ratio, markdown_table, median, percentile, ratio
from devstack.mwaa_emulator.request_log import AnsweredRequest, RequestLog


def test_percentile_interpolates_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10
    assert percentile(values, 100) == 40
    assert percentile(values, 50) == 25
    assert percentile(values, 99) == pytest.approx(39.7)
    assert percentile([7.0], 99) == 7


def test_percentile_ignores_order_and_refuses_nonsense() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="within"):
        percentile([1.0], 101)


def test_median_and_ratio() -> None:
    assert median([1.0, 5.0, 2.0]) == 2
    assert ratio(1.0, 2.0) == 0.5
    assert ratio(1.0, 0.0) is None
    assert format_ratio(None) == "n/a"
    assert format_ratio(1.234) == "1.23x"


def test_target_says_by_how_much_it_is_missed() -> None:
    target = Target(1.2)
    assert target.verdict(1.1) == "met"
    assert target.verdict(1.2) == "met"
    assert target.verdict(1.5, "x") == "MISSED by 0.3x (25%)"
    assert target.verdict(None) == "not measured"
    assert Target(25).verdict(30, " ms") == "MISSED by 5 ms (20%)"
    assert Target(3, at_most=False).verdict(2) == "MISSED by 1 (33%)"
    assert target.describe("x") == "≤ 1.20x"


def test_markdown_table_escapes_pipes_and_checks_widths() -> None:
    table = markdown_table(["a", "b"], [["x|y", None], [1, 2.5]])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y |  |", "| 1 | 2.5 |"]
    with pytest.raises(ValueError, match="cells"):
        markdown_table(["a"], [[1, 2]])


def _entry(n: int, operation: str = "InvokeRestApi", request: str = "POST /dags/d/dagRuns"):
    return AnsweredRequest(f"t{n}", operation, "env", request, 200, None, 1.0)


def test_the_tally_keeps_every_request_of_a_burst_larger_than_the_log() -> None:
    # Given a tally started on the emulator's request log, which keeps 3 requests
    log = RequestLog(capacity=3)
    log.record(operation="CreateCliToken", environment="env", request="", status=200, started=0)
    tally = EmulatorTally(log)
    tally.start()
    start = tally.mark()

    # When 10 triggers are answered, then one more after the tally stopped
    for _ in range(10):
        log.record(
            operation="InvokeRestApi",
            environment="env",
            request="POST /dags/d/dagRuns",
            status=200,
            started=time.monotonic(),
        )
    end = tally.mark()
    tally.stop()
    log.record(
        operation="InvokeRestApi",
        environment="env",
        request="GET /dags",
        status=200,
        started=time.monotonic(),
    )

    # Then all 10 are counted, none from before it started or after it stopped
    count = tally.count(start, end)
    assert (count.total, count.by_kind) == (10, {"InvokeRestApi POST dagRuns": 10})
    assert len(log.entries()) == 3
    assert tally.mark() == 10


def test_kinds_of_requests() -> None:
    assert kind_of(_entry(1)) == "InvokeRestApi POST dagRuns"
    assert kind_of(_entry(1, request="POST /dags/~/dagRuns/list")) == (
        "InvokeRestApi POST dagRuns/list"
    )
    assert kind_of(_entry(1, request="GET /dags/d")) == "InvokeRestApi GET dag"
    assert kind_of(_entry(1, "cli", "dags trigger d --conf x")) == "cli dags trigger"
    assert kind_of(_entry(1, "CreateCliToken", "")) == "CreateCliToken"


def test_cold_start_table_is_read_by_column_name() -> None:
    text = """
| handler | import, median ms | p90 ms | vs sample | vs Powertools | peak RSS MiB |
| --- | ---: | ---: | ---: | ---: | ---: |
| sample (CreateCliToken + CLI) | 120 | 130 | 1.00x | 0.50x | 30 |
| dagtrigger s3_events | 300 | 320 | 2.50x | 1.25x | 60 |
"""
    rows = parse_table(text)
    assert [row.name for row in rows] == ["sample (CreateCliToken + CLI)", "dagtrigger s3_events"]
    assert rows[1].median_ms == 300
    assert rows[1].p90_ms == 320
    assert rows[1].rss_mib == 60
