"""Fuzz: the MWAA CLI command builder (``dagtrigger.transports.cli_command``).

MWAA's ``/aws_mwaa/cli`` takes the request body as one command line and splits it with
``shlex.split`` (no shell runs). The local stack's MWAA emulator splits it the same way and
checks it against MWAA's allowlist (``devstack.mwaa_emulator.cli_commands.parse_cli_command``),
so every body built here goes through that very function. The properties:

* any allowed DAG id, run id, conf (any JSON object: unicode, quotes, newlines, ``--`` prefixes,
  shell syntax, huge numbers, deep nesting) and logical date give a body that splits back into
  exactly the intended argv, the conf parsing back to the same object;
* any id outside the strict patterns is refused before a command line is rendered.
"""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagtrigger import ids
from dagtrigger.errors import RejectedError
from dagtrigger.transports import cli_command
from devstack.mwaa_emulator.cli_commands import parse_cli_command

DAG_IDS = st.from_regex(ids.DAG_ID_PATTERN, fullmatch=True)
RUN_IDS = st.from_regex(ids.DAG_RUN_ID_PATTERN, fullmatch=True)

#: text that means something to a shell, to an option parser or to JSON
HOSTILE_TEXT = st.sampled_from(
    [
        "'",
        '"',
        "\\",
        "'\"'\"'",
        "--conf",
        "-r",
        "--",
        "--output=table",
        "$(id)",
        "${HOME}",
        "`id`",
        "; rm -rf /",
        "a && b || c",
        "| cat",
        "> /tmp/x",
        "line\nbreak",
        "tab\there",
        "\r\n",
        "\x00",
        "#comment",
        "~",
        "*",
        "é✓🚀",
        "\u200b",
        "\ud800",  # a lone surrogate: JSON escapes it, so it travels as ASCII
        "{}",
        '{"conf": 1}',
    ]
)
TEXT = st.one_of(st.text(), HOSTILE_TEXT, st.builds("".join, st.lists(HOSTILE_TEXT, max_size=4)))
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=25,
)
CONFS = st.dictionaries(TEXT, JSON_VALUES, max_size=6)
# Airflow's own date range, in any whole-minute UTC offset
OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
LOGICAL_DATES = st.none() | st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=OFFSETS
)


def conf_json(conf: dict[str, Any]) -> str:
    """The conf as the command must carry it: compact, ASCII-only JSON."""
    return json.dumps(conf, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


@given(
    dag_id=DAG_IDS,
    run_id=RUN_IDS,
    conf=CONFS,
    major=st.sampled_from([2, 3]),
    logical_date=LOGICAL_DATES,
)
def test_trigger_body_splits_back_into_exactly_the_intended_argv(
    dag_id: str, run_id: str, conf: dict[str, Any], major: int, logical_date: datetime | None
) -> None:
    # Given any allowed ids, any JSON object as conf, and a logical date or none
    # When the trigger command's body is built
    body = cli_command.trigger_command(
        dag_id, run_id, conf, airflow_major=major, logical_date=logical_date
    )

    # Then MWAA's split gives exactly the argv we meant, and MWAA's allowlist accepts it
    expected = ["dags", "trigger", dag_id, "--run-id", run_id, "--conf", conf_json(conf)]
    if logical_date is not None:
        date_flag = "--logical-date" if major >= 3 else "--exec-date"
        expected += [date_flag, cli_command.date_argument(logical_date)]
        expected += ["--no-replace-microseconds"]
    expected += ["--output", "json"]
    assert shlex.split(body) == expected
    parsed = parse_cli_command(body)
    assert parsed.command == ("dags", "trigger")
    assert list(parsed.argv) == expected
    # And the body is one ASCII line: nothing in the conf reaches the split unescaped
    assert body.isascii()
    assert "\n" not in body
    # And the conf and the date read back as the same values
    assert json.loads(expected[6]) == conf
    if logical_date is not None:
        sent = datetime.fromisoformat(expected[8])
        assert sent == logical_date
        assert sent.utcoffset() == timedelta(0)


@given(dag_id=DAG_IDS, run_id=RUN_IDS, major=st.sampled_from([2, 3]))
def test_read_only_bodies_split_back_into_their_argv(dag_id: str, run_id: str, major: int) -> None:
    state = cli_command.state_command(dag_id, run_id)
    list_runs = cli_command.list_runs_command(dag_id, airflow_major=major)

    assert parse_cli_command(state).argv == ("dags", "state", dag_id, run_id)
    selector = (dag_id,) if major >= 3 else ("--dag-id", dag_id)
    assert parse_cli_command(list_runs).argv == (
        "dags",
        "list-runs",
        *selector,
        "--output",
        "json",
    )


_DAG_ID = re.compile(ids.DAG_ID_PATTERN)
_RUN_ID = re.compile(ids.DAG_RUN_ID_PATTERN)

#: ids Airflow's own patterns would admit, or that only look harmless, and plain garbage
NEAR_MISS_IDS = st.one_of(
    st.text(),
    st.from_regex(r"\A-[\w.-]{0,20}\Z"),  # an option: "-rf", "--conf"
    st.from_regex(r"\A[\w.-]*[^\x00-\x7f][\w.-]*\Z"),  # non-ASCII letters
    st.builds(lambda head, tail: head + tail, DAG_IDS, HOSTILE_TEXT),
    st.builds(lambda id_, extra: id_ + "x" * extra, DAG_IDS, st.integers(250, 300)),
)


@given(dag_id=NEAR_MISS_IDS.filter(lambda value: not _DAG_ID.fullmatch(value)), conf=CONFS)
def test_a_dag_id_outside_the_pattern_is_refused_before_any_command_exists(
    dag_id: str, conf: dict[str, Any]
) -> None:
    # Given a DAG id our pattern refuses
    # When a trigger command is asked for (render watched: no command line may be built)
    with mock.patch.object(cli_command, "render", wraps=cli_command.render) as render:
        with pytest.raises(RejectedError) as raised:
            cli_command.trigger_command(dag_id, "run_1", conf, airflow_major=3, logical_date=None)
        with pytest.raises(RejectedError):
            cli_command.state_command(dag_id, "run_1")
        with pytest.raises(RejectedError):
            cli_command.list_runs_command(dag_id, airflow_major=2)

    # Then it is refused with the code and the id, and nothing was rendered
    assert raised.value.code == "invalid_dag_id"
    assert repr(dag_id) in raised.value.message
    render.assert_not_called()


@given(run_id=NEAR_MISS_IDS.filter(lambda value: not _RUN_ID.fullmatch(value)))
def test_a_run_id_outside_the_pattern_is_refused_before_any_command_exists(run_id: str) -> None:
    with mock.patch.object(cli_command, "render", wraps=cli_command.render) as render:
        with pytest.raises(RejectedError) as raised:
            cli_command.trigger_command("etl", run_id, {}, airflow_major=2, logical_date=None)
        with pytest.raises(RejectedError):
            cli_command.state_command("etl", run_id)

    assert raised.value.code == "invalid_dag_run_id"
    render.assert_not_called()


NOT_JSON = st.sampled_from(
    [float("nan"), float("inf"), -float("inf"), datetime(2026, 1, 1, tzinfo=UTC), b"bytes", {1, 2}]
)


@given(conf=CONFS, key=TEXT, bad=NOT_JSON)
def test_a_conf_json_cannot_express_is_refused_not_sent(
    conf: dict[str, Any], key: str, bad: Any
) -> None:
    with (
        mock.patch.object(cli_command, "render", wraps=cli_command.render) as render,
        pytest.raises(RejectedError) as raised,
    ):
        cli_command.trigger_command(
            "etl", "run_1", {**conf, key: bad}, airflow_major=3, logical_date=None
        )

    assert raised.value.code == "conf_not_json"
    render.assert_not_called()
