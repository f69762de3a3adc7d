"""Reading what the Airflow CLI printed, as MWAA's ``/aws_mwaa/cli`` returns it.

MWAA gives no exit code: a failed command shows as a traceback on stderr whose last line names
the exception (``airflow.exceptions.DagNotFound: Dag id x not found``). Successful commands print
on stdout; with ``--output json`` one line of JSON among possible warnings, else a table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_TRACEBACK_HEADER = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"(?P<name>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?")
#: what Airflow's console prints instead of an empty JSON list
_NO_DATA = "No data found"
_EXCEPTION_SUFFIXES = ("Error", "Exception", "Exists", "NotFound", "Exit", "Interrupt", "Warning")
_STATE_WORD = re.compile(r"[a-z][a-z_]*")  # queued, running, success, failed ("None" is not)
#: argparse errors from Airflow's CLI parser ("airflow command error: ..., see help above.")
_USAGE_ERROR = re.compile(r"(?:airflow )?command error: (?P<message>.*)")


@dataclass(frozen=True)
class CliError:
    exception: str  # the exception's class name, without its module
    message: str


def last_exception(stderr: str) -> CliError | None:
    """The exception a traceback on stderr ended with, or None when there is no traceback."""
    if _TRACEBACK_HEADER not in stderr:
        return None
    after_traceback = stderr.rsplit(_TRACEBACK_HEADER, 1)[1].splitlines()
    # Frames and source lines are indented; multi-line messages (SQL, "DETAIL: ...") follow the
    # exception line, so the last unindented line that names an exception class is the one.
    candidates = [
        match
        for line in after_traceback
        if line.strip() and not line[0].isspace()
        for match in [_EXCEPTION_LINE.fullmatch(line.strip())]
        if match
    ]
    for match in reversed(candidates):
        if _looks_like_exception(match.group("name")):
            name = match.group("name").rsplit(".", 1)[-1]
            return CliError(name, (match.group("message") or "").strip())
    return CliError("UnknownError", after_traceback[-1].strip() if after_traceback else "")


def _looks_like_exception(name: str) -> bool:
    return "." in name or name.endswith(_EXCEPTION_SUFFIXES)


def usage_error(stderr: str) -> str | None:
    """The complaint of Airflow's argument parser, if the command line itself was refused."""
    for line in reversed(stderr.splitlines()):
        match = _USAGE_ERROR.search(line)
        if match:
            return match.group("message").strip()
    return None


def json_records(stdout: str) -> list[Mapping[str, Any]] | None:
    """The records of ``--output json``, skipping warning lines; None when there is no JSON."""
    if stdout.strip().endswith(_NO_DATA):
        return []
    for candidate in _json_candidates(stdout):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, Mapping):
            return [value]
        if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
            return value
    return None


def _json_candidates(stdout: str) -> Iterator[str]:
    stripped = stdout.strip()
    if stripped.startswith(("[", "{")):
        yield stripped
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith(("[", "{")):
            yield line


def find_run(records: list[Mapping[str, Any]], dag_run_id: str) -> Mapping[str, Any] | None:
    """The record of ``dag_run_id`` (keyed ``dag_run_id`` by trigger, ``run_id`` by list-runs)."""
    for record in records:
        if dag_run_id in (record.get("dag_run_id"), record.get("run_id")):
            return record
    return None


def dag_state_line(stdout: str) -> str | None:
    """``dags state`` prints ``STATE`` or ``STATE, {conf}`` (or ``None``) as its last line."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    state = lines[-1].split(",", 1)[0].strip()
    return state if _STATE_WORD.fullmatch(state) else None
