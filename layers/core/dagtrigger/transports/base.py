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

from datetime import datetime
from typing import Protocol

from dagtrigger.models import TriggerRequest, TriggerResult


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
