"""The MWAA emulator as boto3 and an HTTPS client see it, in front of a loopback fake Airflow.

Servers bind 127.0.0.1 only; the Airflow CLI is replaced by a recording runner (no processes).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.mwaa_emulator import CliOutput, CliTimeout, MwaaEmulator
from devstack.mwaa_emulator.backend import AirflowBackend
from devstack.mwaa_emulator.fake_airflow import FakeAirflow

ENV = "dev"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingCli:
    """Stands in for the airflow binary: records argv, optionally waits on a gate."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.gate: threading.Event | None = None
        self.started = threading.Event()
        self.timeout = False

    def __call__(self, backend: AirflowBackend, argv: Sequence[str], timeout: float) -> CliOutput:
        self.calls.append(tuple(argv))
        self.started.set()
        if self.gate is not None:
            self.gate.wait(timeout=10)
        if self.timeout:
            raise CliTimeout("too slow")
        return CliOutput(stdout=f"ran {' '.join(argv)}\n".encode(), stderr=b"warning: x\n")


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
def airflow() -> Iterator[FakeAirflow]:
    fake = FakeAirflow(major=3).start()
    yield fake
    fake.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cli() -> RecordingCli:
    return RecordingCli()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def emulator(
    tmp_path: Path, airflow: FakeAirflow, clock: FakeClock, cli: RecordingCli, sleeps: Sleeps
) -> Iterator[MwaaEmulator]:
    with MwaaEmulator(tmp_path, clock=clock, cli_runner=cli, sleep=sleeps) as running:
        running.add_environment(ENV, airflow)
        yield running


@pytest.fixture
def mwaa(emulator: MwaaEmulator) -> Any:
    return emulator.client()


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def post_cli(emulator: MwaaEmulator, token: str, body: str, name: str = ENV) -> requests.Response:
    return requests.post(
        f"https://{emulator.web_server_hostname(name)}/aws_mwaa/cli",
        data=body.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        verify=str(emulator.ca_bundle_path),
        timeout=10,
    )


# -- environments -----------------------------------------------------------------------------


def test_get_environment_describes_an_available_environment(
    emulator: MwaaEmulator, mwaa: Any, airflow: FakeAirflow
) -> None:
    environment = mwaa.get_environment(Name=ENV)["Environment"]
    assert environment["Name"] == ENV
    assert environment["Arn"] == "arn:aws:airflow:us-east-1:123456789012:environment/dev"
    assert environment["Status"] == "AVAILABLE"
    assert environment["AirflowVersion"] == airflow.version
    assert environment["WebserverUrl"] == emulator.web_server_hostname(ENV)


def test_get_unknown_environment_raises_resource_not_found(mwaa: Any) -> None:
    with pytest.raises(mwaa.exceptions.ResourceNotFoundException) as raised:
        mwaa.get_environment(Name="missing")
    assert error_of(raised) == ("ResourceNotFoundException", 404)


def test_invalid_environment_name_raises_validation_exception(mwaa: Any) -> None:
    with pytest.raises(mwaa.exceptions.ValidationException):
        mwaa.get_environment(Name="1-starts-with-a-digit")


def test_list_environments_pages_with_next_token(
    emulator: MwaaEmulator, mwaa: Any, airflow: FakeAirflow
) -> None:
    # Given a second environment
    emulator.add_environment("zeta", airflow)
    # When listing one per page
    first = mwaa.list_environments(MaxResults=1)
    second = mwaa.list_environments(MaxResults=1, NextToken=first["NextToken"])
    # Then each page holds one name, and the last page has no NextToken
    assert (first["Environments"], second["Environments"]) == ([ENV], ["zeta"])
    assert "NextToken" not in second


def test_list_environments_refuses_more_than_25_per_page(mwaa: Any) -> None:
    with pytest.raises(mwaa.exceptions.ValidationException):
        mwaa.list_environments(MaxResults=26)


def test_create_environment_binds_to_the_airflow_of_that_major(
    emulator: MwaaEmulator, mwaa: Any, airflow: FakeAirflow
) -> None:
    # When an environment is created over the API for Airflow 3
    arn = mwaa.create_environment(
        Name="made",
        AirflowVersion="3.0.6",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/mwaa",
        SourceBucketArn="arn:aws:s3:::bucket",
        DagS3Path="dags",
        NetworkConfiguration={"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg"]},
    )["Arn"]
    # Then it is described and forwards to the registered Airflow 3
    assert arn == emulator.environment_arn("made")
    assert mwaa.get_environment(Name="made")["Environment"]["SourceBucketArn"] == (
        "arn:aws:s3:::bucket"
    )
    assert mwaa.invoke_rest_api(Name="made", Path="/dags", Method="GET")["RestApiStatusCode"] == 200


def test_create_existing_environment_raises_validation_exception(mwaa: Any) -> None:
    with pytest.raises(mwaa.exceptions.ValidationException, match="already exists"):
        mwaa.create_environment(
            Name=ENV,
            ExecutionRoleArn="arn:aws:iam::123456789012:role/mwaa",
            SourceBucketArn="arn:aws:s3:::bucket",
            DagS3Path="dags",
            NetworkConfiguration={"SubnetIds": ["subnet-1", "subnet-2"]},
        )


def test_endpoint_from_aws_endpoint_url_mwaa(
    emulator: MwaaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given only the environment variable pointing at the emulator
    monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", emulator.control_plane_url)
    client = boto3.client(
        "mwaa",
        region_name="us-east-1",
        aws_access_key_id="AKIATEST",
        aws_secret_access_key="test",
        config=Config(inject_host_prefix=False),
    )
    # Then the plain client reaches the emulator
    assert client.list_environments()["Environments"] == [ENV]


def test_unsigned_request_is_refused(emulator: MwaaEmulator) -> None:
    response = requests.get(f"{emulator.control_plane_url}/environments/{ENV}", timeout=5)
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


# -- tokens -----------------------------------------------------------------------------------


def test_create_cli_token_names_the_web_server(emulator: MwaaEmulator, mwaa: Any) -> None:
    answer = mwaa.create_cli_token(Name=ENV)
    assert answer["WebServerHostname"] == emulator.web_server_hostname(ENV)
    assert len(answer["CliToken"]) >= 32


def test_create_web_login_token_answers_every_member(mwaa: Any) -> None:
    answer = mwaa.create_web_login_token(Name=ENV)
    assert {"WebToken", "WebServerHostname", "IamIdentity", "AirflowIdentity"} <= set(answer)


def test_create_cli_token_for_unknown_environment(mwaa: Any) -> None:
    with pytest.raises(mwaa.exceptions.ResourceNotFoundException):
        mwaa.create_cli_token(Name="missing")


# -- InvokeRestApi ----------------------------------------------------------------------------


def test_invoke_rest_api_get_forwards_to_api_v2(mwaa: Any, airflow: FakeAirflow) -> None:
    answer = mwaa.invoke_rest_api(
        Name=ENV, Path="/dags", Method="GET", QueryParameters={"limit": 5}
    )
    assert answer["RestApiStatusCode"] == 200
    assert answer["RestApiResponse"]["dags"][0]["dag_id"] == "ingest_sales"
    assert (airflow.calls[-1].path, airflow.calls[-1].query) == ("/dags", {"limit": ["5"]})


def test_invoke_rest_api_post_sends_the_body(mwaa: Any, airflow: FakeAirflow) -> None:
    body = {"dag_run_id": "r1", "logical_date": None, "conf": {"key": "it's"}}
    answer = mwaa.invoke_rest_api(
        Name=ENV, Path="/dags/ingest_sales/dagRuns", Method="POST", Body=body
    )
    assert answer["RestApiResponse"]["dag_run_id"] == "r1"
    assert airflow.calls[-1].body == body


def test_airflow_404_raises_rest_api_client_exception_like_mwaa(mwaa: Any) -> None:
    with pytest.raises(mwaa.exceptions.RestApiClientException) as raised:
        mwaa.invoke_rest_api(
            Name=ENV, Path="/dags/nope/dagRuns", Method="POST", Body={"logical_date": None}
        )
    response = raised.value.response
    assert error_of(raised) == ("RestApiClientException", 400)
    assert response["Error"]["Message"] == ""
    assert response["RestApiStatusCode"] == 404
    assert response["RestApiResponse"]["title"] == "DAG not found"


def test_duplicate_run_raises_rest_api_client_exception_409(mwaa: Any) -> None:
    body = {"dag_run_id": "same", "logical_date": None}
    mwaa.invoke_rest_api(Name=ENV, Path="/dags/ingest_sales/dagRuns", Method="POST", Body=body)
    with pytest.raises(mwaa.exceptions.RestApiClientException) as raised:
        mwaa.invoke_rest_api(Name=ENV, Path="/dags/ingest_sales/dagRuns", Method="POST", Body=body)
    assert raised.value.response["RestApiStatusCode"] == 409


def test_airflow_500_raises_rest_api_server_exception(mwaa: Any) -> None:
    with pytest.raises(mwaa.exceptions.RestApiServerException) as raised:
        mwaa.invoke_rest_api(Name=ENV, Path="/boom", Method="GET")
    assert raised.value.response["RestApiStatusCode"] == 500
    assert raised.value.response["RestApiResponse"]["detail"] == "boom"


@pytest.mark.parametrize(
    ("path", "method"),
    [("/dags/" + "x" * 59, "GET"), ("/dags", "HEAD"), ("/dags/../config", "GET")],
    ids=["path-over-64", "method-not-in-enum", "path-escapes-the-api"],
)
def test_invalid_invoke_rest_api_input_raises_validation_exception(
    mwaa: Any, path: str, method: str
) -> None:
    with pytest.raises(mwaa.exceptions.ValidationException) as raised:
        mwaa.invoke_rest_api(Name=ENV, Path=path, Method=method)
    assert error_of(raised) == ("ValidationException", 400)


def test_invoke_rest_api_on_airflow_2_uses_api_v1_with_basic_auth(tmp_path: Path) -> None:
    airflow2 = FakeAirflow(major=2).start()
    try:
        with MwaaEmulator(tmp_path) as emulator:
            emulator.add_environment("old", airflow2)
            answer = emulator.client().invoke_rest_api(Name="old", Path="/dags", Method="GET")
    finally:
        airflow2.stop()
    assert answer["RestApiStatusCode"] == 200
    assert airflow2.calls[-1].path == "/dags"


def test_more_than_ten_calls_a_second_are_throttled(mwaa: Any, clock: FakeClock) -> None:
    # Given 10 calls in the same instant
    for _ in range(10):
        mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET")
    # When an 11th comes
    with pytest.raises(ClientError) as raised:
        mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET")
    # Then it is throttled (HTTP 400, as AWS's Common Errors document ThrottlingException), and a
    # tenth of a second later one more call passes
    assert error_of(raised) == ("ThrottlingException", 400)
    clock.now += 0.1
    assert mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET")["RestApiStatusCode"] == 200


# -- faults -----------------------------------------------------------------------------------


def test_fault_fails_the_next_call_then_recovers(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.faults.set("InvokeRestApi", error="ThrottlingException", fail_next=1)
    with pytest.raises(ClientError) as raised:
        mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET")
    assert error_of(raised) == ("ThrottlingException", 400)
    assert mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET")["RestApiStatusCode"] == 200


@pytest.mark.parametrize(
    ("error", "exception_name", "status"),
    [
        ("InternalServerException", "InternalServerException", 500),
        ("AccessDeniedException", "AccessDeniedException", 403),
        ("RestApiServerException", "RestApiServerException", 400),
    ],
)
def test_injected_errors_raise_the_modeled_exception(
    emulator: MwaaEmulator, mwaa: Any, error: str, exception_name: str, status: int
) -> None:
    emulator.faults.set("InvokeRestApi", error=error, error_rate=1.0)
    with pytest.raises(getattr(mwaa.exceptions, exception_name)) as raised:
        mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET")
    assert error_of(raised) == (exception_name, status)


def test_injected_http_status_has_no_aws_error_type(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.faults.set("GetEnvironment", error=503, outage=True)
    with pytest.raises(ClientError) as raised:
        mwaa.get_environment(Name=ENV)
    assert error_of(raised) == ("503", 503)


def test_injected_latency_sleeps_before_answering(
    emulator: MwaaEmulator, mwaa: Any, sleeps: Sleeps
) -> None:
    emulator.faults.set("CreateCliToken", latency_seconds=2.5)
    mwaa.create_cli_token(Name=ENV)
    assert sleeps.seconds == [2.5]


def test_admin_endpoint_sets_and_clears_faults(emulator: MwaaEmulator, mwaa: Any) -> None:
    admin = f"{emulator.control_plane_url}/_emulator/faults"
    # When an out-of-process runner starts an outage of CreateCliToken
    fault = {"operation": "CreateCliToken", "error": "InternalServerException", "outage": True}
    assert requests.post(admin, json=fault, timeout=5).status_code == 200
    with pytest.raises(mwaa.exceptions.InternalServerException):
        mwaa.create_cli_token(Name=ENV)
    # And then clears it
    requests.delete(admin, params={"operation": "CreateCliToken"}, timeout=5)
    # Then tokens are issued again
    assert mwaa.create_cli_token(Name=ENV)["CliToken"]


def test_admin_endpoint_explains_a_bad_fault(emulator: MwaaEmulator) -> None:
    response = requests.post(
        f"{emulator.control_plane_url}/_emulator/faults",
        json={"operation": "InvokeRestApi", "error": "Nope"},
        timeout=5,
    )
    assert response.status_code == 400
    assert "unknown error 'Nope'" in response.json()["message"]


# -- /aws_mwaa/cli ----------------------------------------------------------------------------


def test_cli_runs_the_split_command_and_answers_base64(
    emulator: MwaaEmulator, mwaa: Any, cli: RecordingCli
) -> None:
    token = mwaa.create_cli_token(Name=ENV)["CliToken"]
    response = post_cli(emulator, token, """dags trigger ingest_sales -c '{"a": 1}' -r run1""")
    assert response.status_code == 200
    assert set(response.json()) == {"stdout", "stderr"}
    assert base64.b64decode(response.json()["stderr"]) == b"warning: x\n"
    assert cli.calls == [("dags", "trigger", "ingest_sales", "-c", '{"a": 1}', "-r", "run1")]


def test_cli_token_expires_after_sixty_seconds(
    emulator: MwaaEmulator, mwaa: Any, clock: FakeClock, cli: RecordingCli
) -> None:
    token = mwaa.create_cli_token(Name=ENV)["CliToken"]
    clock.now += 60
    assert post_cli(emulator, token, "dags list").status_code == 403
    assert cli.calls == []


@pytest.mark.parametrize("token", ["", "made-up-token"])
def test_cli_refuses_a_missing_or_unknown_token(emulator: MwaaEmulator, token: str) -> None:
    assert post_cli(emulator, token, "dags list").status_code == 403


def test_cli_token_of_another_environment_is_refused(
    emulator: MwaaEmulator, mwaa: Any, airflow: FakeAirflow
) -> None:
    emulator.add_environment("other", airflow)
    token = mwaa.create_cli_token(Name="other")["CliToken"]
    assert post_cli(emulator, token, "dags list", name=ENV).status_code == 403


def test_cli_refuses_an_unsupported_command_like_mwaa(
    emulator: MwaaEmulator, mwaa: Any, cli: RecordingCli
) -> None:
    token = mwaa.create_cli_token(Name=ENV)["CliToken"]
    assert post_cli(emulator, token, "users create -u x -r Admin").status_code == 500
    assert cli.calls == []


def test_cli_refuses_a_concurrent_request(
    emulator: MwaaEmulator, mwaa: Any, cli: RecordingCli
) -> None:
    # Given a CLI request still running
    cli.gate = threading.Event()
    token = mwaa.create_cli_token(Name=ENV)["CliToken"]
    first: list[requests.Response] = []
    worker = threading.Thread(target=lambda: first.append(post_cli(emulator, token, "dags list")))
    worker.start()
    try:
        assert cli.started.wait(timeout=10)
        # When a second request arrives
        second = post_cli(emulator, token, "dags list")
    finally:
        cli.gate.set()
        worker.join(timeout=10)
    # Then it is refused as busy, and the first one completes
    assert second.status_code == 503
    assert first[0].status_code == 200


def test_cli_command_that_runs_too_long_answers_gateway_timeout(
    emulator: MwaaEmulator, mwaa: Any, cli: RecordingCli
) -> None:
    cli.timeout = True
    token = mwaa.create_cli_token(Name=ENV)["CliToken"]
    assert post_cli(emulator, token, "dags list").status_code == 504


def test_cli_fault_answers_its_status(emulator: MwaaEmulator, mwaa: Any) -> None:
    emulator.faults.set("cli", error=502, fail_next=1)
    token = mwaa.create_cli_token(Name=ENV)["CliToken"]
    assert post_cli(emulator, token, "dags list").status_code == 502
    assert post_cli(emulator, token, "dags list").status_code == 200


def test_cli_answers_only_post(emulator: MwaaEmulator) -> None:
    response = requests.get(
        f"https://{emulator.web_server_hostname(ENV)}/aws_mwaa/cli",
        verify=str(emulator.ca_bundle_path),
        timeout=5,
    )
    assert response.status_code == 405


def test_web_server_certificate_is_valid_for_localhost(emulator: MwaaEmulator) -> None:
    port = emulator.web_server_hostname(ENV).rsplit(":", 1)[1]
    response = requests.post(
        f"https://localhost:{port}/aws_mwaa/cli", verify=str(emulator.ca_bundle_path), timeout=5
    )
    assert response.status_code == 403


def test_removed_environment_stops_its_web_server(emulator: MwaaEmulator, mwaa: Any) -> None:
    hostname = emulator.web_server_hostname(ENV)
    mwaa.delete_environment(Name=ENV)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"https://{hostname}/aws_mwaa/cli", verify=False, timeout=5)


def test_invoke_rest_api_logs_in_again_when_airflow_refuses_its_jwt(
    mwaa: Any, airflow: FakeAirflow
) -> None:
    # Given a call that made the emulator log in, then Airflow forgetting that login
    mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET")
    airflow.rotate_jwt()
    # When the next call comes, the emulator logs in again and the call succeeds
    assert mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET")["RestApiStatusCode"] == 200


def test_unknown_operation_is_refused(emulator: MwaaEmulator) -> None:
    response = requests.get(
        f"{emulator.control_plane_url}/nothing-here",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=y"},
        timeout=5,
    )
    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"


def test_stopped_emulator_cannot_start_again(tmp_path: Path) -> None:
    emulator = MwaaEmulator(tmp_path)
    emulator.start()
    emulator.stop()
    with pytest.raises(RuntimeError, match="cannot start again"):
        emulator.start()
