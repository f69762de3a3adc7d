"""The emulator's record of the requests it answered (GET /_emulator/requests).

In front of a loopback fake Airflow, with the Airflow CLI replaced by a recording runner.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.mwaa_emulator import MwaaEmulator
from devstack.mwaa_emulator.fake_airflow import FakeAirflow
from devstack.mwaa_emulator.request_log import MAX_REQUEST_CHARS, RequestLog, cli_request_text
from tests.unit.devstack.test_mwaa_emulator_protocol import ENV, RecordingCli, post_cli


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[MwaaEmulator]:
    airflow = FakeAirflow(major=3).start()
    try:
        with MwaaEmulator(tmp_path, cli_runner=RecordingCli()) as running:
            running.add_environment(ENV, airflow)
            yield running
    finally:
        airflow.stop()


def recorded(emulator: MwaaEmulator, **query: Any) -> list[dict[str, Any]]:
    answer = requests.get(
        f"{emulator.control_plane_url}/_emulator/requests", params=query, timeout=10
    )
    answer.raise_for_status()
    entries: list[dict[str, Any]] = answer.json()["requests"]
    return entries


def test_control_plane_calls_and_cli_commands_are_recorded_in_order(
    emulator: MwaaEmulator,
) -> None:
    # Given a caller that triggers through InvokeRestApi, then through the CLI
    mwaa = emulator.client()
    mwaa.invoke_rest_api(
        Name=ENV,
        Path="/dags/ingest_sales/dagRuns",
        Method="POST",
        Body={"dag_run_id": "r1", "logical_date": None},
    )
    token = mwaa.create_cli_token(Name=ENV)["CliToken"]
    post_cli(emulator, token, "dags trigger etl --run-id r2 --conf '{\"a\": 1}'")

    # When the record is read
    entries = recorded(emulator)

    # Then each request is there, with what it asked and what was answered
    summary = [(e["operation"], e["environment"], e["request"], e["status"]) for e in entries]
    assert summary == [
        ("InvokeRestApi", ENV, "POST /dags/ingest_sales/dagRuns", 200),
        ("CreateCliToken", ENV, "", 200),
        ("cli", ENV, 'dags trigger etl --run-id r2 --conf {"a": 1}', 200),
    ]
    assert all(entry["time"].endswith("Z") and entry["duration_ms"] >= 0 for entry in entries)

    # And no token is kept anywhere in it
    assert token not in str(entries)


def test_refusals_are_recorded_with_their_status_and_error_type(emulator: MwaaEmulator) -> None:
    # Given a call for a DAG Airflow does not know, and a CLI call with a bad token
    mwaa = emulator.client()
    with pytest.raises(mwaa.exceptions.RestApiClientException):
        mwaa.invoke_rest_api(Name=ENV, Path="/dags/missing", Method="GET")
    post_cli(emulator, "not-a-token", "dags list")

    # Then both are in the record as refused
    (rest, cli) = [(e["operation"], e["status"], e["error"]) for e in recorded(emulator)]
    assert rest == ("InvokeRestApi", 400, "RestApiClientException (Airflow 404)")
    assert cli == ("cli", 403, None)


def test_the_record_is_read_in_part_and_cleared(emulator: MwaaEmulator) -> None:
    # Given three calls
    mwaa = emulator.client()
    for _ in range(3):
        mwaa.get_environment(Name=ENV)

    # Then a limit gives the newest, and DELETE forgets them all
    assert len(recorded(emulator, limit=2)) == 2
    requests.delete(f"{emulator.control_plane_url}/_emulator/requests", timeout=10)
    assert recorded(emulator) == []


def test_the_record_keeps_the_newest_requests_only() -> None:
    log = RequestLog(capacity=2)
    for number in range(3):
        log.record(
            operation="GetEnvironment",
            environment=f"e{number}",
            request="",
            status=200,
            started=0.0,
        )
    assert [entry.environment for entry in log.entries()] == ["e1", "e2"]


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (("variables", "set", "api_key", "s3cr3t"), "variables set api_key ***"),
        (("variables", "get", "api_key"), "variables get api_key"),
        (("dags", "trigger", "etl"), "dags trigger etl"),
    ],
)
def test_cli_arguments_that_may_hold_a_secret_are_masked(argv: tuple[str, ...], text: str) -> None:
    assert cli_request_text(argv) == text


def test_a_long_request_is_cut_to_a_bounded_length() -> None:
    log = RequestLog()
    log.record(operation="cli", environment=ENV, request="x" * 5000, status=200, started=0.0)
    (entry,) = log.entries()
    assert len(entry.request) == MAX_REQUEST_CHARS
    assert entry.request.endswith("...")
