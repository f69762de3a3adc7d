"""The MWAA emulator's refused credentials and black hole, as boto3 and an HTTPS client see them.

Servers bind 127.0.0.1 only; Airflow is the loopback fake.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from devstack.mwaa_emulator import MwaaEmulator
from devstack.mwaa_emulator.credentials import CredentialPolicy, access_key_id_of
from devstack.mwaa_emulator.fake_airflow import FakeAirflow

ENV = "dev"
FUNCTIONS_KEY = "AKIAFUNCTIONS0000001"
OTHER_KEY = "AKIAOPERATOR00000001"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[MwaaEmulator]:
    airflow = FakeAirflow(major=3).start()
    with MwaaEmulator(tmp_path) as running:
        running.add_environment(ENV, airflow)
        yield running
    airflow.stop()


def client_of(emulator: MwaaEmulator, access_key_id: str, *, timeout: float = 10.0) -> Any:
    return boto3.client(
        "mwaa",
        endpoint_url=emulator.control_plane_url,
        region_name="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key="not-checked",
        config=Config(
            inject_host_prefix=False,
            retries={"total_max_attempts": 1},
            connect_timeout=timeout,
            read_timeout=timeout,
        ),
    )


def refusal_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


# -- credentials ------------------------------------------------------------------------------


def test_the_access_key_is_read_from_the_sigv4_credential_scope() -> None:
    header = (
        "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261121/us-east-1/airflow/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    assert access_key_id_of(header) == "AKIAEXAMPLE"
    assert access_key_id_of("Bearer token") is None


@pytest.mark.parametrize(
    ("state", "code", "message"),
    [
        (
            "expired",
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ),
        (
            "revoked",
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
    ],
)
def test_an_expired_or_revoked_credential_is_refused_with_awss_403(
    emulator: MwaaEmulator, state: str, code: str, message: str
) -> None:
    # Given the functions' access key refused
    emulator.refuse_credentials(FUNCTIONS_KEY, state)

    # When the functions call any operation
    with pytest.raises(ClientError) as raised:
        client_of(emulator, FUNCTIONS_KEY).invoke_rest_api(Name=ENV, Path="/dags", Method="GET")

    # Then AWS's answer for that credential comes back, whatever the operation
    assert refusal_of(raised) == (code, 403, message)
    with pytest.raises(ClientError):
        client_of(emulator, FUNCTIONS_KEY).get_environment(Name=ENV)
    # And another caller is not affected
    assert client_of(emulator, OTHER_KEY).get_environment(Name=ENV)["Environment"]["Name"] == ENV


def test_a_denied_credential_is_told_which_action_on_which_resource(
    emulator: MwaaEmulator,
) -> None:
    emulator.refuse_credentials(FUNCTIONS_KEY, "denied")

    with pytest.raises(ClientError) as raised:
        client_of(emulator, FUNCTIONS_KEY).invoke_rest_api(Name=ENV, Path="/dags", Method="GET")

    code, status, message = refusal_of(raised)
    assert (code, status) == ("AccessDeniedException", 403)
    assert "is not authorized to perform: airflow:InvokeRestApi" in message
    assert message.endswith(f"on resource: {emulator.environment_arn(ENV)}")


def test_a_restored_credential_works_again(emulator: MwaaEmulator) -> None:
    emulator.refuse_credentials(FUNCTIONS_KEY, "expired")
    emulator.restore_credentials(FUNCTIONS_KEY)

    answer = client_of(emulator, FUNCTIONS_KEY).invoke_rest_api(
        Name=ENV, Path="/dags", Method="GET"
    )

    assert answer["RestApiStatusCode"] == 200


def test_credentials_are_switched_over_the_admin_endpoint(emulator: MwaaEmulator) -> None:
    admin = f"{emulator.control_plane_url}/_emulator/credentials"

    revoke = {"access_key_id": FUNCTIONS_KEY, "state": "revoked"}
    refused = requests.post(admin, json=revoke, timeout=5)
    assert refused.status_code == 200
    assert refused.json() == {FUNCTIONS_KEY: "revoked"}
    with pytest.raises(ClientError):
        client_of(emulator, FUNCTIONS_KEY).get_environment(Name=ENV)

    valid = requests.post(admin, json={"access_key_id": FUNCTIONS_KEY, "state": "valid"}, timeout=5)
    assert valid.json() == {}
    assert client_of(emulator, FUNCTIONS_KEY).get_environment(Name=ENV)


def test_an_unknown_credential_state_is_refused_with_the_known_ones() -> None:
    policy = CredentialPolicy(account_id="123456789012")
    with pytest.raises(ValueError, match="unknown credential state 'stolen'; use one of expired"):
        policy.refuse(FUNCTIONS_KEY, "stolen")


def test_the_admin_endpoint_explains_a_bad_credential_change(emulator: MwaaEmulator) -> None:
    answer = requests.post(
        f"{emulator.control_plane_url}/_emulator/credentials",
        json={"access_key_id": FUNCTIONS_KEY},
        timeout=5,
    )
    assert answer.status_code == 400
    assert "give 'access_key_id' and 'state'" in answer.json()["message"]


# -- black hole -------------------------------------------------------------------------------


def test_a_black_hole_lets_a_new_connection_time_out_connecting(emulator: MwaaEmulator) -> None:
    # Given the emulator turned into a black hole
    emulator.black_hole(True)
    fresh = client_of(emulator, FUNCTIONS_KEY, timeout=0.5)

    # When a client opens a new connection, it waits its whole connect timeout, then gives up
    started = time.monotonic()
    with pytest.raises(ConnectTimeoutError):
        fresh.get_environment(Name=ENV)
    assert time.monotonic() - started >= 0.5


def test_a_black_hole_leaves_a_request_on_an_open_connection_unanswered(
    emulator: MwaaEmulator,
) -> None:
    # Given a client whose connection is open (it called once before)
    kept = client_of(emulator, FUNCTIONS_KEY, timeout=0.5)
    kept.get_environment(Name=ENV)

    # When the black hole starts, its next request is read but never answered
    with emulator.black_holed(), pytest.raises(ReadTimeoutError):
        kept.get_environment(Name=ENV)


def test_the_emulator_answers_again_once_the_black_hole_ends(emulator: MwaaEmulator) -> None:
    with emulator.black_holed(), pytest.raises(ConnectTimeoutError):
        client_of(emulator, FUNCTIONS_KEY, timeout=0.3).get_environment(Name=ENV)

    answer = client_of(emulator, FUNCTIONS_KEY, timeout=5).get_environment(Name=ENV)
    assert answer["Environment"]["Status"] == "AVAILABLE"


def test_a_black_hole_swallows_the_web_servers_cli_too(emulator: MwaaEmulator) -> None:
    token = client_of(emulator, FUNCTIONS_KEY).create_cli_token(Name=ENV)["CliToken"]

    with emulator.black_holed(), pytest.raises(requests.ConnectTimeout):
        requests.post(
            f"https://{emulator.web_server_hostname(ENV)}/aws_mwaa/cli",
            data=b"dags list",
            headers={"Authorization": f"Bearer {token}"},
            verify=str(emulator.ca_bundle_path),
            timeout=(0.3, 1),
        )


def test_stopping_a_black_holed_emulator_does_not_hang(tmp_path: Path) -> None:
    airflow = FakeAirflow(major=3).start()
    try:
        emulator = MwaaEmulator(tmp_path)
        emulator.start()
        emulator.add_environment(ENV, airflow)
        emulator.black_hole(True)

        started = time.monotonic()
        emulator.stop()

        assert time.monotonic() - started < 5
    finally:
        airflow.stop()
