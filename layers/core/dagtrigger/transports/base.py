"""The interface every transport implements.

A transport makes exactly one attempt and classifies the outcome:

* returns ``TriggerResult`` on success, with ``already_existed=True`` when Airflow already
  has a run with our ``dag_run_id`` (HTTP 409 / ``DagRunAlreadyExists`` for our run id);
* raises ``RejectedError`` for permanent problems (unknown DAG, conf refused, 4xx other
  than 409/429), keeping Airflow's message;
* raises ``TransientTriggerError`` for throttling, 5xx, timeouts and connection errors.

Retries, backoff and rate limiting wrap transports from outside (``dagtrigger.transports.retry``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class AirflowTransport(Protocol):
    def trigger(self, request: TriggerRequest) -> TriggerResult: ...

    def get_dag_run_state(
        self, dag_id: str, dag_run_id: str, *, triggered_after: datetime | None = None
    ) -> str | None:
        """Airflow's state of one run (``queued``, ``running``, ``success``, ``failed``).

        None when Airflow has no such run. ``triggered_after`` (when we triggered the run) lets a
        transport that cannot address the run directly search only the runs created since then;
        a transport that always addresses the run directly ignores it.
        """
        ...

    def started_run_states(self, dag_id: str, *, started_since: datetime) -> RunStates:
        """The states of the DAG's runs that started at or after ``started_since``.

        One bounded list read per DAG, whatever the number of runs we wait for: how the
        reconciler follows many runs without a call per run. Runs that have not started
        (queued) are not listed.
        """
        ...

    def failed_task_ids(self, dag_id: str, dag_run_id: str) -> FailedTasks:
        """The tasks of one run that ended ``failed``: one call, read as background work.

        At most ``MAX_FAILED_TASK_IDS`` distinct task ids are returned, with Airflow's count of
        failed task instances; ``unavailable`` says why a transport could not ask.
        """
        ...

    def dag_paused(self, dag_id: str) -> bool | None:
        """Whether the DAG is paused (its queued runs wait), read as background work and
        reused for a short while; None when the transport cannot tell."""
        ...


#: the Airflow run states ``started_run_states`` lists (a queued run has no start date)
STARTED_RUN_STATES = ("running", "success", "failed")


@dataclass(frozen=True)
class RunTimes:
    """When Airflow says a run started and ended, as Airflow wrote them (None: not yet)."""

    started_at: str | None = None
    ended_at: str | None = None


@dataclass(frozen=True)
class RunStates:
    """What Airflow listed of one DAG's started runs."""

    states: dict[str, str]  # dag_run_id -> Airflow state
    #: False when there were more runs than one read lists: an absent run may have started
    complete: bool = True
    #: dag_run_id -> its start and end, for the runs whose listing carried them
    times: dict[str, RunTimes] = field(default_factory=dict)


def run_times(run: Mapping[str, Any]) -> RunTimes:
    """The start and end dates of a run as Airflow lists it (REST and CLI use the same keys)."""
    started, ended = run.get("start_date"), run.get("end_date")
    return RunTimes(
        started_at=str(started) if started else None, ended_at=str(ended) if ended else None
    )


#: the most task ids of one failed run that are kept (the count says how many failed in all)
MAX_FAILED_TASK_IDS = 20


@dataclass(frozen=True)
class FailedTasks:
    """The tasks of a run that ended ``failed``, as far as one call could tell."""

    #: distinct task ids, in Airflow's order, at most ``MAX_FAILED_TASK_IDS``
    task_ids: tuple[str, ...] = ()
    #: failed task instances Airflow counted (a mapped task counts once per failed map index)
    count: int = 0
    #: why the transport could not read them (None: it did)
    unavailable: str | None = None


def failed_tasks_from(task_instances: Iterable[Any], *, count: int | None = None) -> FailedTasks:
    """``FailedTasks`` from task instance records (REST or CLI), keeping only ``failed`` ones."""
    failed = [
        str(instance["task_id"])
        for instance in task_instances
        if isinstance(instance, Mapping)
        and instance.get("state") == "failed"
        and isinstance(instance.get("task_id"), str)
    ]
    distinct = tuple(dict.fromkeys(failed))[:MAX_FAILED_TASK_IDS]
    return FailedTasks(task_ids=distinct, count=max(count or 0, len(failed)))


@dataclass(frozen=True)
class TriggerRequest:
    environment: EnvironmentRef
    dag_id: str
    dag_run_id: str
    conf: dict[str, Any]
    note: str | None = None
    logical_date: datetime | None = None  # None: Airflow 3 gets null, Airflow 2 gets "now"


@dataclass(frozen=True)
class TriggerResult:
    dag_run_id: str
    logical_date: str | None
    state: str | None
    already_existed: bool = False  # Airflow already had our run id: a redelivery, not an error
    dag_paused: bool | None = None  # True: the run will sit queued until the DAG is unpaused
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvironmentRef:
    """An MWAA (or self-managed Airflow) environment as a transport sees it."""

    alias: str
    name: str
    transport: TransportKind
    airflow_major: int | None = None  # None: ask GetEnvironment (MWAA) once and cache
    base_url: str | None = None  # airflow_rest only
    credentials_secret: str | None = None  # airflow_rest only: secret with username/password


class TransportKind(StrEnum):
    """How a transport reaches Airflow; ``factory`` maps each kind to its module."""

    INVOKE_REST_API = "invoke_rest_api"
    CLI = "cli"
    AIRFLOW_REST = "airflow_rest"
