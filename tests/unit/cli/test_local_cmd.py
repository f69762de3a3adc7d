"""`dagtrigger local ...` with typer's test runner: no stack is started; the state file is one the
test writes, and the MWAA emulator a loopback one in front of a fake Airflow."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagtrigger_cli import local_cmd
from devstack.mwaa_emulator import MwaaEmulator
from devstack.mwaa_emulator.fake_airflow import FakeAirflow
from devstack.stack import DEMO_ROUTES
from tests.unit.cli.conftest import DagtriggerRunner

RESOURCES = {
    "region": "us-east-1",
    "moto_endpoint": "http://127.0.0.1:45001",
    "dynamodb_endpoint": "http://127.0.0.1:45002",
    "table": "dagtrigger-TriggerHistoryTable-local",
    "queue_url": "http://127.0.0.1:45001/123456789012/dagtrigger-s3-events",
    "dlq_url": "http://127.0.0.1:45001/123456789012/dagtrigger-s3-events-dlq",
    "bucket": "landing",
    "api_url": "http://127.0.0.1:45003",
    "event_bus": "default",
    "airflow_url": "http://127.0.0.1:45004",
    "airflow_user": "admin",
    "airflow_password": "admin-password",
    "mwaa_endpoint": "http://127.0.0.1:45005",
    "mwaa_environment": "dagtrigger-demo",
    "routes_file": "/work/main/.stack/state/stack/routes.yaml",
}


def invoke(cli_runner: DagtriggerRunner, *arguments: str, **options: Any) -> Any:
    return cli_runner.run("local", *arguments, catch_exceptions=False, **options)


def write_state(path: Path, *, pid: int, resources: dict[str, Any] | None = None) -> Path:
    """A state file as `make up` writes it, for a stack whose process group is `pid`."""
    state = {
        "pid": pid,
        "ready": True,
        "endpoints": {},
        "pgids": [],
        "resources": resources or RESOURCES,
        "airflow_version": "3.3.2",
        "function_log": "/work/main/.stack/state/stack/functions.log",
    }
    path.write_text(json.dumps(state))
    return path


@pytest.fixture
def dead_pid() -> int:
    """A process group id no process has (Linux pids stay below 2**22)."""
    return 2**22 + 1


def test_status_without_a_state_file_says_no_stack_runs(
    cli_runner: DagtriggerRunner, tmp_path: Path
) -> None:
    result = invoke(cli_runner, "status", "--state-file", str(tmp_path / "up.json"))

    assert result.exit_code == 1
    assert "no local stack is running" in result.output


def test_status_of_a_stack_that_stopped_says_so(
    cli_runner: DagtriggerRunner, tmp_path: Path, dead_pid: int
) -> None:
    state = write_state(tmp_path / "up.json", pid=dead_pid)

    result = invoke(cli_runner, "status", "--state-file", str(state))

    assert result.exit_code == 1
    assert "left from one that stopped" in result.output


def test_status_of_a_stack_still_starting_says_so(
    cli_runner: DagtriggerRunner, tmp_path: Path
) -> None:
    state = tmp_path / "up.json"
    state.write_text(json.dumps({"pid": os.getpgrp(), "ready": False}))

    result = invoke(cli_runner, "status", "--state-file", str(state))

    assert result.exit_code == 1
    assert "is starting" in result.output


def test_status_of_a_running_stack_shows_its_resources(
    cli_runner: DagtriggerRunner, tmp_path: Path
) -> None:
    # Given a state file naming a live process group (this test's own)
    state = write_state(tmp_path / "up.json", pid=os.getpgrp())

    # When the status is asked
    result = invoke(cli_runner, "status", "--state-file", str(state))

    # Then every endpoint, name and the Airflow login are shown
    assert result.exit_code == 0, result.output
    assert "local stack running" in result.output
    for key in ("airflow_url", "mwaa_endpoint", "moto_endpoint", "queue_url", "dlq_url", "table"):
        assert RESOURCES[key] in result.output
    assert "admin / admin-password" in result.output


def test_status_as_json_prints_the_resources_for_scripts(
    cli_runner: DagtriggerRunner, tmp_path: Path
) -> None:
    state = write_state(tmp_path / "up.json", pid=os.getpgrp())

    result = invoke(cli_runner, "status", "--state-file", str(state), "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == RESOURCES


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[MwaaEmulator]:
    airflow = FakeAirflow(major=3).start()
    try:
        with MwaaEmulator(tmp_path / "mwaa") as running:
            running.add_environment("dagtrigger-demo", airflow)
            yield running
    finally:
        airflow.stop()


def test_requests_shows_what_the_emulator_answered(
    cli_runner: DagtriggerRunner, tmp_path: Path, emulator: MwaaEmulator
) -> None:
    # Given a running stack whose emulator answered two calls
    mwaa = emulator.client()
    mwaa.get_environment(Name="dagtrigger-demo")
    mwaa.invoke_rest_api(Name="dagtrigger-demo", Path="/dags", Method="GET")
    resources = {**RESOURCES, "mwaa_endpoint": emulator.control_plane_url}
    state = write_state(tmp_path / "up.json", pid=os.getpgrp(), resources=resources)

    # When its requests are asked
    result = invoke(cli_runner, "requests", "--state-file", str(state))

    # Then both are in the table, with what was asked and answered
    assert result.exit_code == 0, result.output
    assert "GetEnvironment" in result.output
    assert "InvokeRestApi" in result.output
    assert "GET /dags" in result.output


def test_requests_without_a_stack_says_so(cli_runner: DagtriggerRunner, tmp_path: Path) -> None:
    result = invoke(cli_runner, "requests", "--state-file", str(tmp_path / "up.json"))

    assert result.exit_code == 1
    assert "no stack is running" in result.output


def test_help_names_every_command_and_the_stack_options(cli_runner: DagtriggerRunner) -> None:
    wide = {"COLUMNS": "200"}  # so that no name is cut across two lines
    overview = invoke(cli_runner, "--help", env=wide)
    up_help = invoke(cli_runner, "up", "--help", env=wide)

    for command in ("up", "down", "status", "demo", "requests"):
        assert command in overview.output
    for option in ("--airflow", "--transport", "--routes", "invoke_rest_api", "airflow_rest"):
        assert option in up_help.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("up", "--airflow", "4"), "--airflow"),
        (("up", "--transport", "grpc"), "--transport"),
        (("up", "--routes", "/no/such/routes.yaml"), "does not exist"),
        (("demo", "--airflow", "1"), "--airflow"),
        (("requests", "--limit", "0"), "--limit"),
    ],
)
def test_bad_option_values_are_refused_before_anything_runs(
    cli_runner: DagtriggerRunner,
    monkeypatch: pytest.MonkeyPatch,
    arguments: tuple[str, ...],
    message: str,
) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(local_cmd, "_devstack", ran.append)

    result = invoke(cli_runner, *arguments)

    assert result.exit_code == 2
    assert message in result.output
    assert ran == []


def test_an_invalid_routes_file_is_refused_with_the_loaders_message(
    cli_runner: DagtriggerRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a routes file whose route names an environment it does not define
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "version: 1\n"
        "environments:\n  prod: {name: my-env}\n"
        "s3:\n  - {name: r, buckets: [landing], environment: staging, dag_id: etl}\n"
    )
    ran: list[list[str]] = []
    monkeypatch.setattr(local_cmd, "_devstack", ran.append)

    # When the stack is asked to run it
    result = invoke(cli_runner, "up", "--routes", str(routes))

    # Then nothing starts, and the error names the field and its line
    assert result.exit_code == 2
    assert "s3[0].environment" in result.output
    assert "line 5" in result.output
    assert ran == []


def test_up_and_demo_hand_their_options_to_devstack(
    cli_runner: DagtriggerRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(local_cmd, "_devstack", ran.append)

    invoke(cli_runner, "up", "--airflow", "2", "--transport", "cli", "--routes", str(DEMO_ROUTES))
    invoke(cli_runner, "demo", "--logs")
    invoke(cli_runner, "up", "--airflow", "3.0")
    invoke(cli_runner, "down")

    assert ran == [
        ["up", "--airflow", "2", "--transport", "cli", "--routes", str(DEMO_ROUTES)],
        ["demo", "--airflow", "3", "--logs"],
        ["up", "--airflow", "3.0"],
        ["down"],
    ]
