"""The CLI command builder: every argument survives MWAA's shell-like split exactly."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrigger.errors import RejectedError
from dagtrigger.transports import cli_command

DAG_IDS = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}\Z")
RUN_IDS = st.from_regex(r"\A[A-Za-z0-9_.~:+][A-Za-z0-9_.~:+-]{0,60}\Z")
NASTY_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "'",
            '"',
            "a b",
            "line\nbreak",
            "--conf",
            "$(rm -rf /)",
            "`id`",
            "; ls",
            "\\",
            "é✓",
            "\x00",
        ]
    ),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | NASTY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(NASTY_TEXT, children, max_size=3)
    ),
    max_leaves=10,
)
CONFS = st.dictionaries(NASTY_TEXT, JSON_VALUES, max_size=5)


@settings(max_examples=200, deadline=None)
@given(dag_id=DAG_IDS, run_id=RUN_IDS, conf=CONFS, major=st.sampled_from([2, 3]))
def test_split_body_is_exactly_the_intended_argv(
    dag_id: str, run_id: str, conf: dict, major: int
) -> None:
    # Given any allowed ids and any conf, with quotes, spaces, newlines, $(...), backticks, unicode
    logical_date = datetime(2026, 11, 21, 2, 0, 0, 123456, tzinfo=UTC)

    # When the trigger command is built
    body = cli_command.trigger_command(
        dag_id, run_id, conf, airflow_major=major, logical_date=logical_date
    )

    # Then a shell-like split gives back exactly the argv we meant, conf JSON included
    date_flag = "--logical-date" if major >= 3 else "--exec-date"
    expected = [
        "dags", "trigger", dag_id, "--run-id", run_id,
        "--conf", json.dumps(conf, ensure_ascii=True, separators=(",", ":")),
        date_flag, "2026-11-21T02:00:00.123456+00:00", "--no-replace-microseconds",
        "--output", "json",
    ]  # fmt: skip
    assert shlex.split(body) == expected
    assert body.isascii()
    assert json.loads(shlex.split(body)[6]) == conf


def test_airflow_3_trigger_without_logical_date_sends_no_date_flag() -> None:
    # Given an Airflow 3 trigger with no logical date (Airflow 3 then has none: no collision)
    # When the command is built
    argv = shlex.split(
        cli_command.trigger_command("etl", "run_1", {}, airflow_major=3, logical_date=None)
    )

    # Then neither date flag appears
    assert argv == [
        "dags",
        "trigger",
        "etl",
        "--run-id",
        "run_1",
        "--conf",
        "{}",
        "--output",
        "json",
    ]


def test_logical_dates_are_sent_in_utc() -> None:
    # Given a logical date in another time zone
    moment = datetime(2026, 11, 21, 3, 0, tzinfo=timezone(timedelta(hours=1)))

    # When it becomes a CLI argument
    # Then it is the same instant in UTC, with microseconds
    assert cli_command.date_argument(moment) == "2026-11-21T02:00:00.000000+00:00"


@pytest.mark.parametrize(
    "dag_id", ["-rf", "a b", "dag;rm", "dägs", ".hidden", "", "x" * 251, "a\nb", "dag\u200b"]
)
def test_dangerous_dag_ids_are_rejected_before_any_command_exists(dag_id: str) -> None:
    # Given a dag id that is an option, has spaces or shell syntax, or is not ASCII
    # When a command is built with it
    with pytest.raises(RejectedError) as raised:
        cli_command.trigger_command(dag_id, "run_1", {}, airflow_major=3, logical_date=None)

    # Then it is refused with a code and a message naming the id
    assert raised.value.code == "invalid_dag_id"
    assert repr(dag_id) in raised.value.message


@pytest.mark.parametrize("run_id", ["-r", "--conf", "a b", "run;id", "rün", "", "r" * 251, "a/b"])
def test_dangerous_run_ids_are_rejected(run_id: str) -> None:
    with pytest.raises(RejectedError) as raised:
        cli_command.trigger_command("etl", run_id, {}, airflow_major=2, logical_date=None)

    assert raised.value.code == "invalid_dag_run_id"


def test_conf_that_is_not_json_is_rejected() -> None:
    # Given a conf holding something JSON cannot express
    # When the command is built
    with pytest.raises(RejectedError) as raised:
        cli_command.trigger_command(
            "etl", "run_1", {"when": datetime.now(UTC)}, airflow_major=3, logical_date=None
        )

    # Then the conf is refused, not sent
    assert raised.value.code == "conf_not_json"


def test_state_queries_are_read_only_commands_with_quoted_arguments() -> None:
    assert shlex.split(cli_command.state_command("etl", "manual__2026-11-21T02:00:00+00:00")) == [
        "dags", "state", "etl", "manual__2026-11-21T02:00:00+00:00",
    ]  # fmt: skip
    assert shlex.split(cli_command.list_runs_command("etl", airflow_major=2)) == [
        "dags", "list-runs", "--dag-id", "etl", "--output", "json",
    ]  # fmt: skip
    assert shlex.split(cli_command.list_runs_command("etl", airflow_major=3)) == [
        "dags", "list-runs", "etl", "--output", "json",
    ]  # fmt: skip
    assert shlex.split(
        cli_command.task_states_command("etl", "manual__2026-11-21T02:00:00+00:00")
    ) == [
        "tasks", "states-for-dag-run", "etl", "manual__2026-11-21T02:00:00+00:00",
        "--output", "json",
    ]  # fmt: skip
