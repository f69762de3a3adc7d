"""Airflow's stable REST API semantics, shared by the InvokeRestApi and direct REST transports.

Both transports reach the same endpoints (``/dags/{dag_id}/dagRuns`` relative to ``/api/v1`` on
Airflow 2 or ``/api/v2`` on Airflow 3); they differ only in how one call is carried.
``AirflowApiTransport`` holds everything about what Airflow's answers mean; the transports of
``invoke_rest_api`` and ``airflow_rest`` subclass it to carry the calls.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from dagtrigger.clock import utc_now
from dagtrigger.errors import (
    AccessRefusedError,
    DagTriggerError,
    RejectedError,
    TransientTriggerError,
)
from dagtrigger.ids import mentions_run_id, validate_dag_id, validate_dag_run_id
from dagtrigger.observability import logger
from dagtrigger.transports.base import (
    STARTED_RUN_STATES,
    EnvironmentRef,
    FailedTasks,
    RunStates,
    RunTimes,
    TriggerRequest,
    TriggerResult,
    failed_tasks_from,
    run_times,
)
from dagtrigger.transports.rate_budget import CallPriority, SharedRateBudget

#: how many fresh logical dates to try when another run holds ours (Airflow 2)
LOGICAL_DATE_COLLISION_RETRIES = 3
#: seconds a DAG's paused flag is reused before it is read again
PAUSED_CACHE_SECONDS = 30.0
#: Airflow's largest page of DAG runs (``[api] maximum_page_limit`` default)
RUNS_PAGE_LIMIT = 100
#: how long before our recorded trigger time a run search starts (clock skew between us and Airflow)
RUN_SEARCH_MARGIN = timedelta(minutes=5)
#: most pages of ``RUNS_PAGE_LIMIT`` runs read when searching from a trigger time
RUN_SEARCH_MAX_PAGES = 10
#: Airflow's batch list of DAG runs (2 and 3): a short path, whatever the DAG and run ids
BATCH_RUN_LIST_PATH = "/dags/~/dagRuns/list"
#: Airflow's batch list of task instances (3, and 2.7+ for its ``dag_run_ids`` filter)
BATCH_TASK_INSTANCE_LIST_PATH = "/dags/~/dagRuns/~/taskInstances/list"
_MESSAGE_LIMIT = 1000

#: a JSON object sent as a request's body or query
Json = Mapping[str, Any]


@dataclass(frozen=True)
class ApiReply:
    status: int
    body: Any = None  # parsed JSON when the answer was JSON, else its text

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def airflow_message(body: Any) -> str:
    """Airflow's own explanation from an error body (connexion problem+json or FastAPI detail)."""
    if isinstance(body, Mapping):
        detail = body.get("detail")
        title = body.get("title")
        if isinstance(detail, list):  # FastAPI validation errors (Airflow 3, HTTP 422)
            text = "; ".join(_validation_problem(problem) for problem in detail)
        elif isinstance(detail, Mapping):  # Airflow 3 database errors
            text = "; ".join(str(detail[key]) for key in ("reason", "message") if detail.get(key))
        elif detail is not None:
            text = str(detail)
        else:
            text = str(dict(body))
        if isinstance(title, str) and title and title not in text:
            text = f"{title}: {text}"
        return text[:_MESSAGE_LIMIT]
    return str(body if body is not None else "")[:_MESSAGE_LIMIT]


def _validation_problem(problem: Any) -> str:
    if not isinstance(problem, Mapping):
        return str(problem)
    location = ".".join(str(part) for part in problem.get("loc", ()))
    return f"{location}: {problem.get('msg', '')}" if location else str(problem.get("msg", ""))


def error_for_status(reply: ApiReply, *, doing: str) -> DagTriggerError:
    """Classify a non-success answer from Airflow (other than the 409 a trigger handles)."""
    message = f"Airflow refused to {doing}: HTTP {reply.status}: {airflow_message(reply.body)}"
    status = reply.status
    if status == 429 or status == 408 or status >= 500:
        return TransientTriggerError(message, http_status=status)
    if status == 404:
        return RejectedError("dag_not_found", message, http_status=status)
    if status in (400, 422):
        code = "conf_rejected" if "conf" in message.lower() else "bad_request"
        return RejectedError(code, message, http_status=status)
    if status in (401, 403):
        return AccessRefusedError("airflow_unauthorized", message, http_status=status)
    return RejectedError("airflow_error", message, http_status=status)


def iso_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def trigger_body(
    request: TriggerRequest, *, airflow_major: int, logical_date: datetime | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"dag_run_id": request.dag_run_id, "conf": dict(request.conf)}
    if airflow_major >= 3 or logical_date is not None:
        # Airflow 3 requires the key (null: no logical date, so no collision is possible).
        body["logical_date"] = iso_timestamp(logical_date) if logical_date is not None else None
    if request.note is not None:
        body["note"] = request.note
    return body


def already_triggered(request: TriggerRequest, run: Mapping[str, Any]) -> TriggerResult:
    """Airflow already has our run (a redelivery): ``run`` is what is known of it, maybe ``{}``."""
    return result_from_run(run, dag_run_id=request.dag_run_id, already_existed=True)


def result_from_run(
    run: Mapping[str, Any], *, dag_run_id: str, already_existed: bool
) -> TriggerResult:
    logical_date = run.get("logical_date") or run.get("execution_date")
    state = run.get("state")
    return TriggerResult(
        dag_run_id=str(run.get("dag_run_id") or dag_run_id),
        logical_date=str(logical_date) if logical_date else None,
        state=str(state) if state else None,
        already_existed=already_existed,
    )


@dataclass
class _Attempt:
    logical_date: datetime | None
    collisions: int = 0
    details: dict[str, Any] = field(default_factory=dict)


class AirflowApiTransport(ABC):
    """``AirflowTransport`` over Airflow's REST API (2 and 3) for one environment.

    A subclass carries the calls: ``call`` returns Airflow's status and body, its refusals
    included, and raises ``TransientTriggerError`` only for faults of the carrying itself
    (throttling, timeouts, lost connections).
    """

    #: the refusal's code when a DAG's API path is longer than ``max_path_length``
    path_too_long_code: ClassVar[str] = "path_too_long"

    def __init__(
        self,
        environment: EnvironmentRef,
        *,
        now: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        paused_cache_seconds: float = PAUSED_CACHE_SECONDS,
        rate_budget: SharedRateBudget | None = None,
    ) -> None:
        self.environment = environment
        self._rate_budget = rate_budget
        self._now = now
        self._monotonic = monotonic
        self._paused_cache_seconds = paused_cache_seconds
        self._paused: dict[str, tuple[bool, float]] = {}  # dag_id -> (is_paused, read at)

    @property
    @abstractmethod
    def max_path_length(self) -> int | None:
        """The longest path ``call`` can carry, None for no limit."""

    @abstractmethod
    def airflow_major(self) -> int:
        """The environment's Airflow major version (2 or 3)."""

    @abstractmethod
    def call(self, method: str, path: str, *, body: Json | None, query: Json | None) -> ApiReply:
        """One call to ``path``, relative to the versioned API root."""

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Json | None = None,
        query: Json | None = None,
        priority: CallPriority,
    ) -> ApiReply:
        """``call``, once the environment's shared rate budget has a slot for ``priority``."""
        if self._rate_budget is not None:
            self._rate_budget.acquire(self.environment.name, priority)
        return self.call(method, path, body=body, query=query)

    def trigger(self, request: TriggerRequest) -> TriggerResult:
        dag_id = validate_dag_id(request.dag_id)
        validate_dag_run_id(request.dag_run_id)
        path = self._checked_path(f"/dags/{dag_id}/dagRuns", what=f"dag_id {dag_id!r}")
        major = self.airflow_major()
        result = self._post_until_settled(request, path, major)
        return replace(result, dag_paused=self.dag_paused(dag_id, priority=CallPriority.TRIGGER))

    def get_dag_run_state(
        self, dag_id: str, dag_run_id: str, *, triggered_after: datetime | None = None
    ) -> str | None:
        run = self.find_run(
            validate_dag_id(dag_id),
            validate_dag_run_id(dag_run_id),
            triggered_after=triggered_after,
            priority=CallPriority.BACKGROUND,
        )
        state = run.get("state") if run else None
        return str(state) if state else None

    def started_run_states(self, dag_id: str, *, started_since: datetime) -> RunStates:
        """Airflow's batch list, filtered by DAG, start date and state, oldest first.

        ``POST /dags/~/dagRuns/list`` takes the same fields on Airflow 2 and 3 and its path fits
        InvokeRestApi's 64 characters whatever the ids, so one call reads up to
        ``RUNS_PAGE_LIMIT`` runs of a DAG; at most ``RUN_SEARCH_MAX_PAGES`` pages are read.
        """
        moment = started_since if started_since.tzinfo else started_since.replace(tzinfo=UTC)
        body: dict[str, Any] = {
            "dag_ids": [validate_dag_id(dag_id)],
            "states": list(STARTED_RUN_STATES),
            "start_date_gte": iso_timestamp(moment),
            "order_by": "id",
            "page_limit": RUNS_PAGE_LIMIT,
        }
        states: dict[str, str] = {}
        times: dict[str, RunTimes] = {}
        for page_number in range(RUN_SEARCH_MAX_PAGES):
            body["page_offset"] = page_number * RUNS_PAGE_LIMIT
            reply = self.send(
                "POST", BATCH_RUN_LIST_PATH, body=body, priority=CallPriority.BACKGROUND
            )
            if not reply.ok or not isinstance(reply.body, Mapping):
                raise error_for_status(reply, doing=f"list the runs of DAG {dag_id!r}")
            runs = [run for run in reply.body.get("dag_runs") or () if isinstance(run, Mapping)]
            for run in runs:
                run_id, state = run.get("dag_run_id"), run.get("state")
                if isinstance(run_id, str) and isinstance(state, str):
                    states[run_id] = state
                    times[run_id] = run_times(run)
            if len(runs) < RUNS_PAGE_LIMIT:
                return RunStates(states, times=times)
        return RunStates(states, complete=False, times=times)

    def failed_task_ids(self, dag_id: str, dag_run_id: str) -> FailedTasks:
        """The run's failed task instances, in one background call.

        ``GET /dags/{dag_id}/dagRuns/{run_id}/taskInstances?state=failed`` (Airflow 2 and 3)
        when its path fits the transport; otherwise (InvokeRestApi's 64 characters, which our
        run ids nearly always exceed) the batch list ``POST /dags/~/dagRuns/~/taskInstances/list``
        filtered by DAG, run and state, whose ``dag_run_ids`` filter needs Airflow 2.7 or later
        (an older Airflow refuses it with 400, which the caller records as the reason).
        """
        dag_id, dag_run_id = validate_dag_id(dag_id), validate_dag_run_id(dag_run_id)
        path = f"/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances"
        if self._fits(path):
            query = {"state": "failed", "limit": RUNS_PAGE_LIMIT}
            reply = self.send("GET", path, query=query, priority=CallPriority.BACKGROUND)
        else:
            body = {
                "dag_ids": [dag_id],
                "dag_run_ids": [dag_run_id],
                "state": ["failed"],
                "page_limit": RUNS_PAGE_LIMIT,
            }
            reply = self.send(
                "POST", BATCH_TASK_INSTANCE_LIST_PATH, body=body, priority=CallPriority.BACKGROUND
            )
        if not reply.ok or not isinstance(reply.body, Mapping):
            raise error_for_status(reply, doing=f"list the failed tasks of run {dag_run_id!r}")
        total = reply.body.get("total_entries")
        return failed_tasks_from(
            reply.body.get("task_instances") or (),
            count=total if isinstance(total, int) else None,
        )

    def dag_paused(
        self, dag_id: str, *, priority: CallPriority = CallPriority.BACKGROUND
    ) -> bool | None:
        """Whether the DAG is paused (its runs stay queued); None when Airflow cannot say.

        Known answers are reused for a short while, so a burst of triggers for one DAG does not
        double the calls to the web server. A trigger asks with its own priority; the
        reconciler's read is background work.
        """
        known = self._paused.get(dag_id)
        if known is not None and self._monotonic() - known[1] < self._paused_cache_seconds:
            return known[0]
        paused = self._read_paused(dag_id, priority)
        if paused is not None:
            self._paused[dag_id] = (paused, self._monotonic())
        return paused

    def _read_paused(self, dag_id: str, priority: CallPriority) -> bool | None:
        path = f"/dags/{dag_id}"
        if not self._fits(path):
            return None
        try:
            reply = self.send("GET", path, priority=priority)
        except DagTriggerError as exc:
            logger.info("could not tell whether the DAG is paused", extra={"reason": str(exc)})
            return None
        paused = (
            reply.body.get("is_paused") if reply.ok and isinstance(reply.body, Mapping) else None
        )
        return paused if isinstance(paused, bool) else None

    def find_run(
        self,
        dag_id: str,
        dag_run_id: str,
        *,
        triggered_after: datetime | None = None,
        priority: CallPriority = CallPriority.TRIGGER,
    ) -> Mapping[str, Any] | None:
        """The run with this id, or None when Airflow has none (raises when it cannot tell).

        When the run's own path is too long to carry, runs are listed instead: those
        created since ``triggered_after`` when it is given, else only the newest ones.
        """
        path = f"/dags/{dag_id}/dagRuns/{dag_run_id}"
        if self._fits(path):
            reply = self.send("GET", path, priority=priority)
            if reply.status == 404:
                return None
            if not reply.ok or not isinstance(reply.body, Mapping):
                raise error_for_status(reply, doing=f"read DAG run {dag_run_id!r}")
            return reply.body
        if triggered_after is not None:
            return self._search_runs_since(dag_id, dag_run_id, triggered_after, priority)
        return self._search_recent_runs(dag_id, dag_run_id, priority)

    def _post_until_settled(self, request: TriggerRequest, path: str, major: int) -> TriggerResult:
        attempt = _Attempt(logical_date=self._logical_date_for(request, major))
        while True:
            body = trigger_body(request, airflow_major=major, logical_date=attempt.logical_date)
            reply = self.send("POST", path, body=body, priority=CallPriority.TRIGGER)
            if reply.ok and isinstance(reply.body, Mapping):
                result = result_from_run(
                    reply.body, dag_run_id=request.dag_run_id, already_existed=False
                )
                return replace(result, details=attempt.details)
            if reply.ok:  # a success without the run in it: unknown outcome, safe to repeat
                raise TransientTriggerError(
                    f"Airflow's answer to the trigger was not a DAG run: {reply.body!r:.200}"
                )
            if reply.status != 409:
                raise error_for_status(reply, doing=f"trigger DAG {request.dag_id!r}")
            existing = self._existing_run_after_conflict(request, reply, major, attempt)
            if existing is not None:
                return existing
            self._next_logical_date(request, attempt)

    def _logical_date_for(self, request: TriggerRequest, major: int) -> datetime | None:
        if request.logical_date is not None:
            return request.logical_date
        # Airflow 2 needs a logical date; "now" with microseconds makes a collision detectable.
        return None if major >= 3 else self._now()

    def _existing_run_after_conflict(
        self, request: TriggerRequest, reply: ApiReply, major: int, attempt: _Attempt
    ) -> TriggerResult | None:
        """Our run when the 409 was about our run id; None when another run holds the date."""
        names_our_run = mentions_run_id(airflow_message(reply.body), request.dag_run_id)
        only_run_id_can_clash = major >= 3 and attempt.logical_date is None
        if names_our_run or only_run_id_can_clash:
            return already_triggered(request, self._run_details_if_possible(request))
        run = self.find_run(request.dag_id, request.dag_run_id)
        return already_triggered(request, run) if run is not None else None

    def _run_details_if_possible(self, request: TriggerRequest) -> Mapping[str, Any]:
        try:
            return self.find_run(request.dag_id, request.dag_run_id) or {}
        except DagTriggerError as exc:
            logger.info("run exists, but its details are unavailable", extra={"reason": str(exc)})
            return {}

    def _next_logical_date(self, request: TriggerRequest, attempt: _Attempt) -> None:
        if request.logical_date is not None:
            raise RejectedError(
                "logical_date_taken",
                f"DAG {request.dag_id!r} already has another run at the requested logical date "
                f"{iso_timestamp(request.logical_date)}",
                http_status=409,
            )
        if attempt.collisions >= LOGICAL_DATE_COLLISION_RETRIES:
            raise TransientTriggerError(
                f"DAG {request.dag_id!r}: {attempt.collisions + 1} logical dates in a row were "
                "taken by other runs",
                http_status=409,
            )
        attempt.collisions += 1
        attempt.logical_date = self._now()
        attempt.details["logical_date_collisions"] = attempt.collisions
        logger.info("logical date taken by another run, trying a new one")

    def _search_recent_runs(
        self, dag_id: str, dag_run_id: str, priority: CallPriority
    ) -> Mapping[str, Any] | None:
        """Find a run whose id makes its path too long to carry among the newest runs.

        Airflow lists runs oldest first by default, so read the total, then the last page. A run
        older than the newest ``RUNS_PAGE_LIMIT`` is not found (reported as absent).
        """
        path = self._checked_path(f"/dags/{dag_id}/dagRuns", what=f"dag_id {dag_id!r}")
        total = self._list_runs(path, priority, limit=1, offset=0).get("total_entries")
        offset = max(0, int(total) - RUNS_PAGE_LIMIT) if isinstance(total, int) else 0
        page = self._list_runs(path, priority, limit=RUNS_PAGE_LIMIT, offset=offset)
        return _run_named(page, dag_run_id)

    def _search_runs_since(
        self, dag_id: str, dag_run_id: str, triggered_after: datetime, priority: CallPriority
    ) -> Mapping[str, Any] | None:
        """Find a run among those Airflow dated at or after our trigger time (less a margin).

        Pages go oldest first (by id, i.e. creation order), so runs created while paging only
        add pages at the end. At most ``RUN_SEARCH_MAX_PAGES`` pages are read.
        """
        path = self._checked_path(f"/dags/{dag_id}/dagRuns", what=f"dag_id {dag_id!r}")
        window = self._created_since_filter(triggered_after - RUN_SEARCH_MARGIN)
        for page_number in range(RUN_SEARCH_MAX_PAGES):
            page = self._list_runs(
                path,
                priority,
                limit=RUNS_PAGE_LIMIT,
                offset=page_number * RUNS_PAGE_LIMIT,
                filters=window,
            )
            run = _run_named(page, dag_run_id)
            if run is not None:
                return run
            if len(page.get("dag_runs") or ()) < RUNS_PAGE_LIMIT:
                return None
        logger.warning(
            "run not among the runs created since its trigger; reported as absent",
            extra={
                "dag_id": dag_id,
                "dag_run_id": dag_run_id,
                "runs_read": RUN_SEARCH_MAX_PAGES * RUNS_PAGE_LIMIT,
            },
        )
        return None

    def _created_since_filter(self, since: datetime) -> dict[str, str]:
        """Airflow's list filter for runs dated at or after ``since``, oldest first.

        Airflow 3 dates our runs by ``run_after`` (their logical date is null); Airflow 2 only
        filters by ``execution_date``, which our transports set to the trigger time.
        """
        moment = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        date_filter = "run_after_gte" if self.airflow_major() >= 3 else "execution_date_gte"
        return {date_filter: iso_timestamp(moment), "order_by": "id"}

    def _list_runs(
        self,
        path: str,
        priority: CallPriority,
        *,
        limit: int,
        offset: int,
        filters: Mapping[str, str] | None = None,
    ) -> Mapping[str, Any]:
        query: dict[str, Any] = {"limit": limit, "offset": offset, **(filters or {})}
        reply = self.send("GET", path, query=query, priority=priority)
        if not reply.ok or not isinstance(reply.body, Mapping):
            raise error_for_status(reply, doing="list DAG runs")
        return reply.body

    def _fits(self, path: str) -> bool:
        limit = self.max_path_length
        return limit is None or len(path) <= limit

    def _checked_path(self, path: str, *, what: str) -> str:
        if not self._fits(path):
            raise RejectedError(
                self.path_too_long_code,
                f"{what} makes the API path {len(path)} characters long; this transport allows "
                f"{self.max_path_length}: use a shorter dag_id or another transport",
            )
        return path


def _run_named(page: Mapping[str, Any], dag_run_id: str) -> Mapping[str, Any] | None:
    for run in page.get("dag_runs") or ():
        if isinstance(run, Mapping) and run.get("dag_run_id") == dag_run_id:
            return run
    return None
