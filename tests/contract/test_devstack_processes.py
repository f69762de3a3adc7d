"""The local stack's process layer against the real servers: DynamoDB Local, moto, Airflow 3 and 2.

Each server is started once per module, checked to answer on 127.0.0.1 only, and finally stopped
by the last test of its group, which checks that no process of its groups is left and its port
is free again. Airflow is checked end to end: a REST trigger with a conf reaches the task.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from devstack.airflow import AirflowServer, wait_for_dag
from devstack.dynamodb_local import DUMMY_CREDENTIALS, DynamoDBLocal, start_dynamodb_local
from devstack.moto_server import MotoServer, start_moto
from devstack.processes import (
    ManagedProcess,
    StackError,
    child_env,
    free_port,
    port_is_free,
    wait_until,
)
from devstack.procfs import listening_addresses

pytestmark = pytest.mark.contract

LOOPBACK = "127.0.0.1"
CONF_SINK_ENV = "DAGTRIGGER_CONF_SINK"
# Quotes, spaces, shell metacharacters and non-ASCII must reach the task unchanged.
AWKWARD_CONF = {
    "bucket": "landing",
    "key": "sales/c++ notes%20v2 'q' $(x).csv",
    "size": 12,
    "ü": [1],
}


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDBLocal]:
    server = start_dynamodb_local(state_dir=tmp_path_factory.mktemp("dynamodb-local"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto(state_dir=tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def airflow(airflow_version: str, airflow_pool: Any) -> AirflowServer:
    """The session's shared server for each version of the matrix (tests/conftest.py); the pool
    stops it at the end and checks nothing is left."""
    server: AirflowServer = airflow_pool.get(airflow_version)
    return server


def _boto3_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint_url, **DUMMY_CREDENTIALS)


def _trigger_body(server: AirflowServer, run_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"dag_run_id": run_id, "conf": conf}
    if server.major >= 3:
        body["logical_date"] = None  # required key on Airflow 3
    return body


def _assert_only_loopback_listeners(pids: list[int], port: int) -> None:
    addresses = listening_addresses(pids)
    assert (LOOPBACK, port) in addresses
    assert {host for host, _ in addresses} == {LOOPBACK}, addresses


def _assert_stopped(pids_before: list[int], port: int, still_alive: list[int]) -> None:
    assert pids_before, "the server had no processes to begin with"
    assert still_alive == []
    assert port_is_free(port)


# --- the process layer itself (cheap, no servers) -------------------------------------------


def _start_bash(name: str, script: str, tmp_path: Path) -> ManagedProcess:
    process = ManagedProcess(
        name,
        ["bash", "-c", script],
        env=child_env(),
        cwd=tmp_path,
        log_path=tmp_path / f"{name}.log",
    )
    process.start()
    return process


def test_stop_ends_every_process_of_the_group(tmp_path: Path) -> None:
    # Given a command that forks a grandchild which ignores nothing but outlives its parent
    process = _start_bash("forker", "sleep 300 & sleep 300", tmp_path)
    wait_until(
        lambda: len(process.group_pids()) == 3, timeout=10, interval=0.1, what="forker children"
    )

    # When it is stopped (twice: stop is idempotent)
    process.stop(timeout=5)
    process.stop(timeout=5)

    # Then no process of its group is left
    assert process.group_pids() == []
    assert not process.is_running()


#: a process whose main thread exits while another thread keeps a listening socket, as a JVM's
#: does while it shuts down (the main thread leaves holding the GIL, so the other never ends)
_MAIN_THREAD_EXITS = """
import ctypes, socket, sys, threading, time
listener = socket.socket()
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen()
threading.Thread(target=time.sleep, args=(300,)).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_process_whose_main_thread_exited_is_alive_while_its_threads_run(
    tmp_path: Path,
) -> None:
    # Given a process whose main thread has exited ("Z" in /proc) while another thread still
    # holds its listening socket
    port = free_port()
    process = ManagedProcess(
        "main-thread-exits",
        [sys.executable, "-c", _MAIN_THREAD_EXITS, str(port)],
        env=child_env(),
        cwd=tmp_path,
        log_path=tmp_path / "main-thread-exits.log",
    )
    process.start()
    try:
        wait_until(lambda: not port_is_free(port), timeout=10, interval=0.1, what="the listener")
        assert process.pid is not None
        wait_until(
            lambda: "State:\tZ" in Path(f"/proc/{process.pid}/status").read_text(),
            timeout=10,
            interval=0.1,
            what="the main thread's exit",
        )

        # Then it is one of its group's live processes, not a finished zombie
        assert process.group_pids() == [process.pid]
    finally:
        # And stopping it frees its port
        process.stop(timeout=5)
    assert process.group_pids() == []
    assert port_is_free(port)


def test_wait_until_reports_a_dead_process_with_its_log(tmp_path: Path) -> None:
    # Given a process that writes a message and dies
    process = _start_bash("dies", "echo 'bind failed: address in use' >&2; exit 3", tmp_path)

    # When we wait for something it will never provide
    with pytest.raises(StackError) as raised:
        wait_until(lambda: False, timeout=10, interval=0.1, what="never ready", process=process)

    # Then the error names the process, its exit status and the tail of its log
    message = str(raised.value)
    assert "never ready" in message
    assert "exited with 3" in message
    assert "bind failed: address in use" in message
    process.stop()


# --- DynamoDB Local -------------------------------------------------------------------------


def test_dynamodb_local_serves_conditional_writes_on_loopback(
    dynamodb_local: DynamoDBLocal,
) -> None:
    # Given a table in DynamoDB Local
    client = _boto3_client("dynamodb", dynamodb_local.endpoint_url)
    table = f"devstack-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    condition = {"ConditionExpression": "attribute_not_exists(pk)"}

    # When the same item is put twice on the condition that it does not exist yet
    client.put_item(TableName=table, Item={"pk": {"S": "trigger-1"}}, **condition)
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(TableName=table, Item={"pk": {"S": "trigger-1"}}, **condition)

    # Then the first put is stored and the endpoint is a loopback one
    item = client.get_item(TableName=table, Key={"pk": {"S": "trigger-1"}})["Item"]
    assert item == {"pk": {"S": "trigger-1"}}
    assert dynamodb_local.endpoint_url == f"http://{LOOPBACK}:{dynamodb_local.port}"


# --- moto -----------------------------------------------------------------------------------


def test_moto_serves_s3_on_loopback_only(moto: MotoServer) -> None:
    # Given a bucket created through the moto server
    s3 = _boto3_client("s3", moto.endpoint_url)
    s3.create_bucket(Bucket="landing")

    # When an object is written and read back
    s3.put_object(Bucket="landing", Key="sales/2026-11-21.csv", Body=b"id,amount\n1,2\n")
    body = s3.get_object(Bucket="landing", Key="sales/2026-11-21.csv")["Body"].read()

    # Then it round-trips, and the server listens on 127.0.0.1 only
    assert body == b"id,amount\n1,2\n"
    _assert_only_loopback_listeners(moto.process.group_pids(), moto.port)


# --- Airflow 3 and 2 ------------------------------------------------------------------------


def test_airflow_is_healthy_and_listens_on_loopback_only(airflow: AirflowServer) -> None:
    # When the health endpoint is asked
    health_path = "/api/v2/monitor/health" if airflow.major >= 3 else "/health"
    response = requests.get(f"{airflow.base_url}{health_path}", timeout=10)

    # Then it answers, and no component of this Airflow listens anywhere but 127.0.0.1
    assert response.status_code == 200
    assert response.json()["metadatabase"]["status"] == "healthy"
    _assert_only_loopback_listeners(airflow.pids(), airflow.port)
    print(f"\nAirflow {airflow.version}: {airflow.memory_pss_bytes() / 2**20:.0f} MiB PSS")


def test_triggered_run_of_ingest_sales_sees_the_conf(
    airflow: AirflowServer, conf_sink: Path
) -> None:
    # Given the sample DAG is parsed
    wait_for_dag(airflow, "ingest_sales", timeout=180)
    run_id = f"contract-{airflow.major}-{uuid.uuid4().hex[:12]}"

    # When a run is triggered through the REST API with a conf
    response = airflow.api_session().post(
        airflow.api_url("/dags/ingest_sales/dagRuns"),
        json=_trigger_body(airflow, run_id, AWKWARD_CONF),
        timeout=30,
    )

    # Then Airflow accepts it and the task writes exactly that conf to the sink
    assert response.status_code in (200, 201), response.text
    assert response.json()["dag_run_id"] == run_id
    written = conf_sink / "ingest_sales" / f"{run_id}.json"
    wait_until(
        written.exists, timeout=240, interval=1, what=f"{written}", process=airflow.processes
    )
    assert json.loads(written.read_text()) == {
        "dag_id": "ingest_sales",
        "run_id": run_id,
        "conf": AWKWARD_CONF,
    }


def test_always_paused_dag_starts_paused(airflow: AirflowServer) -> None:
    # Given the sample DAG that asks to start paused
    wait_for_dag(airflow, "always_paused", timeout=180)

    # When its details are read
    response = airflow.api_session().get(airflow.api_url("/dags/always_paused"), timeout=30)

    # Then it is reported paused, although new DAGs start unpaused in this stack
    assert response.status_code == 200
    assert response.json()["is_paused"] is True


def test_least_privilege_user_can_trigger_but_not_read_connections(
    airflow: AirflowServer,
) -> None:
    # Given sessions for the admin and for the least-privilege account ("User" role)
    admin = airflow.api_session()
    user = airflow.api_session(airflow.user_username, airflow.user_password)
    wait_for_dag(airflow, "always_paused", timeout=180)
    run_id = f"least-privilege-{uuid.uuid4().hex[:12]}"

    # When the user triggers the paused DAG and asks for the connections (an Op/Admin resource)
    triggered = user.post(
        airflow.api_url("/dags/always_paused/dagRuns"),
        json=_trigger_body(airflow, run_id, {"by": "user"}),
        timeout=30,
    )
    user_connections = user.get(airflow.api_url("/connections"), timeout=30)
    admin_connections = admin.get(airflow.api_url("/connections"), timeout=30)

    # Then the trigger is accepted (and queued, the DAG being paused) and the connections refused
    assert triggered.status_code in (200, 201), triggered.text
    assert triggered.json()["state"] == "queued"
    assert user_connections.status_code == 403
    assert admin_connections.status_code == 200


# --- stopping (kept last: each ends its server for the rest of the module; the shared Airflow
# servers are stopped and checked by the session's airflow_pool fixture) -------------------------


def test_dynamodb_local_stop_leaves_no_process_and_frees_the_port(
    dynamodb_local: DynamoDBLocal,
) -> None:
    pids_before = dynamodb_local.process.group_pids()
    dynamodb_local.stop()
    _assert_stopped(pids_before, dynamodb_local.port, dynamodb_local.process.group_pids())


def test_moto_stop_leaves_no_process_and_frees_the_port(moto: MotoServer) -> None:
    pids_before = moto.process.group_pids()
    moto.stop()
    _assert_stopped(pids_before, moto.port, moto.process.group_pids())
