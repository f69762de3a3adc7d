"""The MWAA emulator in front of real Apache Airflow (3.3, 3.0 and 2.11): REST and CLI paths.

Uses the session's shared Airflow servers (tests/conftest.py: airflow_pool), one per version of
the matrix (tests/conftest.py: airflow_version, DAGTRIGGER_AIRFLOW_VERSIONS).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from devstack.airflow import AirflowServer
from devstack.mwaa_emulator import MwaaEmulator

pytestmark = pytest.mark.contract

ENV = "contract"
DAG_ID = "ingest_sales"


@dataclass
class Stack:
    airflow: AirflowServer
    emulator: MwaaEmulator
    mwaa: Any


@pytest.fixture(scope="module")
def stack(
    airflow_version: str, tmp_path_factory: pytest.TempPathFactory, airflow_pool: Any
) -> Iterator[Stack]:
    airflow: AirflowServer = airflow_pool.get(airflow_version)
    with MwaaEmulator(tmp_path_factory.mktemp("mwaa")) as emulator:
        emulator.add_environment(ENV, airflow)
        yield Stack(airflow, emulator, emulator.client())


def trigger_body(stack: Stack, run_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"dag_run_id": run_id, "conf": {"key": "it's here"}}
    if stack.airflow.major >= 3:
        body["logical_date"] = None  # Airflow 3 requires the key
    return body


def run_cli(stack: Stack, command: str) -> tuple[str, str]:
    token = stack.mwaa.create_cli_token(Name=ENV)
    response = requests.post(
        f"https://{token['WebServerHostname']}/aws_mwaa/cli",
        data=command.encode(),
        headers={"Authorization": f"Bearer {token['CliToken']}", "Content-Type": "text/plain"},
        verify=str(stack.emulator.ca_bundle_path),
        timeout=120,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"stdout", "stderr"}
    return base64.b64decode(answer["stdout"]).decode(), base64.b64decode(answer["stderr"]).decode()


def test_invoke_rest_api_lists_dags(stack: Stack) -> None:
    answer = stack.mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET")
    assert answer["RestApiStatusCode"] == 200
    assert DAG_ID in {dag["dag_id"] for dag in answer["RestApiResponse"]["dags"]}


def test_invoke_rest_api_triggers_a_run(stack: Stack) -> None:
    answer = stack.mwaa.invoke_rest_api(
        Name=ENV,
        Path=f"/dags/{DAG_ID}/dagRuns",
        Method="POST",
        Body=trigger_body(stack, "contract_rest_1"),
    )
    assert answer["RestApiStatusCode"] == 200
    assert answer["RestApiResponse"]["dag_run_id"] == "contract_rest_1"
    assert answer["RestApiResponse"]["conf"] == {"key": "it's here"}


def test_invoke_rest_api_duplicate_run_is_a_client_exception_409(stack: Stack) -> None:
    path, body = f"/dags/{DAG_ID}/dagRuns", trigger_body(stack, "contract_rest_dup")
    stack.mwaa.invoke_rest_api(Name=ENV, Path=path, Method="POST", Body=body)
    with pytest.raises(stack.mwaa.exceptions.RestApiClientException) as raised:
        stack.mwaa.invoke_rest_api(Name=ENV, Path=path, Method="POST", Body=body)
    assert raised.value.response["RestApiStatusCode"] == 409


def test_invoke_rest_api_unknown_dag_is_a_client_exception_404(stack: Stack) -> None:
    with pytest.raises(stack.mwaa.exceptions.RestApiClientException) as raised:
        stack.mwaa.invoke_rest_api(
            Name=ENV,
            Path="/dags/no_such_dag/dagRuns",
            Method="POST",
            Body=trigger_body(stack, "contract_rest_404"),
        )
    response = raised.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["RestApiStatusCode"] == 404
    assert response["RestApiResponse"]


def test_cli_trigger_then_duplicate_names_dag_run_already_exists(stack: Stack) -> None:
    command = f"""dags trigger {DAG_ID} -c '{{"a": 1}}' -r run1"""
    stdout, _ = run_cli(stack, command)
    assert "run1" in stdout
    _, stderr = run_cli(stack, command)
    assert "DagRunAlreadyExists" in stderr
