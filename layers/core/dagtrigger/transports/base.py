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


#: the Airflow run states ``started_run_states`` lists (a queued run has no start date)
STARTED_RUN_STATES = ("running", "success", "failed")


@dataclass(frozen=True)
class RunStates:
    """What Airflow listed of one DAG's started runs."""

    states: dict[str, str]  # dag_run_id -> Airflow state
    #: False when there were more runs than one read lists: an absent run may have started
    complete: bool = True


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
