"""Every transport against real Apache Airflow: each version of the matrix (3.3, 3.0 and 2.11).

InvokeRestApi and the CLI go through the MWAA emulator (the CLI under the DynamoDB lease lock, on
a DynamoDB Local table); direct REST calls Airflow itself. Every Airflow call runs as the
least-privilege account ("User" role), as MWAA's IAM-to-role mapping would.

The versions come from DAGTRIGGER_AIRFLOW_VERSIONS (tests/conftest.py: every version when unset).
Each Airflow starts once for the whole file (all versions at the same time), and so do DynamoDB
Local and the emulator; teardown stops them all. The file prints Airflow's start times and the
median trigger latency of each transport at the end (numbers only, never asserted).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from dagtrigger import ids
from dagtrigger.errors import RejectedError, TransientTriggerError
from dagtrigger.ledger.schema import create_table
from dagtrigger.settings import Settings
from dagtrigger.transports.airflow_api import AirflowApiTransport
from dagtrigger.transports.asset_events import AssetEventRequest, AssetEvents
from dagtrigger.transports.base import (
    AirflowTransport,
    EnvironmentRef,
    FailedTasks,
    TransportKind,
    TriggerRequest,
    TriggerResult,
)
from dagtrigger.transports.factory import TransportParts, build_transport
from dagtrigger.transports.retry import trigger_with_retries
from devstack.airflow import AirflowServer, wait_for_dag
from devstack.airflow_install import versions_from_env
from devstack.dynamodb_local import DUMMY_CREDENTIALS, start_dynamodb_local
from devstack.mwaa_emulator import MwaaEmulator
from devstack.processes import wait_until

pytestmark = pytest.mark.contract

KINDS = list(TransportKind)
CONF_SINK_ENV = "DAGTRIGGER_CONF_SINK"
TABLE_NAME = "dagtrigger-contract"
CONF_DAG = "ingest_sales"
PAUSED_DAG = "always_paused"
FAILING_DAG = "fails_in_a_task"  # fails in its task "load"
UNKNOWN_DAG = "no_such_dag_contract"
SAMPLE_DAGS = (CONF_DAG, "echo_conf", PAUSED_DAG, FAILING_DAG)
# A quote and spaces in a value: the CLI path must quote it through MWAA's shell-like split.
CONF = {"bucket": "landing", "key": "sales/o'brien's file.csv", "n": 3}
RETRY_BUDGET_SECONDS = 20.0
# Airflow 2 runs tasks one at a time (SequentialExecutor on SQLite) with a process per task.
RUN_FINISH_TIMEOUT = 90.0


# --- measurements -----------------------------------------------------------------------------


@dataclass
class Timings:
    """What the file measures, printed at the end of the module."""

    airflow_api_ready_s: dict[str, float] = field(default_factory=dict)
    airflow_dags_ready_s: dict[str, float] = field(default_factory=dict)
    trigger_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    module_started: float = field(default_factory=time.monotonic)

    def lines(self) -> list[str]:
        lines = [f"transport contract: module took {time.monotonic() - self.module_started:.1f} s"]
        for version in sorted(self.airflow_api_ready_s):
            lines.append(
                f"  Airflow {version}: API up after {self.airflow_api_ready_s[version]:.1f} s, "
                f"sample DAGs parsed after {self.airflow_dags_ready_s[version]:.1f} s"
            )
        for label in sorted(self.trigger_ms):
            samples = self.trigger_ms[label]
            lines.append(
                f"  {label}: median trigger {statistics.median(samples):.0f} ms "
                f"over {len(samples)} successful trigger(s)"
            )
        return lines


@pytest.fixture(scope="module")
def timings(request: pytest.FixtureRequest) -> Iterator[Timings]:
    measured = Timings()
    yield measured
    _print_uncaptured(request.config, "\n" + "\n".join(measured.lines()))


def _print_uncaptured(config: pytest.Config, text: str) -> None:
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is None:  # run with -p no:capture
        print(text)
        return
    with capture.global_and_fixture_disabled():
        print(text)


# --- the servers, once per file ---------------------------------------------------------------


@pytest.fixture(scope="module")
def airflows(request: pytest.FixtureRequest, airflow_pool: Any) -> dict[str, AirflowServer]:
    """Every Airflow version the selected tests need (the session's shared servers), by key."""
    servers: dict[str, AirflowServer] = airflow_pool.get_many(_versions_selected(request.session))
    return servers


def _versions_selected(session: pytest.Session) -> list[str]:
    """The versions of this file's selected tests (the whole matrix when none is parametrized)."""
    selected: list[str] = []
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        version = params.get("airflow_version")
        if item.path == Path(__file__) and isinstance(version, str) and version not in selected:
            selected.append(version)
    return selected or versions_from_env()


@pytest.fixture(scope="module")
def lock_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The history table on DynamoDB Local: the CLI transport keeps its lease lock there."""
    dynamodb = start_dynamodb_local(state_dir=tmp_path_factory.mktemp("dynamodb-local"))
    try:
        client = boto3.client("dynamodb", endpoint_url=dynamodb.endpoint_url, **DUMMY_CREDENTIALS)
        create_table(client, TABLE_NAME)
        resource = boto3.resource(
            "dynamodb", endpoint_url=dynamodb.endpoint_url, **DUMMY_CREDENTIALS
        )
        yield resource.Table(TABLE_NAME)
    finally:
        dynamodb.stop()


@pytest.fixture(scope="module")
def emulator(
    tmp_path_factory: pytest.TempPathFactory, airflows: dict[str, AirflowServer]
) -> Iterator[MwaaEmulator]:
    with MwaaEmulator(tmp_path_factory.mktemp("mwaa")) as running:
        for server in airflows.values():
            running.add_environment(
                _environment_name(server),
                server,
                rest_api_credentials=(server.user_username, server.user_password),
            )
        yield running


def _environment_name(airflow: AirflowServer) -> str:
    return f"contract-airflow-{_slug(airflow)}"


def _slug(airflow: AirflowServer) -> str:
    """The version key in a form MWAA names and aliases accept ("3.0" -> "3-0")."""
    return airflow.key.replace(".", "-")


# --- one transport per (version, kind) --------------------------------------------------------
# The version fixture, airflow_version, is parametrized by tests/conftest.py.


@pytest.fixture(scope="module", params=KINDS, ids=str)
def kind(request: pytest.FixtureRequest) -> TransportKind:
    return TransportKind(request.param)


@dataclass
class Case:
    kind: TransportKind
    airflow: AirflowServer
    environment: EnvironmentRef
    transport: AirflowTransport
    timings: Timings

    @property
    def label(self) -> str:
        return f"Airflow {self.airflow.version} {self.kind}"

    @property
    def major(self) -> int:
        return self.airflow.major

    def request(self, dag_id: str, conf: dict[str, Any]) -> TriggerRequest:
        return _new_request(self.environment, dag_id, conf)

    def trigger(self, request: TriggerRequest) -> TriggerResult:
        """One trigger, its latency recorded when it succeeds."""
        started = time.perf_counter()
        result = self.transport.trigger(request)
        self.timings.trigger_ms[self.label].append((time.perf_counter() - started) * 1000)
        return result


@pytest.fixture(scope="module")
def case(
    airflow_version: str,
    kind: TransportKind,
    airflows: dict[str, AirflowServer],
    emulator: MwaaEmulator,
    timings: Timings,
    request: pytest.FixtureRequest,
) -> Iterator[Case]:
    airflow = airflows[airflow_version]
    # DynamoDB Local holds the shared rate budget (every kind) and the CLI's lock.
    table = request.getfixturevalue("lock_table")
    environment, transport, session = _build(kind, airflow, emulator, table)
    try:
        yield Case(kind, airflow, environment, transport, timings)
    finally:
        session.close()


def _build(
    kind: TransportKind, airflow: AirflowServer, emulator: MwaaEmulator, lock_table: Any
) -> tuple[EnvironmentRef, AirflowTransport, requests.Session]:
    """The transport ``build_transport`` makes for ``kind``, with the stack's clients.

    The Airflow major is left unset so the transport finds it (GetEnvironment or the health
    endpoints), as it does in production.
    """
    secret_name = f"contract/airflow-{_slug(airflow)}"
    environment = EnvironmentRef(
        alias=f"contract-{kind}-{_slug(airflow)}",
        name=_environment_name(airflow),
        transport=kind,
        base_url=airflow.base_url if kind is TransportKind.AIRFLOW_REST else None,
        credentials_secret=secret_name if kind is TransportKind.AIRFLOW_REST else None,
    )
    session = requests.Session()
    session.verify = str(emulator.ca_bundle_path)  # the emulated web server's https
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE from the environment override
    # session.verify (psf/requests#3829); this machine sets them to the system store.
    session.trust_env = False
    secrets = _LeastPrivilegeSecrets(airflow, secret_name)
    mwaa_client = emulator.client()
    transport = build_transport(
        environment,
        TransportParts(
            settings=Settings(table_name=TABLE_NAME),
            mwaa_client=lambda: mwaa_client,
            table=lambda: lock_table,
            http_session=lambda: session,
            secrets_provider=lambda: secrets,
        ),
    )
    return environment, transport, session


class _LeastPrivilegeSecrets:
    """Stands in for Secrets Manager: the Airflow user's credentials, for the one secret named."""

    def __init__(self, airflow: AirflowServer, secret_name: str) -> None:
        self._airflow = airflow
        self._secret_name = secret_name

    def get(self, name: str, **_options: Any) -> dict[str, str]:
        assert name == self._secret_name, f"the transport asked for secret {name!r}"
        return {"username": self._airflow.user_username, "password": self._airflow.user_password}


@pytest.fixture(scope="module")
def conf_run(case: Case) -> tuple[TriggerRequest, TriggerResult]:
    """One run of the conf-recording DAG per transport, shared by the tests that follow it."""
    request = case.request(CONF_DAG, CONF)
    return request, case.trigger(request)


# --- helpers ----------------------------------------------------------------------------------


def _new_request(environment: EnvironmentRef, dag_id: str, conf: dict[str, Any]) -> TriggerRequest:
    run_id = f"contract_{environment.transport}_{uuid.uuid4().hex[:12]}"
    return TriggerRequest(environment, dag_id, run_id, dict(conf))


def _reports_paused_flag(case: Case) -> bool:
    """The REST transports read the DAG's paused flag; the CLI transport reports None (its doc)."""
    return case.kind is not TransportKind.CLI


def _airflow_own_not_found_text(case: Case) -> str:
    """What Airflow itself answers when a run of the unknown DAG is posted to its REST API."""
    body: dict[str, Any] = {"dag_run_id": "contract_probe", "conf": {}}
    if case.major >= 3:
        body["logical_date"] = None
    response = case.airflow.api_session().post(
        case.airflow.api_url(f"/dags/{UNKNOWN_DAG}/dagRuns"), json=body, timeout=30
    )
    assert response.status_code == 404, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    return detail


def _wait_for_state(case: Case, dag_id: str, dag_run_id: str, wanted: str) -> str | None:
    seen: list[str | None] = []

    def reached() -> bool:
        try:
            seen.append(case.transport.get_dag_run_state(dag_id, dag_run_id))
        except TransientTriggerError as slow:  # a busy web server: ask again, as a poller would
            seen.append(f"transient: {slow}")
            return False
        return seen[-1] in (wanted, "failed")

    # The CLI path costs seconds per query (a CLI process); poll it less often.
    interval = 3.0 if case.kind is TransportKind.CLI else 1.0
    wait_until(
        reached,
        timeout=RUN_FINISH_TIMEOUT,
        interval=interval,
        what=f"run {dag_run_id} of {dag_id} to be {wanted} (states seen: {seen[-3:]})",
        process=case.airflow.processes,
    )
    return seen[-1]


# --- the contract -----------------------------------------------------------------------------


def test_trigger_with_conf_starts_a_new_run(
    case: Case, conf_run: tuple[TriggerRequest, TriggerResult]
) -> None:
    # Given the conf-recording DAG, unpaused
    # When a run with an awkward conf is triggered (the shared fixture did it)
    request, result = conf_run

    # Then Airflow started the run with our id, and says whether the DAG is paused if it can
    assert result.dag_run_id == request.dag_run_id
    assert result.already_existed is False
    assert result.dag_paused is (False if _reports_paused_flag(case) else None)
    assert result.state == "queued"


def test_same_run_id_again_is_already_triggered(
    case: Case, conf_run: tuple[TriggerRequest, TriggerResult]
) -> None:
    # Given a run that Airflow already has
    request, _ = conf_run

    # When the same dag_run_id is triggered again, once directly and once with retries
    again = case.trigger(request)
    with_retries = trigger_with_retries(
        case.transport, request, budget_seconds=RETRY_BUDGET_SECONDS
    )

    # Then both report the existing run instead of failing, at the first attempt
    assert again.already_existed is True
    assert again.dag_run_id == request.dag_run_id
    assert with_retries.result.already_existed is True
    assert with_retries.result.dag_run_id == request.dag_run_id
    assert with_retries.attempts == 1


def test_unknown_dag_is_rejected_with_airflows_message(case: Case) -> None:
    # Given a DAG id Airflow has never seen
    request = case.request(UNKNOWN_DAG, CONF)

    # When it is triggered
    with pytest.raises(RejectedError) as raised:
        case.transport.trigger(request)

    # Then it is rejected as dag_not_found, keeping Airflow's own explanation
    assert raised.value.code == "dag_not_found"
    message = str(raised.value)
    assert UNKNOWN_DAG in message
    if case.kind is TransportKind.CLI:
        assert "not found" in message.lower()
    else:
        assert _airflow_own_not_found_text(case) in message


def test_paused_dag_is_reported(case: Case) -> None:
    # Given a DAG that is paused
    request = case.request(PAUSED_DAG, {"n": 1})

    # When a run is triggered
    result = case.trigger(request)

    # Then the run exists but waits, and the REST transports say the DAG is paused
    assert result.already_existed is False
    assert result.dag_paused is (True if _reports_paused_flag(case) else None)
    assert case.transport.get_dag_run_state(PAUSED_DAG, request.dag_run_id) == "queued"


def test_task_sees_exactly_the_conf(
    case: Case, conf_run: tuple[TriggerRequest, TriggerResult], conf_sink: Path
) -> None:
    # Given the run triggered with the awkward conf
    request, _ = conf_run

    # When its task has run
    written = conf_sink / CONF_DAG / f"{request.dag_run_id}.json"
    wait_until(
        written.exists,
        timeout=RUN_FINISH_TIMEOUT,
        interval=0.5,
        what=f"the conf of run {request.dag_run_id} in {written}",
        process=case.airflow.processes,
    )

    # Then the task received exactly that conf
    assert json.loads(written.read_text()) == {
        "dag_id": CONF_DAG,
        "run_id": request.dag_run_id,
        "conf": CONF,
    }


def test_run_state_becomes_success(
    case: Case, conf_run: tuple[TriggerRequest, TriggerResult]
) -> None:
    # Given the triggered run
    request, _ = conf_run

    # When its state is polled through the transport
    final = _wait_for_state(case, CONF_DAG, request.dag_run_id, "success")

    # Then the run finished successfully
    assert final == "success"


def test_started_runs_of_a_dag_are_listed_in_one_read(
    case: Case, conf_run: tuple[TriggerRequest, TriggerResult]
) -> None:
    # Given the finished conf run, and a run queued on the paused DAG
    request, _ = conf_run
    assert _wait_for_state(case, CONF_DAG, request.dag_run_id, "success") == "success"
    queued = case.request(PAUSED_DAG, {})
    case.trigger(queued)
    since = datetime.now(UTC) - timedelta(hours=1)

    # When each DAG's started runs are listed (the reconciler's one read per DAG)
    finished = case.transport.started_run_states(CONF_DAG, started_since=since)
    waiting = case.transport.started_run_states(PAUSED_DAG, started_since=since)

    # Then the finished run is there with its state, and the queued one is not listed
    assert finished.states[request.dag_run_id] == "success"
    assert finished.complete is True
    assert queued.dag_run_id not in waiting.states


def test_the_longest_s3_key_gives_a_run_that_airflow_runs_to_success(case: Case) -> None:
    # Given an object with S3's longest key (1,024 bytes of UTF-8)
    key = ("données/" * 200)[:1000] + "/" + "é" * 6 + "report.csv"
    key = key.encode("utf-8")[:1024].decode("utf-8", errors="ignore")
    assert len(key.encode("utf-8")) > 1000
    tid = ids.trigger_id(f"s3://landing/{key}", "contract")
    request = TriggerRequest(
        case.environment, CONF_DAG, ids.dag_run_id("s3", key, datetime.now(UTC), tid), {"k": 1}
    )

    # When its run is triggered and followed to the end
    case.trigger(request)
    final = _wait_for_state(case, CONF_DAG, request.dag_run_id, "success")

    # Then Airflow ran it (its task log path, "run_id=<id>", fits), and the transport found it
    assert final == "success"
    assert len(request.dag_run_id) <= ids.MAX_RUN_ID_LENGTH


def test_a_failed_run_names_its_failed_task_and_a_paused_dag_says_so(case: Case) -> None:
    # Given a run of the DAG that fails in its task "load" (over InvokeRestApi its run id makes
    # the run's own task-list path too long, so the batch list is read)
    request = case.request(FAILING_DAG, {})
    case.trigger(request)
    assert _wait_for_state(case, FAILING_DAG, request.dag_run_id, "failed") == "failed"

    # When the reconciler's reads are made: the failed tasks, and a DAG's paused flag
    failed = case.transport.failed_task_ids(FAILING_DAG, request.dag_run_id)
    paused = case.transport.dag_paused(PAUSED_DAG)

    # Then the failing task is named, and the REST transports say the DAG is paused
    assert failed == FailedTasks(("load",), count=1)
    assert paused is (True if _reports_paused_flag(case) else None)


def test_unknown_run_has_no_state(case: Case) -> None:
    # Given a run id Airflow has never seen, on a known DAG
    # When its state is asked
    state = case.transport.get_dag_run_state(PAUSED_DAG, f"contract_absent_{uuid.uuid4().hex}")

    # Then the transport says there is no such run
    assert state is None


def test_invoke_rest_api_retries_through_throttling(
    airflow_version: str,
    airflows: dict[str, AirflowServer],
    emulator: MwaaEmulator,
    lock_table: Any,
) -> None:
    # Given InvokeRestApi throttles the next two calls
    environment, transport, session = _build(
        TransportKind.INVOKE_REST_API, airflows[airflow_version], emulator, lock_table
    )
    request = _new_request(environment, PAUSED_DAG, {"n": 2})
    emulator.faults.set("InvokeRestApi", error="ThrottlingException", fail_next=2)
    try:
        # When the trigger runs with retries
        outcome = trigger_with_retries(transport, request, budget_seconds=RETRY_BUDGET_SECONDS)
    finally:
        emulator.faults.clear("InvokeRestApi")
        session.close()

    # Then the third attempt started the run
    assert outcome.attempts == 3
    assert outcome.result.already_existed is False
    assert transport.get_dag_run_state(PAUSED_DAG, request.dag_run_id) == "queued"


#: more runs than the newest-runs fallback reads, so only the trigger-time search finds ours
NEWER_RUNS = 105


def test_a_long_run_id_is_found_on_a_busy_dag_from_its_trigger_time(
    airflow_version: str,
    airflows: dict[str, AirflowServer],
    emulator: MwaaEmulator,
    lock_table: Any,
) -> None:
    # Given our run on the paused DAG over InvokeRestApi, with an id too long for its 64-character
    # path, then NEWER_RUNS more runs of that DAG started over Airflow's REST API
    environment, invoke, invoke_session = _build(
        TransportKind.INVOKE_REST_API, airflows[airflow_version], emulator, lock_table
    )
    rest_environment, rest, rest_session = _build(
        TransportKind.AIRFLOW_REST, airflows[airflow_version], emulator, lock_table
    )
    ours = TriggerRequest(environment, PAUSED_DAG, f"contract_long_run_{uuid.uuid4().hex}", {})
    assert len(f"/dags/{PAUSED_DAG}/dagRuns/{ours.dag_run_id}") > 64
    triggered_at = datetime.now(UTC)
    try:
        invoke.trigger(ours)
        for _ in range(NEWER_RUNS):
            rest.trigger(_new_request(rest_environment, PAUSED_DAG, {}))

        # When its state is asked with our trigger time, and without it
        found = invoke.get_dag_run_state(PAUSED_DAG, ours.dag_run_id, triggered_after=triggered_at)
        without_hint = invoke.get_dag_run_state(PAUSED_DAG, ours.dag_run_id)
    finally:
        invoke_session.close()
        rest_session.close()

    # Then the search from the trigger time finds it; the newest-runs fallback cannot
    assert found == "queued"
    assert without_hint is None


# --- asset events (Airflow 3) and dataset events (Airflow 2) ----------------------------------

CONSUMER_DAG = "consume_orders"  # scheduled on ORDERS_URI (devstack/dags/asset_consumer.py)
ORDERS_URI = "s3://landing/orders/"


@pytest.fixture(scope="module")
def asset_events(case: Case) -> AssetEvents:
    if not isinstance(case.transport, AirflowApiTransport):
        pytest.skip("the MWAA CLI has no command for asset events (such routes are refused)")
    wait_for_dag(case.airflow, CONSUMER_DAG)
    return AssetEvents(case.transport)


def test_an_asset_event_makes_airflow_start_the_consuming_dag(
    case: Case, asset_events: AssetEvents
) -> None:
    # As the least-privilege "User" account: FAB's User role may create asset events.
    # Given the DAG scheduled on the orders asset, and the runs it has now
    before = set(_consumer_run_ids(case))
    trigger_id = f"t-contract-{uuid.uuid4().hex[:8]}"

    # When an event is posted for the asset with the object's details
    event = asset_events.post(
        AssetEventRequest(
            environment=case.environment,
            uri=ORDERS_URI,
            extra={"bucket": "landing", "key": "orders/1.csv"},
            trigger_id=trigger_id,
        )
    )

    # Then Airflow recorded it with an id, and its scheduler started the consumer once
    assert isinstance(event.event_id, int)
    assert event.already_existed is False
    wait_until(
        lambda: bool(set(_consumer_run_ids(case)) - before),
        timeout=RUN_FINISH_TIMEOUT,
        interval=2.0,
        what=f"a run of {CONSUMER_DAG} after asset event {event.event_id}",
        process=case.airflow.processes,
    )
    time.sleep(3)  # a second run, had one event started two, would show by now
    assert len(set(_consumer_run_ids(case)) - before) == 1

    # And a takeover finds that event by our trigger id rather than posting another
    found = asset_events.find(ORDERS_URI, trigger_id)
    assert found is not None
    assert (found.event_id, found.already_existed) == (event.event_id, True)
    assert asset_events.find(ORDERS_URI, "t-never-posted") is None


def test_an_asset_no_dag_names_is_refused(case: Case, asset_events: AssetEvents) -> None:
    with pytest.raises(RejectedError) as refused:
        asset_events.post(
            AssetEventRequest(
                environment=case.environment,
                uri="s3://landing/nobody-consumes-this/",
                extra={},
                trigger_id="t-contract-unknown",
            )
        )
    assert refused.value.code == "asset_not_found"


def _consumer_run_ids(case: Case) -> list[str]:
    response = case.airflow.api_session().get(
        case.airflow.api_url(f"/dags/{CONSUMER_DAG}/dagRuns"), params={"limit": 100}, timeout=30
    )
    response.raise_for_status()
    return [str(run["dag_run_id"]) for run in response.json()["dag_runs"]]
