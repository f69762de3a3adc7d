"""The direct Airflow REST transport against loopback fakes of Airflow 2 (api/v1) and 3 (api/v2)."""

from __future__ import annotations

import json
import logging
import socket

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from moto import mock_aws

from dagtrigger.errors import AccessRefusedError, RejectedError, TransientTriggerError
from dagtrigger.transports.airflow_rest import (
    AirflowCredentials,
    AirflowRestTransport,
    secrets_manager_credentials,
)
from dagtrigger.transports.base import EnvironmentRef, FailedTasks, TransportKind

RUN_ID = "dt__3f2a9c"


@pytest.fixture
def rest(http_session, fixed_now):
    """A transport for a fake Airflow, with credentials passed as plain values."""

    def build(
        fake, *, detect_version: bool = False, password: str | None = None
    ) -> AirflowRestTransport:
        environment = EnvironmentRef(
            alias="self-managed",
            name="airflow",
            transport=TransportKind.AIRFLOW_REST,
            airflow_major=None if detect_version else fake.major,
            base_url=fake.base_url + "/",
            credentials_secret="airflow/dagtrigger",
        )
        credentials = AirflowCredentials(fake.username, password or fake.password)
        return AirflowRestTransport(
            environment,
            http_session,
            credentials_provider=lambda _secret: credentials,
            now=fixed_now,
        )

    return build


def env_of(transport: AirflowRestTransport) -> EnvironmentRef:
    return transport.environment


def test_airflow_3_token_is_fetched_once_and_the_body_has_a_null_logical_date(
    rest, fake_airflow, make_request
):
    # Given Airflow 3 with a paused DAG
    fake = fake_airflow(3)
    fake.dags["ingest_sales"] = True
    transport = rest(fake)

    # When two DAG runs are triggered
    first = transport.trigger(make_request(env_of(transport), dag_run_id="r1"))
    transport.trigger(make_request(env_of(transport), dag_run_id="r2"))

    # Then one token served both calls, logical_date was sent as null, and the pause is reported
    assert len(fake.issued_tokens) == 1
    bodies = [json.loads(post["body"]) for post in fake.posts()]
    assert [body["logical_date"] for body in bodies] == [None, None]
    assert bodies[0]["conf"] == {"bucket": "landing", "key": "sales/2026-11-21.csv"}
    assert (first.dag_run_id, first.state, first.already_existed, first.dag_paused) == (
        "r1",
        "queued",
        False,
        True,
    )


def test_airflow_3_expired_token_is_refreshed_once(rest, fake_airflow, make_request):
    # Given Airflow 3 that stops accepting the first token after it was issued
    fake = fake_airflow(3)
    transport = rest(fake)
    transport.trigger(make_request(env_of(transport), dag_run_id="r1"))
    fake.valid_tokens.clear()

    # When the next trigger runs
    result = transport.trigger(make_request(env_of(transport), dag_run_id="r2"))

    # Then a new token was fetched after the 401 and the trigger succeeded
    assert len(fake.issued_tokens) == 2
    assert result.dag_run_id == "r2"


def test_refused_credentials_are_refused_access_not_a_rejection(
    rest, fake_airflow, make_request, caplog
):
    caplog.set_level(logging.DEBUG)
    fake = fake_airflow(3)
    transport = rest(fake, password="wrong-password-value")

    with pytest.raises(AccessRefusedError) as raised:
        transport.trigger(make_request(env_of(transport)))

    assert raised.value.code == "airflow_unauthorized"
    assert "wrong-password-value" not in str(raised.value)
    assert "wrong-password-value" not in caplog.text


def test_airflow_2_uses_basic_auth_and_sends_now_as_logical_date(rest, fake_airflow, make_request):
    fake = fake_airflow(2)
    transport = rest(fake)

    result = transport.trigger(make_request(env_of(transport)))

    sent = json.loads(fake.posts()[0]["body"])
    assert fake.posts()[0]["path"] == "/api/v1/dags/ingest_sales/dagRuns"
    assert sent["logical_date"] == "2026-11-21T02:00:00.124456+00:00"
    assert result.logical_date == sent["logical_date"]
    assert result.dag_paused is False


@pytest.mark.parametrize("major", [2, 3])
def test_409_on_our_run_id_is_recorded_as_already_triggered(
    rest, fake_airflow, make_request, major
):
    # Given Airflow already has a run with our run id (the ledger write was lost)
    fake = fake_airflow(major)
    fake.add_run("ingest_sales", RUN_ID, "2026-11-20T01:00:00+00:00", state="success")
    transport = rest(fake)

    # When the same trigger is made again
    result = transport.trigger(make_request(env_of(transport)))

    # Then it is no error: already triggered, with that run's state and logical date
    assert result.already_existed is True
    assert (result.state, result.logical_date) == ("success", "2026-11-20T01:00:00+00:00")
    assert len(fake.runs["ingest_sales"]) == 1


def test_logical_date_collision_gets_a_new_logical_date(rest, fake_airflow, make_request):
    # Given Airflow 2 where another run holds exactly the logical date we will send first
    fake = fake_airflow(2)
    fake.add_run("ingest_sales", "manual__other", "2026-11-21T02:00:00.124456+00:00")
    transport = rest(fake)

    # When our trigger is made
    result = transport.trigger(make_request(env_of(transport)))

    # Then it is sent again with a later logical date and creates our run
    dates = [json.loads(post["body"])["logical_date"] for post in fake.posts()]
    assert dates == ["2026-11-21T02:00:00.124456+00:00", "2026-11-21T02:00:00.125456+00:00"]
    assert result.already_existed is False
    assert RUN_ID in fake.runs["ingest_sales"]


@pytest.mark.parametrize("major", [2, 3])
def test_unknown_dag_is_rejected_with_airflows_message(rest, fake_airflow, make_request, major):
    fake = fake_airflow(major)
    transport = rest(fake)

    with pytest.raises(RejectedError) as raised:
        transport.trigger(make_request(env_of(transport), dag_id="no_such_dag"))

    assert raised.value.code == "dag_not_found"
    assert "DAG with dag_id: 'no_such_dag' not found" in raised.value.message


@pytest.mark.parametrize(
    ("major", "status", "body"),
    [
        (
            3,
            422,
            {"detail": [{"loc": ["body", "conf"], "msg": "Input should be a valid dictionary"}]},
        ),
        (
            2,
            400,
            {"detail": "'conf' is not of type 'object'", "status": 400, "title": "Bad Request"},
        ),
    ],
)
def test_refused_conf_is_rejected_with_airflows_message(
    rest, fake_airflow, make_request, major, status, body
):
    fake = fake_airflow(major)
    fake.scripted_posts.append((status, body))
    transport = rest(fake)

    with pytest.raises(RejectedError) as raised:
        transport.trigger(make_request(env_of(transport)))

    assert raised.value.code == "conf_rejected"
    assert raised.value.http_status == status


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_throttling_and_server_errors_are_transient(rest, fake_airflow, make_request, status):
    fake = fake_airflow(3)
    fake.scripted_posts.append((status, {"detail": "try later"}))
    transport = rest(fake)

    with pytest.raises(TransientTriggerError) as raised:
        transport.trigger(make_request(env_of(transport)))

    assert raised.value.http_status == status


def test_unreachable_airflow_is_transient(http_session, make_request):
    # Given a loopback port where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = EnvironmentRef(
        alias="gone", name="gone", transport=TransportKind.AIRFLOW_REST, airflow_major=2,
        base_url=f"http://127.0.0.1:{port}",
    )  # fmt: skip

    with pytest.raises(TransientTriggerError):
        AirflowRestTransport(environment, http_session).trigger(make_request(environment))


@pytest.mark.parametrize("major", [2, 3])
def test_airflow_version_is_detected_from_the_public_health_endpoint(
    rest, fake_airflow, make_request, major
):
    fake = fake_airflow(major)
    transport = rest(fake, detect_version=True)

    transport.trigger(make_request(env_of(transport)))

    assert fake.posts()[0]["path"] == f"/api/v{major - 1}/dags/ingest_sales/dagRuns"


def test_run_state_is_read_from_airflow(rest, fake_airflow):
    fake = fake_airflow(3)
    fake.add_run("ingest_sales", RUN_ID, None, state="running")
    transport = rest(fake)

    assert transport.get_dag_run_state("ingest_sales", RUN_ID) == "running"
    assert transport.get_dag_run_state("ingest_sales", "absent") is None


def read_secret(name: str) -> AirflowCredentials:
    provider = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    return secrets_manager_credentials(lambda: provider)(name)


def test_credentials_come_from_a_secrets_manager_json_secret():
    # Given a secret holding {"username", "password"}
    with mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name="airflow/creds-test", SecretString=json.dumps({"username": "u1", "password": "p1"})
        )

        # When the provider reads it
        credentials = read_secret("airflow/creds-test")

    # Then both values are there, and the password stays out of its repr
    assert (credentials.username, credentials.password) == ("u1", "p1")
    assert "p1" not in repr(credentials)


def test_a_malformed_secret_says_what_shape_it_needs():
    with mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name="airflow/bad-shape", SecretString='{"user": "u1"}'
        )

        with pytest.raises(TransientTriggerError) as raised:
            read_secret("airflow/bad-shape")

    assert '"username"' in str(raised.value)


@pytest.mark.parametrize("major", [2, 3])
def test_a_failed_runs_tasks_are_read_from_its_own_task_list(rest, fake_airflow, major):
    # Given a run that failed in two tasks, one of them mapped and failed twice
    fake = fake_airflow(major)
    fake.add_run("ingest_sales", RUN_ID, None, state="failed")
    fake.task_instances[RUN_ID] = [
        {"task_id": "extract", "state": "success"},
        {"task_id": "load", "state": "failed", "map_index": 0},
        {"task_id": "load", "state": "failed", "map_index": 1},
        {"task_id": "notify", "state": "failed"},
        {"task_id": "cleanup", "state": "upstream_failed"},
    ]

    # When its failed tasks are asked for
    failed = rest(fake).failed_task_ids("ingest_sales", RUN_ID)

    # Then one read of the run's own task list, filtered by state, names them and counts them
    assert failed == FailedTasks(("load", "notify"), count=3)
    (read,) = [request for request in fake.requests if "taskInstances" in request["path"]]
    root = "/api/v2" if major >= 3 else "/api/v1"
    assert read["path"] == f"{root}/dags/ingest_sales/dagRuns/{RUN_ID}/taskInstances"


def test_failed_tasks_of_a_run_airflow_does_not_know_are_a_refusal(rest, fake_airflow):
    fake = fake_airflow(3)

    with pytest.raises(RejectedError):
        rest(fake).failed_task_ids("ingest_sales", "absent")
