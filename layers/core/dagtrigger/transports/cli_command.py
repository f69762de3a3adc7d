"""The only Airflow CLI commands dagtrigger can send to MWAA's ``/aws_mwaa/cli``.

MWAA splits the request body like a shell line, so every argument goes through
``shlex.quote`` and ids must pass the strict patterns of ``dagtrigger.ids`` first.
There is deliberately no general "run this command" function: ``dags trigger`` is the one
command that changes anything, and ``dags state``, ``dags list-runs`` and
``tasks states-for-dag-run`` only read.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dagtrigger.errors import RejectedError
from dagtrigger.ids import validate_dag_id, validate_dag_run_id


def render(argv: Sequence[str]) -> str:
    """One shell-quoted command line: ``shlex.split(render(argv)) == list(argv)``."""
    return " ".join(shlex.quote(argument) for argument in argv)


def conf_argument(conf: Mapping[str, Any]) -> str:
    """Compact, ASCII-only JSON, so no byte of the conf can reach the shell split unescaped."""
    if not isinstance(conf, Mapping):
        raise RejectedError("conf_not_object", "the DAG run conf must be a JSON object")
    try:
        return json.dumps(dict(conf), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RejectedError("conf_not_json", f"the DAG run conf is not valid JSON: {exc}") from None


def date_argument(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, the form Airflow's date parser reads back exactly."""
    if moment.tzinfo is None:
        raise ValueError("logical dates must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def trigger_argv(
    dag_id: str,
    dag_run_id: str,
    conf: Mapping[str, Any],
    *,
    airflow_major: int,
    logical_date: datetime | None,
) -> list[str]:
    """``airflow dags trigger`` arguments (without the leading ``airflow``)."""
    argv = [
        "dags",
        "trigger",
        validate_dag_id(dag_id),
        "--run-id",
        validate_dag_run_id(dag_run_id),
        "--conf",
        conf_argument(conf),
    ]
    if logical_date is not None:
        date_flag = "--logical-date" if airflow_major >= 3 else "--exec-date"
        argv += [date_flag, date_argument(logical_date), "--no-replace-microseconds"]
    argv += ["--output", "json"]
    return argv


def state_argv(dag_id: str, run_id_or_logical_date: str) -> list[str]:
    """``airflow dags state DAG RUN_ID_OR_DATE``; Airflow 2 accepts only a logical date there."""
    # An ISO logical date ("2026-11-21T02:00:00.000000+00:00") also matches the run id pattern.
    return ["dags", "state", validate_dag_id(dag_id), validate_dag_run_id(run_id_or_logical_date)]


def list_runs_argv(dag_id: str, *, airflow_major: int) -> list[str]:
    """``airflow dags list-runs`` as JSON: the dag id is positional on 3, ``--dag-id`` on 2."""
    dag = validate_dag_id(dag_id)
    selector = [dag] if airflow_major >= 3 else ["--dag-id", dag]
    return ["dags", "list-runs", *selector, "--output", "json"]


def task_states_argv(dag_id: str, dag_run_id: str) -> list[str]:
    """``airflow tasks states-for-dag-run DAG RUN_ID`` as JSON (2 and 3 both accept a run id)."""
    return [
        "tasks",
        "states-for-dag-run",
        validate_dag_id(dag_id),
        validate_dag_run_id(dag_run_id),
        "--output",
        "json",
    ]


def trigger_command(
    dag_id: str,
    dag_run_id: str,
    conf: Mapping[str, Any],
    *,
    airflow_major: int,
    logical_date: datetime | None,
) -> str:
    return render(
        trigger_argv(
            dag_id, dag_run_id, conf, airflow_major=airflow_major, logical_date=logical_date
        )
    )


def state_command(dag_id: str, run_id_or_logical_date: str) -> str:
    return render(state_argv(dag_id, run_id_or_logical_date))


def list_runs_command(dag_id: str, *, airflow_major: int) -> str:
    return render(list_runs_argv(dag_id, airflow_major=airflow_major))


def task_states_command(dag_id: str, dag_run_id: str) -> str:
    return render(task_states_argv(dag_id, dag_run_id))
