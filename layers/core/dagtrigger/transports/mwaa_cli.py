"""MWAA CLI: ``create_cli_token``, then one Airflow CLI command per ``POST /aws_mwaa/cli``.

The token lives 60 s: it is cached per environment and reused until shortly before it expires.
The body is one command built by ``cli_command`` (only ``dags trigger``, ``dags state``,
``dags list-runs`` and ``tasks states-for-dag-run`` can be built). The reply is JSON with base64
``stdout`` and ``stderr`` and no exit code, read by ``cli_output``. MWAA asks callers not to run
CLI commands concurrently, so every request runs under the environment's lease lock
(``dagtrigger.transports.cli_lock``).

Run states: Airflow 3's ``dags state DAG RUN_ID`` accepts a run id; Airflow 2's takes only a
logical date, so on Airflow 2 the state comes from ``dags list-runs`` (every run of the DAG).

Paused DAGs: ``TriggerResult.dag_paused`` and ``dag_paused`` are always None here (unknown).
``dags trigger`` does not say whether the DAG is paused, and asking (``dags list``) would cost
another CLI process of seconds, under the environment's lock, on every trigger or reconciler
pass. A run on a paused DAG is still created and its state reads ``queued`` until the DAG is
unpaused.

Calls are not counted in the shared rate budget (``rate_budget``: InvokeRestApi's rate): the
environment's CLI lock already runs one command at a time.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import requests

from dagtrigger.clock import utc_now
from dagtrigger.errors import DagTriggerError, RejectedError, TransientTriggerError
from dagtrigger.ids import mentions_run_id, validate_dag_id, validate_dag_run_id
from dagtrigger.observability import logger
from dagtrigger.settings import Settings
from dagtrigger.transports import cli_command, cli_output
from dagtrigger.transports.airflow_api import (
    LOGICAL_DATE_COLLISION_RETRIES,
    already_triggered,
    result_from_run,
)
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
from dagtrigger.transports.cli_lock import DynamoDbLeaseLock, LockNotAcquiredError, cli_lock_key
from dagtrigger.transports.factory import TransportParts
from dagtrigger.transports.keyed_cache import KeyedCache
from dagtrigger.transports.mwaa_control_plane import AirflowMajorResolver, mwaa_errors_classified
from dagtrigger.transports.web_request import send_request

CLI_TOKEN_LIFETIME_SECONDS = 60.0
#: stop using a token this long before it expires: a request must not outlive its token
CLI_TOKEN_SAFETY_MARGIN_SECONDS = 15.0
#: (connect, read) seconds; the read must end well within the CLI lock's lease
DEFAULT_TIMEOUT = (5.0, 25.0)
_HOSTNAME = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?", re.ASCII)


class CliLock(Protocol):
    def held(self, key: str) -> AbstractContextManager[str]: ...


@dataclass(frozen=True)
class CliCredentials:
    token: str
    hostname: str
    usable_until: float  # on the injected monotonic clock

    def __repr__(self) -> str:
        return f"CliCredentials(hostname={self.hostname!r}, token=<redacted>)"


@dataclass(frozen=True)
class CliReply:
    stdout: str
    stderr: str


class CliTokenCache:
    """CLI tokens per environment name, reused until shortly before their 60 s expiry."""

    def __init__(
        self,
        mwaa_client: Any,
        *,
        clock: Callable[[], float] = time.monotonic,
        reuse_seconds: float = CLI_TOKEN_LIFETIME_SECONDS - CLI_TOKEN_SAFETY_MARGIN_SECONDS,
    ) -> None:
        self._client = mwaa_client
        self._clock = clock
        self._reuse_seconds = reuse_seconds
        self._credentials: KeyedCache[str, CliCredentials] = KeyedCache(
            self._create, fresh=lambda credentials: self._clock() < credentials.usable_until
        )

    def get(self, environment_name: str) -> CliCredentials:
        return self._credentials.get(environment_name)

    def forget(self, environment_name: str) -> None:
        self._credentials.forget(environment_name)

    def _create(self, name: str) -> CliCredentials:
        requested_at = self._clock()  # the token's 60 s may start before the answer arrives
        with mwaa_errors_classified(environment=name, action="CreateCliToken"):
            reply = self._client.create_cli_token(Name=name)
        token, hostname = reply.get("CliToken"), reply.get("WebServerHostname")
        if not isinstance(token, str) or not token:
            raise TransientTriggerError(f"CreateCliToken for {name!r} returned no token")
        if not isinstance(hostname, str) or not _HOSTNAME.fullmatch(hostname):
            raise TransientTriggerError(
                f"CreateCliToken for {name!r} returned an unusable web server hostname"
            )
        return CliCredentials(token, hostname, requested_at + self._reuse_seconds)


class MwaaCliTransport:
    """``AirflowTransport`` over the MWAA CLI endpoint for one environment.

    Unlike the REST transports it never reports whether a DAG is paused (None: see the module
    doc).
    """

    def __init__(
        self,
        environment: EnvironmentRef,
        mwaa_client: Any,
        session: requests.Session,
        lock: CliLock,
        *,
        resolver: AirflowMajorResolver | None = None,
        tokens: CliTokenCache | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.environment = environment
        self._session = session
        self._lock = lock
        self._resolver = resolver or AirflowMajorResolver(mwaa_client)
        self._tokens = tokens or CliTokenCache(mwaa_client)
        self._timeout = timeout
        self._now = now

    def trigger(self, request: TriggerRequest) -> TriggerResult:
        validate_dag_id(request.dag_id)
        validate_dag_run_id(request.dag_run_id)
        cli_command.conf_argument(request.conf)
        major = self._resolver.major(self.environment)
        logical_date = request.logical_date
        if logical_date is None and major < 3:
            logical_date = self._now()  # Airflow 2 needs one; microseconds keep it unique
        collisions = 0
        while True:
            command = cli_command.trigger_command(
                request.dag_id,
                request.dag_run_id,
                request.conf,
                airflow_major=major,
                logical_date=logical_date,
            )
            result = self._trigger_once(request, command, major)
            if result is not None:
                return result
            collisions = self._count_collision(request, collisions, major)
            logical_date = self._now()

    def get_dag_run_state(
        self, dag_id: str, dag_run_id: str, *, triggered_after: datetime | None = None
    ) -> str | None:
        """The CLI addresses the run by id, so ``triggered_after`` is not needed."""
        validate_dag_id(dag_id)
        validate_dag_run_id(dag_run_id)
        major = self._resolver.major(self.environment)
        if major >= 3:
            reply = self._run(cli_command.state_command(dag_id, dag_run_id))
            self._raise_for_failure(reply, doing=f"read the state of run {dag_run_id!r}")
            return cli_output.dag_state_line(reply.stdout)
        run = self._find_listed_run(dag_id, dag_run_id, major)
        state = run.get("state") if run else None
        return str(state) if state else None

    def started_run_states(self, dag_id: str, *, started_since: datetime) -> RunStates:
        """One ``dags list-runs`` of the DAG: every run it lists in a started state.

        The CLI has no start-date filter on both versions (Airflow 2's filters the logical
        date), so ``started_since`` is not needed: a started run listed is a started run.
        """
        validate_dag_id(dag_id)
        major = self._resolver.major(self.environment)
        reply = self._run(cli_command.list_runs_command(dag_id, airflow_major=major))
        self._raise_for_failure(reply, doing=f"list the runs of DAG {dag_id!r}")
        records = cli_output.json_records(reply.stdout)
        if records is None:
            if not reply.stdout.strip():
                return RunStates({})
            raise TransientTriggerError(
                f"cannot read the runs of DAG {dag_id!r} from the CLI reply"
            )
        states: dict[str, str] = {}
        times: dict[str, RunTimes] = {}
        for record in records:
            run_id, state = record.get("run_id") or record.get("dag_run_id"), record.get("state")
            if isinstance(run_id, str) and state in STARTED_RUN_STATES:
                states[run_id] = str(state)
                times[run_id] = run_times(record)
        return RunStates(states, times=times)

    def failed_task_ids(self, dag_id: str, dag_run_id: str) -> FailedTasks:
        """One ``tasks states-for-dag-run``: every task instance of the run, the failed kept."""
        reply = self._run(cli_command.task_states_command(dag_id, dag_run_id))
        self._raise_for_failure(reply, doing=f"read the task states of run {dag_run_id!r}")
        records = cli_output.json_records(reply.stdout)
        if records is None:
            raise TransientTriggerError(
                f"cannot read the task states of run {dag_run_id!r} from the CLI reply"
            )
        return failed_tasks_from(records)

    def dag_paused(self, dag_id: str) -> bool | None:
        return None  # the CLI cannot tell without a command of its own (see the module doc)

    def _trigger_once(
        self, request: TriggerRequest, command: str, major: int
    ) -> TriggerResult | None:
        """The result, or None when another run holds the logical date we sent."""
        reply = self._run(command)
        failure = cli_output.last_exception(reply.stderr)
        if failure is None:
            self._raise_for_usage_error(reply)
            return self._result_from_stdout(request, reply.stdout)
        if failure.exception == "DagRunAlreadyExists":
            return self._settle_already_exists(request, failure, major)
        if failure.exception == "IntegrityError":
            return self._settle_integrity_error(request, failure)
        raise _error_for(failure, doing=f"trigger DAG {request.dag_id!r}")

    def _settle_already_exists(
        self, request: TriggerRequest, failure: cli_output.CliError, major: int
    ) -> TriggerResult | None:
        if major >= 3:
            # Airflow 3 looks the run up by run id alone and names the run it found.
            if mentions_run_id(failure.message, request.dag_run_id):
                return already_triggered(request, {})
            raise TransientTriggerError(f"Airflow refused the trigger: {failure.message}")
        # Airflow 2 names the run id and date it was asked for, whichever of them clashed.
        run = self._find_listed_run(request.dag_id, request.dag_run_id, major)
        return already_triggered(request, run) if run is not None else None

    def _settle_integrity_error(
        self, request: TriggerRequest, failure: cli_output.CliError
    ) -> TriggerResult | None:
        text = failure.message.lower()
        if "logical_date" in text or "execution_date" in text:
            return None
        if "run_id" in text:  # another caller created our run between the check and the insert
            return already_triggered(request, {})
        raise TransientTriggerError(f"Airflow could not store the run: {failure.message}")

    def _count_collision(self, request: TriggerRequest, collisions: int, major: int) -> int:
        if request.logical_date is not None:
            raise RejectedError(
                "logical_date_taken",
                f"DAG {request.dag_id!r} already has another run at the requested logical date",
            )
        if major >= 3 or collisions >= LOGICAL_DATE_COLLISION_RETRIES:
            raise TransientTriggerError(
                f"DAG {request.dag_id!r}: the logical date was taken by another run"
            )
        logger.info("logical date taken by another run, trying a new one")
        return collisions + 1

    def _result_from_stdout(self, request: TriggerRequest, stdout: str) -> TriggerResult:
        records = cli_output.json_records(stdout)
        run = cli_output.find_run(records, request.dag_run_id) if records else None
        if run is not None:
            return result_from_run(run, dag_run_id=request.dag_run_id, already_existed=False)
        if mentions_run_id(stdout, request.dag_run_id):  # table output: the run is there
            return TriggerResult(dag_run_id=request.dag_run_id, logical_date=None, state=None)
        # Neither an error nor our run: unknown outcome. A retry is safe (same run id).
        raise TransientTriggerError("the MWAA CLI reply shows neither the new run nor an error")

    def _find_listed_run(
        self, dag_id: str, dag_run_id: str, major: int
    ) -> Mapping[str, Any] | None:
        reply = self._run(cli_command.list_runs_command(dag_id, airflow_major=major))
        self._raise_for_failure(reply, doing=f"list the runs of DAG {dag_id!r}")
        records = cli_output.json_records(reply.stdout)
        if records is None:
            if not reply.stdout.strip():
                return None  # no runs at all
            raise TransientTriggerError(
                f"cannot read the runs of DAG {dag_id!r} from the CLI reply"
            )
        return cli_output.find_run(records, dag_run_id)

    def _raise_for_failure(self, reply: CliReply, *, doing: str) -> None:
        failure = cli_output.last_exception(reply.stderr)
        if failure is not None:
            raise _error_for(failure, doing=doing)
        self._raise_for_usage_error(reply)

    @staticmethod
    def _raise_for_usage_error(reply: CliReply) -> None:
        complaint = cli_output.usage_error(reply.stderr)
        if complaint is not None:
            raise RejectedError(
                "cli_usage_error", f"the Airflow CLI refused the command: {complaint}"
            )

    def _run(self, command: str) -> CliReply:
        """One CLI request, alone on this environment's CLI.

        The token is fetched before the lease is taken, so the lease covers the request alone,
        whose timeouts end it inside the lease (``build``).
        """
        credentials = self._tokens.get(self.environment.name)
        try:
            with self._lock.held(cli_lock_key(self.environment.name)):
                return self._post(command, credentials)
        except LockNotAcquiredError as busy:
            raise TransientTriggerError(f"the MWAA CLI is busy: {busy}") from None

    def _post(self, command: str, credentials: CliCredentials) -> CliReply:
        name = self.environment.name
        response = send_request(
            self._session,
            "POST",
            f"https://{credentials.hostname}/aws_mwaa/cli",
            timeout=self._timeout,
            no_answer=f"the MWAA web server of {name!r} did not answer",
            data=command.encode("ascii"),
            headers={"Authorization": f"Bearer {credentials.token}", "Content-Type": "text/plain"},
        )
        if response.status_code in (401, 403):
            self._tokens.forget(name)  # expired or revoked; the next attempt gets a fresh one
            raise TransientTriggerError(
                f"the MWAA web server of {name!r} refused the CLI token",
                http_status=response.status_code,
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientTriggerError(
                f"the MWAA web server of {name!r} answered HTTP {response.status_code}",
                http_status=response.status_code,
            )
        if response.status_code != 200:
            raise RejectedError(
                "cli_request_rejected",
                f"the MWAA web server of {name!r} refused the CLI command: "
                f"HTTP {response.status_code}: {response.text[:300]}",
                http_status=response.status_code,
            )
        return _decode_reply(response, name)


def _decode_reply(response: requests.Response, environment_name: str) -> CliReply:
    try:
        payload = response.json()
        return CliReply(_decode(payload.get("stdout")), _decode(payload.get("stderr")))
    except (ValueError, AttributeError, binascii.Error):
        raise TransientTriggerError(
            f"the MWAA web server of {environment_name!r} sent an unreadable CLI reply"
        ) from None


def _decode(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise ValueError("stdout/stderr must be base64 text")
    return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")


def _error_for(failure: cli_output.CliError, *, doing: str) -> DagTriggerError:
    message = f"Airflow CLI could not {doing}: {failure.exception}: {failure.message}"
    if failure.exception == "DagNotFound":
        return RejectedError("dag_not_found", failure.message or message)
    lowered = failure.message.lower()
    if (
        "conf must be" in lowered
        or failure.exception in ("JSONDecodeError", "ParamValidationError")
        or "json" in lowered
    ):
        return RejectedError("conf_rejected", message)
    if failure.exception == "ValueError":
        return RejectedError("bad_request", message)
    return TransientTriggerError(message)


#: how long a CLI request waits for another caller's command on the same environment
CLI_LOCK_WAIT_SECONDS = 10.0
#: how long before the lease ends a CLI request must have given up (clock skew, the release)
CLI_LEASE_MARGIN_SECONDS = 5.0


def cli_request_timeout(settings: Settings) -> tuple[float, float]:
    """(connect, read) timeouts whose sum ends a CLI request well inside the lock's lease (the
    settings make sure the lease leaves at least a second to read the answer)."""
    connect = settings.connect_timeout_seconds
    return connect, settings.cli_lock_seconds - connect - CLI_LEASE_MARGIN_SECONDS


def build(environment: EnvironmentRef, parts: TransportParts) -> MwaaCliTransport:
    settings = parts.settings
    lock = DynamoDbLeaseLock(
        parts.table(),
        lease_seconds=settings.cli_lock_seconds,
        wait_seconds=min(CLI_LOCK_WAIT_SECONDS, settings.trigger_budget_seconds),
    )
    return MwaaCliTransport(
        environment,
        parts.mwaa_client(),
        parts.http_session(),
        lock,
        # A command runs for seconds (one Airflow process each); it must end within the lease.
        timeout=cli_request_timeout(settings),
    )
