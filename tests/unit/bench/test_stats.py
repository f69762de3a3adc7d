"""The bench's figures: percentiles, ratios, verdicts, tables, the emulator log merge."""

from __future__ import annotations

import pytest

from bench.cold import parse_table
from bench.emulator_calls import kind_of, new_entries
from bench.stats import Target, format_ratio, markdown_table, median, percentile, ratio
from devstack.mwaa_emulator.request_log import DEFAULT_CAPACITY, AnsweredRequest


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


def test_new_entries_finds_what_the_log_appended() -> None:
    old = [_entry(1), _entry(2), _entry(3)]
    assert new_entries([], old) == (old, False)
    # dropped its oldest, appended two
    now = [_entry(2), _entry(3), _entry(4), _entry(5)]
    assert new_entries(old, now) == ([_entry(4), _entry(5)], False)
    assert new_entries(now, now) == ([], False)


def test_new_entries_with_equal_entries_takes_the_longest_overlap() -> None:
    same = _entry(0)
    assert new_entries([same, same], [same, same, same]) == ([same], False)


def test_new_entries_flags_a_full_log_with_no_overlap() -> None:
    old = [_entry(-1)]
    full = [_entry(n) for n in range(DEFAULT_CAPACITY)]
    assert new_entries(old, full) == (full, True)
    assert new_entries(old, full[:3]) == (full[:3], False)


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
