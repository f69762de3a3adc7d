"""trigger_id and dag_run_id: deterministic, Airflow-safe, bounded, and distinct."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrigger.ids import (
    AIRFLOW_RUN_ID_PATTERN,
    MAX_RUN_ID_LENGTH,
    asset_uri_problem,
    dag_run_id,
    trigger_id,
)

TRIGGER_ID = re.compile(r"^t-[0-9a-f]{32}$")

texts = st.text(max_size=400)
source_types = st.sampled_from(["s3", "schedule", "api", "webhook"]) | st.text(max_size=60)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
FIXED = settings(max_examples=200, deadline=None)


def test_an_s3_run_id_reads_like_the_event() -> None:
    # Given the trigger for s3://landing/sales/2026-11-21.csv
    tid = trigger_id("s3://landing/sales/2026-11-21.csv#version=v1", "sales-csv")

    # When its run id is made
    run_id = dag_run_id(
        "s3", "sales/2026-11-21.csv", datetime(2026, 11, 21, 10, 15, tzinfo=UTC), tid
    )

    # Then it says where it came from, when, and ends with 12 hex digits
    assert TRIGGER_ID.match(tid)
    assert re.fullmatch(
        r"dagtrigger__s3__sales-2026-11-21\.csv__20261121T101500Z__[0-9a-f]{12}", run_id
    )


def test_readable_parts_are_folded_to_what_airflow_accepts() -> None:
    when = datetime(2026, 11, 21, 10, 15, tzinfo=UTC)
    run_id = dag_run_id("s3", "données/été 2026 (o'brien)\n.csv", when, "t-1")

    assert run_id.startswith("dagtrigger__s3__donnees-ete_2026_o_brien_.csv__20261121T101500Z__")


def test_times_are_written_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    in_paris = dag_run_id("s3", "k", datetime(2026, 11, 21, 11, 15, tzinfo=paris), "t-1")
    in_utc = dag_run_id("s3", "k", datetime(2026, 11, 21, 10, 15, tzinfo=UTC), "t-1")
    naive = dag_run_id("s3", "k", datetime(2026, 11, 21, 10, 15), "t-1")

    assert in_paris == in_utc == naive
    assert "__20261121T101500Z__" in in_utc


def test_a_long_readable_part_is_cut_from_the_front_and_the_hash_kept() -> None:
    when = datetime(2026, 11, 21, tzinfo=UTC)
    key = "deep/" * 100 + "the-file-name.csv"

    run_id = dag_run_id("s3", key, when, "t-1")

    # (a cut that starts on a separator drops it: one character short at most)
    assert MAX_RUN_ID_LENGTH - 1 <= len(run_id) <= MAX_RUN_ID_LENGTH
    assert "the-file-name.csv__20261121T000000Z__" in run_id
    assert run_id.startswith("dagtrigger__s3__")
    assert run_id.endswith(dag_run_id("s3", "", when, "t-1")[-12:])


def test_the_longest_s3_key_gives_a_run_id_that_fits_airflows_log_path() -> None:
    # Given S3's longest key: 1,024 bytes of UTF-8, mostly multi-byte letters
    when = datetime(2026, 11, 21, tzinfo=UTC)
    key = ("é" * 500 + "/" + "x" * 21)[:1024]
    assert len(key.encode("utf-8")) == 1022

    # When its run id is made
    run_id = dag_run_id("s3", key, when, trigger_id(f"s3://b/{key}", "route"))

    # Then Airflow's "run_id=<id>" log directory stays far inside 255 bytes, and the id stays
    # one Airflow accepts, readable at its end
    assert len(f"run_id={run_id}".encode()) <= 255 - 100
    assert len(run_id) <= MAX_RUN_ID_LENGTH == 96
    assert AIRFLOW_RUN_ID_PATTERN.match(run_id)
    assert "xxxxxxxxx__20261121T000000Z__" in run_id


def test_an_empty_readable_part_is_left_out() -> None:
    run_id = dag_run_id("api", "///", datetime(2026, 11, 21, tzinfo=UTC), "t-1")

    assert re.fullmatch(r"dagtrigger__api__20261121T000000Z__[0-9a-f]{12}", run_id)


@FIXED
@given(identity=texts, route=texts)
def test_trigger_ids_are_deterministic_and_well_formed(identity: str, route: str) -> None:
    first = trigger_id(identity, route)

    assert first == trigger_id(identity, route)
    assert TRIGGER_ID.match(first)


@FIXED
@given(a=st.tuples(texts, texts), b=st.tuples(texts, texts))
def test_distinct_sources_get_distinct_trigger_ids(a: tuple[str, str], b: tuple[str, str]) -> None:
    if a != b:
        assert trigger_id(*a) != trigger_id(*b)


def test_identity_and_route_cannot_be_shifted_into_each_other() -> None:
    # "a|b" + "c" and "a" + "b|c" would collide under naive concatenation
    assert trigger_id("s3://b/k", "r") != trigger_id("s3://b/", "kr")
    assert trigger_id('x","y', "z") != trigger_id("x", 'y","z')


@FIXED
@given(source_type=source_types, readable=texts, when=moments, tid=texts)
def test_run_ids_are_airflow_safe_bounded_and_deterministic(
    source_type: str, readable: str, when: datetime, tid: str
) -> None:
    run_id = dag_run_id(source_type, readable, when, tid)

    assert AIRFLOW_RUN_ID_PATTERN.match(run_id)
    assert not run_id.startswith("-")
    assert len(run_id) <= MAX_RUN_ID_LENGTH
    assert run_id == dag_run_id(source_type, readable, when, tid)
    assert run_id.endswith(when.strftime("%Y%m%dT%H%M%SZ") + "__" + run_id[-12:])


@FIXED
@given(readable=texts, when=moments, a=texts, b=texts)
def test_distinct_triggers_get_distinct_run_ids(
    readable: str, when: datetime, a: str, b: str
) -> None:
    # Even with the same readable part and time, two triggers never share a run id
    if a != b:
        assert dag_run_id("s3", readable, when, a) != dag_run_id("s3", readable, when, b)


@FIXED
@given(readable=texts, a=moments, b=moments)
def test_run_ids_differ_by_time(readable: str, a: datetime, b: datetime) -> None:
    if a.replace(microsecond=0) != b.replace(microsecond=0):
        assert dag_run_id("s3", readable, a, "t-1") != dag_run_id("s3", readable, b, "t-1")


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://landing/orders/", None),
        ("orders_daily", None),  # an Airflow 3 asset name
        ("", "is empty"),
        ("s3://landing/" + "k" * 1500, "over Airflow's 1500"),
        ("s3://landing/a b.csv", "a space, a control character"),
        ("s3://landing/é.csv", "not ASCII"),
        ("airflow://internal", "Airflow reserves"),
    ],
)
def test_an_asset_uri_is_one_airflow_can_take(uri: str, problem: str | None) -> None:
    found = asset_uri_problem(uri)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
