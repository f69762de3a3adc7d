"""The local stack driven as the fault matrix needs it.

`ReliabilityHarness` takes a started `LocalStack` and runs every function of the template in
execution environments of its own (`instances`), so that invocations run side by side and any
one can be killed at a chosen point; it shortens the template's waits (`TimeCompression`), runs
the reconciler as its schedule would but more often, and observes what each event became: its
runs in Airflow, its records in DynamoDB Local, its message in the dead-letter queue.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import requests
from boto3.dynamodb.conditions import Key

from devstack.lifecycle import Service, stopped_on_failure
from devstack.mwaa_emulator import MwaaEmulator
from devstack.reliability import sqs
from devstack.reliability.accounting import EventFate, ScenarioEvent, fates
from devstack.reliability.airflow import AirflowWatchdog
from devstack.reliability.instances import InstancePool
from devstack.runner import LambdaRunner
from devstack.runner.invoke import InvocationResult
from devstack.stack import LocalStack

#: Lambda's concurrency per function here: the S3 event source's MaximumConcurrency (2), the
#: reconciler's ReservedConcurrentExecutions (1), and a few API and schedule instances.
DEFAULT_POOL_SIZES: Final[Mapping[str, int]] = {
    "S3EventsFunction": 2,
    "SchedulesFunction": 2,
    "ApiFunction": 4,
    "ReconcilerFunction": 1,
}
_AIRFLOW_PAGE: Final = 100
_AIRFLOW_ATTEMPTS: Final = 4
_AIRFLOW_RETRY_SECONDS: Final = 2.0
_AIRFLOW_TIMEOUT_SECONDS: Final = 60.0
#: runs created a little before the harness started still count (clocks of two processes)
_CLOCK_MARGIN: Final = timedelta(seconds=5)
_EVENTS_LOOKED_AT_PER_SECOND: Final = 30
_RECONCILER_EVENT: Final = {"source": "devstack.reliability"}


@dataclass(frozen=True)
class TimeCompression:
    """The template's waits, shortened so that a scenario takes seconds instead of an hour.

    The template's invariants are kept: one trigger's retries (its budget, plus at most one
    attempt as long as the read timeout) end well within a claim's lease, and the queue's
    visibility timeout outlasts a batch of ten triggers that each spend all of their budget, so
    that no message comes back while its batch still runs. Only the first attempt of a batch
    can wait out the read timeout in a black hole (botocore drops that connection; later ones
    wait the connect timeout): 5 + 10 x 3 s < 60 s. Waits that Airflow itself sets (an answer
    to a trigger takes seconds on a busy 2-core machine) are left generous. Template values in
    the comments.
    """

    trigger_budget_seconds: float = 2.0  # TRIGGER_BUDGET_SECONDS 10
    connect_timeout_seconds: float = 1.0  # CONNECT_TIMEOUT_SECONDS 3
    read_timeout_seconds: float = 5.0  # READ_TIMEOUT_SECONDS 15
    trigger_lease_seconds: int = 10  # TRIGGER_LEASE_SECONDS 150 (the setting's minimum is 10)
    webhook_replay_window_seconds: int = 30  # 300 (the setting's minimum is 30)
    visibility_timeout_seconds: int = 60  # the s3 events queue's VisibilityTimeout 900
    reconciler_interval_seconds: float = 2.0  # its schedule: rate(1 minute)

    def function_environment(self) -> dict[str, str]:
        return {
            "TRIGGER_BUDGET_SECONDS": f"{self.trigger_budget_seconds:g}",
            "CONNECT_TIMEOUT_SECONDS": f"{self.connect_timeout_seconds:g}",
            "READ_TIMEOUT_SECONDS": f"{self.read_timeout_seconds:g}",
            "TRIGGER_LEASE_SECONDS": str(self.trigger_lease_seconds),
            "WEBHOOK_REPLAY_WINDOW_SECONDS": str(self.webhook_replay_window_seconds),
        }


@dataclass(frozen=True)
class Drain:
    """How a scenario's events settled: after how many seconds (None: not in time), and how many
    dead letters were redriven on the way."""

    seconds: float | None
    redriven: int = 0


class ReliabilityHarness(Service):
    """A started `LocalStack` whose functions run in pools of execution environments, with
    a watchdog that starts a dead Airflow component again (`devstack.reliability.airflow`)."""

    def __init__(
        self,
        stack: LocalStack,
        *,
        work_dir: Path,
        compression: TimeCompression,
        pool_sizes: Mapping[str, int] = DEFAULT_POOL_SIZES,
    ) -> None:
        self.stack = stack
        self.work_dir = work_dir
        self.compression = compression
        self._pool_sizes = dict(pool_sizes)
        self.pools: dict[str, InstancePool] = {}
        self.template_visibility_timeout: int | None = None
        self._airflow_session: requests.Session | None = None
        self.started_at = datetime.now(UTC)
        self._reconciler_stop = threading.Event()
        self._reconciler_thread: threading.Thread | None = None
        self.watchdog: AirflowWatchdog | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        with stopped_on_failure(self):
            runner = self.runner
            for function_logical_id, size in self._pool_sizes.items():
                pool = InstancePool.for_function(
                    runner,
                    function_logical_id,
                    log_dir=self.work_dir / "instances",
                    max_instances=size,
                )
                self.pools[function_logical_id] = pool
                runner.route_invocations(function_logical_id, pool.invoke)
            # One warm instance per function, their cold starts side by side.
            with ThreadPoolExecutor(max_workers=len(self.pools)) as warmers:
                for warmed in [warmers.submit(p.prewarm, 1) for p in self.pools.values()]:
                    warmed.result()
            self.template_visibility_timeout = self.visibility_timeout()
            self.set_visibility_timeout(self.compression.visibility_timeout_seconds)
            assert self.stack.airflow is not None
            self.watchdog = AirflowWatchdog(self.stack.airflow)
            self.watchdog.start()

    def stop(self) -> None:
        """Stop everything that invokes the functions, then the pools. The pools go first so
        that invocations in flight end at once (their processes are stopped); the runner's event
        sources are stopped here too, since an unrouted function would run in this process."""
        self._reconciler_stop.set()
        for pool in self.pools.values():
            pool.stop()
        if self.stack.runner is not None:
            self.stack.runner.stop()
            for function_logical_id in self.pools:
                self.stack.runner.route_invocations(function_logical_id, None)
        self.stop_reconciling()
        self.pools.clear()
        if self.watchdog is not None:
            self.watchdog.stop()

    def live_instance_pids(self) -> list[int]:
        return [pid for pool in self.pools.values() for pid in pool.live_pids()]

    # -- parts ---------------------------------------------------------------------------------

    @property
    def runner(self) -> LambdaRunner:
        if self.stack.runner is None:
            raise RuntimeError("the local stack is not started")
        return self.stack.runner

    @property
    def emulator(self) -> MwaaEmulator:
        if self.stack.emulator is None:
            raise RuntimeError("the local stack is not started")
        return self.stack.emulator

    def pool(self, function_logical_id: str) -> InstancePool:
        return self.pools[function_logical_id]

    @property
    def s3_queue_url(self) -> str:
        return str(self.runner.resources["S3EventsQueue"].url)

    @property
    def s3_dead_letter_url(self) -> str:
        return str(self.runner.resources["S3EventsDeadLetterQueue"].url)

    def visibility_timeout(self) -> int:
        attributes = self.stack.sqs.get_queue_attributes(
            QueueUrl=self.s3_queue_url, AttributeNames=["VisibilityTimeout"]
        )
        return int(attributes["Attributes"]["VisibilityTimeout"])

    def set_visibility_timeout(self, seconds: int) -> None:
        self.stack.sqs.set_queue_attributes(
            QueueUrl=self.s3_queue_url, Attributes={"VisibilityTimeout": str(seconds)}
        )

    @contextlib.contextmanager
    def visibility_timeout_of_template(self) -> Iterator[int]:
        """The template's own visibility timeout for the block, then the compressed one again."""
        assert self.template_visibility_timeout is not None, "start() the harness first"
        self.set_visibility_timeout(self.template_visibility_timeout)
        try:
            yield self.template_visibility_timeout
        finally:
            self.set_visibility_timeout(self.compression.visibility_timeout_seconds)

    # -- driving -------------------------------------------------------------------------------

    def put_object(self, key: str, body: bytes) -> None:
        self.stack.s3.put_object(Bucket=self.stack.config.source_bucket, Key=key, Body=body)

    def reconcile_once(self) -> Any:
        return self.runner.invoke("ReconcilerFunction", dict(_RECONCILER_EVENT))

    def start_reconciling(self) -> None:
        """Run reconciler passes back to back, `reconciler_interval_seconds` apart."""
        if self._reconciler_thread is not None:
            return
        self._reconciler_stop.clear()

        def passes() -> None:
            while not self._reconciler_stop.is_set():
                self.reconcile_once()
                self._reconciler_stop.wait(self.compression.reconciler_interval_seconds)

        self._reconciler_thread = threading.Thread(target=passes, name="reconciler", daemon=True)
        self._reconciler_thread.start()

    def stop_reconciling(self) -> None:
        self._reconciler_stop.set()
        if self._reconciler_thread is not None:
            self._reconciler_thread.join()
            self._reconciler_thread = None

    def take_s3_delivery(self, marker: str, *, timeout: float) -> dict[str, Any]:
        """The SQS record of the next S3 delivery whose body holds `marker`, taken before the
        function sees it (its message is deleted; the rest of its batch goes on as usual), so
        that a scenario can deliver it itself, as often and as concurrently as it likes."""
        pool = self.pool("S3EventsFunction")
        taken: list[dict[str, Any]] = []
        got_it = threading.Event()
        lock = threading.Lock()

        def route(event: Any) -> Any:
            records = event.get("Records", []) if isinstance(event, dict) else []
            with lock:
                mine = next((r for r in records if marker in str(r.get("body", ""))), None)
                if mine is None or taken:
                    return pool.invoke(event)
                taken.append(mine)
            got_it.set()
            rest = [r for r in records if r is not mine]
            if not rest:
                return _succeeded_without_failures("S3EventsFunction")
            return pool.invoke({**event, "Records": rest})

        self.runner.route_invocations("S3EventsFunction", route)
        try:
            if not got_it.wait(timeout):
                raise TimeoutError(f"no S3 delivery holding {marker!r} within {timeout:g} s")
        finally:
            self.runner.route_invocations("S3EventsFunction", pool.invoke)
        return taken[0]

    def redrive_dead_letters(self) -> sqs.Redrive:
        return sqs.redrive_dead_letters(
            self.stack.sqs, dead_letter_url=self.s3_dead_letter_url, source_url=self.s3_queue_url
        )

    # -- observing -----------------------------------------------------------------------------

    def airflow_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of `dag_id` that Airflow created since the harness started (REST API, paged
        by id; runs of other tests in the session are left out)."""
        assert self.stack.airflow is not None
        created_after = "run_after_gte" if self.stack.airflow.major >= 3 else "execution_date_gte"
        since = (self.started_at - _CLOCK_MARGIN).isoformat()
        runs: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            page = self._airflow_get(
                f"/dags/{quote(dag_id, safe='')}/dagRuns",
                {"limit": _AIRFLOW_PAGE, "offset": offset, "order_by": "id", created_after: since},
            )
            batch = page.get("dag_runs", [])
            runs.update({str(run["dag_run_id"]): run for run in batch})
            offset += len(batch)
            if not batch or offset >= int(page.get("total_entries", 0)):
                return list(runs.values())

    def records(self, source_key: str) -> list[dict[str, Any]]:
        """Every history record of `source_key`, with its conf read back into a dict."""
        table = self.stack.history_table()
        arguments: dict[str, Any] = {
            "IndexName": "by_source",
            "KeyConditionExpression": Key("source_key").eq(source_key),
        }
        items: list[dict[str, Any]] = []
        while True:
            answer = table.query(**arguments)
            items += answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                break
            arguments["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        for item in items:
            if isinstance(item.get("conf"), str):
                item["conf"] = json.loads(item["conf"])
        return items

    def observe(
        self, events: Sequence[ScenarioEvent], *, dead_letters: bool = True
    ) -> list[EventFate]:
        runs = {dag_id: self.airflow_runs(dag_id) for dag_id in {e.dag_id for e in events}}
        records = {key: self.records(key) for key in {e.source_key for e in events}}
        bodies = sqs.peek_bodies(self.stack.sqs, self.s3_dead_letter_url) if dead_letters else []
        return fates(events, runs_by_dag=runs, records_by_source=records, dead_letter_bodies=bodies)

    def wait_for_drain(
        self,
        events: Sequence[ScenarioEvent],
        *,
        since: float,
        timeout: float,
        redrive: bool = False,
        poll_seconds: float = 2.0,
    ) -> Drain:
        """Wait until every event is settled (run, or ended without one; every record final).

        The drain's seconds count from `since` (time.monotonic()), None if it did not happen
        within `timeout`. With `redrive`, dead letters are moved back to the queue whenever some
        wait there (the operator's redrive after an outage).
        """
        deadline = time.monotonic() + timeout
        redriven = 0
        waiting = list(events)
        # A big scenario is looked at less often: each look lists its runs and reads its records.
        pause = max(poll_seconds, len(events) / _EVENTS_LOOKED_AT_PER_SECOND)
        while True:
            if redrive:
                redriven += self.redrive_dead_letters().moved
            waiting = [
                fate.event for fate in self.observe(waiting, dead_letters=False) if not fate.settled
            ]
            if not waiting:
                return Drain(time.monotonic() - since, redriven)
            if time.monotonic() >= deadline:
                return Drain(None, redriven)
            time.sleep(pause)

    def _airflow_get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """GET from Airflow's REST API as its admin; a busy API server (hundreds of runs being
        scheduled on two cores) is given a few tries before the harness gives up."""
        airflow = self.stack.airflow
        if airflow is None:
            raise RuntimeError("the local stack is not started")
        problem = "no attempt"
        for attempt in range(_AIRFLOW_ATTEMPTS):
            if attempt:
                time.sleep(_AIRFLOW_RETRY_SECONDS)
            try:
                if self._airflow_session is None:
                    self._airflow_session = airflow.api_session()
                answer = self._airflow_session.get(
                    airflow.api_url(path), params=params, timeout=_AIRFLOW_TIMEOUT_SECONDS
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                problem = f"{type(error).__name__}: {error}"
                continue
            if answer.status_code == 401:  # the JWT expired: log in again
                self._airflow_session = None
                problem = "HTTP 401"
                continue
            answer.raise_for_status()
            body: dict[str, Any] = answer.json()
            return body
        raise RuntimeError(f"Airflow did not answer GET {path} ({problem})")


def _succeeded_without_failures(function_logical_id: str) -> InvocationResult:
    """An SQS invocation that handled every record (each message is deleted)."""
    return InvocationResult(function_logical_id, str(uuid.uuid4()), {"batchItemFailures": []})
