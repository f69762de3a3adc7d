"""The InvokeRestApi transport against a botocore Stubber of the MWAA client."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto import mock_aws

from dagtrigger.errors import AccessRefusedError, RejectedError, TransientTriggerError
from dagtrigger.transports.base import EnvironmentRef, FailedTasks, TransportKind
from dagtrigger.transports.invoke_rest_api import InvokeRestApiTransport
from dagtrigger.transports.rate_budget import (
    RateBudgetExhausted,
    SharedRateBudget,
    rate_budget_key,
)

RUN_ID = "dt__3f2a9c"


@pytest.fixture
def env3() -> EnvironmentRef:
    return EnvironmentRef(
        alias="prod", name="prod-mwaa", transport=TransportKind.INVOKE_REST_API, airflow_major=3
    )


@pytest.fixture
def env2(env3) -> EnvironmentRef:
    return replace(env3, airflow_major=2)


@pytest.fixture
def transport(mwaa_client, fixed_now):
    return lambda environment: InvokeRestApiTransport(environment, mwaa_client, now=fixed_now)


def expect_call(
    stub, method: str, path: str, status: int, response: Any, body: Any = None, query: Any = None
) -> None:
    params: dict[str, Any] = {"Name": "prod-mwaa", "Path": path, "Method": method}
    if body is not None:
        params["Body"] = body
    if query is not None:
        params["QueryParameters"] = query
    stub.add_response(
        "invoke_rest_api", {"RestApiStatusCode": status, "RestApiResponse": response}, params
    )


def expect_airflow_error(stub, status: int, response: Any, *, server: bool = False) -> None:
    stub.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiServerException" if server else "RestApiClientException",
        service_message="Airflow answered with an error",
        http_status_code=400,
        modeled_fields={"RestApiStatusCode": status, "RestApiResponse": response},
    )


def expect_paused(stub, paused: bool) -> None:
    expect_call(
        stub, "GET", "/dags/ingest_sales", 200, {"dag_id": "ingest_sales", "is_paused": paused}
    )


def run(
    state: str = "queued", logical_date: str | None = None, run_id: str = RUN_ID
) -> dict[str, Any]:
    return {
        "dag_id": "ingest_sales",
        "dag_run_id": run_id,
        "state": state,
        "logical_date": logical_date,
    }


def test_airflow_3_trigger_sends_a_null_logical_date_and_reports_a_paused_dag(
    transport, env3, mwaa_stub, make_request
):
    # Given Airflow 3, a DAG that is paused, and a trigger without a logical date
    request = make_request(env3, note="from s3://landing/sales/2026-11-21.csv")
    expect_call(
        mwaa_stub, "POST", "/dags/ingest_sales/dagRuns", 200, run(),
        body={
            "dag_run_id": RUN_ID, "conf": request.conf, "logical_date": None, "note": request.note
        },
    )  # fmt: skip
    expect_paused(mwaa_stub, True)

    # When the DAG run is triggered
    result = transport(env3).trigger(request)

    # Then Airflow 3 got the required logical_date key as null, and the caller learns the DAG
    # is paused (the run will sit queued)
    mwaa_stub.assert_no_pending_responses()
    assert (result.dag_run_id, result.state, result.already_existed) == (RUN_ID, "queued", False)
    assert result.dag_paused is True


def test_airflow_2_trigger_sends_now_with_microseconds_as_logical_date(
    transport, env2, mwaa_stub, make_request, fixed_now
):
    # Given Airflow 2, which needs a logical date
    request = make_request(env2)
    expected_date = "2026-11-21T02:00:00.124456+00:00"  # the next value of the fake "now"
    expect_call(
        mwaa_stub, "POST", "/dags/ingest_sales/dagRuns", 200, run(logical_date=expected_date),
        body={"dag_run_id": RUN_ID, "conf": request.conf, "logical_date": expected_date},
    )  # fmt: skip
    expect_paused(mwaa_stub, False)

    # When the DAG run is triggered
    result = transport(env2).trigger(request)

    # Then the logical date sent is returned, and the DAG is known not to be paused
    mwaa_stub.assert_no_pending_responses()
    assert result.logical_date == expected_date
    assert result.dag_paused is False


def test_conflict_naming_our_run_id_is_already_triggered_not_an_error(
    transport, env2, mwaa_stub, make_request
):
    # Given Airflow 2 answers 409 naming our run id (a redelivery after a lost ledger write),
    # for a run id long enough that "/dags/{dag}/dagRuns/{run}" exceeds the 64-character Path
    long_run_id = "dt__" + "a" * 40
    expect_airflow_error(
        mwaa_stub, 409,
        {"detail": f"DAGRun with DAG ID: 'ingest_sales' and DAGRun ID: '{long_run_id}' "
                   "already exists",
         "status": 409, "title": "Conflict"},
    )  # fmt: skip
    listed = [
        run("success", "2026-11-19T01:00:00+00:00", "older"),
        run("success", "2026-11-20T01:00:00+00:00", long_run_id),
    ]
    expect_call(
        mwaa_stub,
        "GET",
        "/dags/ingest_sales/dagRuns",
        200,
        {"dag_runs": listed[:1], "total_entries": 2},
        query={"limit": 1, "offset": 0},
    )
    expect_call(
        mwaa_stub,
        "GET",
        "/dags/ingest_sales/dagRuns",
        200,
        {"dag_runs": listed, "total_entries": 2},
        query={"limit": 100, "offset": 0},
    )
    expect_paused(mwaa_stub, False)

    # When the trigger is made
    result = transport(env2).trigger(make_request(env2, dag_run_id=long_run_id))

    # Then it is recorded as already triggered, with the existing run's state and date found
    # in the run list
    mwaa_stub.assert_no_pending_responses()
    assert result.already_existed is True
    assert (result.state, result.logical_date) == ("success", "2026-11-20T01:00:00+00:00")


def test_airflow_3_conflict_with_null_logical_date_can_only_be_our_run(
    transport, env3, mwaa_stub, make_request
):
    # Given Airflow 3's generic 409 (it hides which constraint failed) for a trigger with a
    # null logical date: only the run id can have clashed
    expect_airflow_error(
        mwaa_stub, 409, {"detail": {"reason": "Unique constraint violation", "statement": "hidden"}}
    )
    expect_call(mwaa_stub, "GET", f"/dags/ingest_sales/dagRuns/{RUN_ID}", 200, run("running"))
    expect_paused(mwaa_stub, False)

    # When the trigger is made
    result = transport(env3).trigger(make_request(env3))

    # Then it is already triggered
    mwaa_stub.assert_no_pending_responses()
    assert result.already_existed is True
    assert result.state == "running"


def test_logical_date_collision_is_retried_with_a_new_logical_date(
    transport, env2, mwaa_stub, make_request
):
    # Given Airflow 2, where another run already has the logical date we send first
    request = make_request(env2, dag_run_id="r1")
    first, second = "2026-11-21T02:00:00.124456+00:00", "2026-11-21T02:00:00.125456+00:00"
    mwaa_stub.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiClientException",
        http_status_code=400,
        modeled_fields={
            "RestApiStatusCode": 409,
            "RestApiResponse": {
                "detail": f"DAGRun with DAG ID: 'ingest_sales' and DAGRun logical date: '{first}' "
                "already exists"
            },
        },
        expected_params={
            "Name": "prod-mwaa", "Path": "/dags/ingest_sales/dagRuns", "Method": "POST",
            "Body": {"dag_run_id": "r1", "conf": request.conf, "logical_date": first},
        },
    )  # fmt: skip
    mwaa_stub.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiClientException",
        modeled_fields={
            "RestApiStatusCode": 404,
            "RestApiResponse": {"detail": "DAGRun not found"},
        },
        expected_params={
            "Name": "prod-mwaa",
            "Path": "/dags/ingest_sales/dagRuns/r1",
            "Method": "GET",
        },
    )
    expect_call(
        mwaa_stub, "POST", "/dags/ingest_sales/dagRuns", 200, run(logical_date=second, run_id="r1"),
        body={"dag_run_id": "r1", "conf": request.conf, "logical_date": second},
    )  # fmt: skip
    expect_paused(mwaa_stub, False)

    # When the trigger is made
    result = transport(env2).trigger(request)

    # Then it succeeded with the second logical date, reported as a fresh run
    mwaa_stub.assert_no_pending_responses()
    assert result.already_existed is False
    assert result.logical_date == second
    assert result.details == {"logical_date_collisions": 1}


def test_unknown_dag_is_rejected_with_airflows_message(transport, env2, mwaa_stub, make_request):
    expect_airflow_error(
        mwaa_stub, 404,
        {"detail": "DAG with dag_id: 'ingest_sales' not found", "status": 404,
         "title": "DAG not found"},
    )  # fmt: skip

    with pytest.raises(RejectedError) as raised:
        transport(env2).trigger(make_request(env2))

    assert raised.value.code == "dag_not_found"
    assert raised.value.http_status == 404
    assert "DAG with dag_id: 'ingest_sales' not found" in raised.value.message


def test_refused_conf_is_rejected_with_airflows_message(transport, env2, mwaa_stub, make_request):
    expect_airflow_error(
        mwaa_stub,
        400,
        {"detail": "'conf' is not of type 'object'", "status": 400, "title": "Bad Request"},
    )

    with pytest.raises(RejectedError) as raised:
        transport(env2).trigger(make_request(env2))

    assert raised.value.code == "conf_rejected"
    assert "'conf' is not of type 'object'" in raised.value.message


@pytest.mark.parametrize(("status", "server"), [(429, False), (500, True), (503, True)])
def test_throttled_or_failing_airflow_is_transient(
    transport, env3, mwaa_stub, make_request, status, server
):
    expect_airflow_error(mwaa_stub, status, {"detail": "busy"}, server=server)

    with pytest.raises(TransientTriggerError) as raised:
        transport(env3).trigger(make_request(env3))

    assert raised.value.http_status == status


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "TooManyRequestsException", "InternalServerException"]
)
def test_mwaa_throttling_and_internal_errors_are_transient(
    transport, env3, mwaa_stub, make_request, code
):
    mwaa_stub.add_client_error(
        "invoke_rest_api", service_error_code=code, http_status_code=429 if "Many" in code else 500
    )

    with pytest.raises(TransientTriggerError):
        transport(env3).trigger(make_request(env3))


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDeniedException", 403, "mwaa_access_denied"),
        ("ExpiredTokenException", 403, "aws_credentials_expired"),
        ("UnrecognizedClientException", 403, "aws_credentials_refused"),
        # our setup names an environment MWAA does not have: kept and alarmed, not rejected
        ("ResourceNotFoundException", 404, "environment_not_found"),
    ],
)
def test_refused_credentials_are_access_errors_not_rejections_of_the_event(
    transport, env3, mwaa_stub, make_request, code, status, expected
):
    # Given MWAA refusing our role or credentials
    mwaa_stub.add_client_error(
        "invoke_rest_api", service_error_code=code, service_message="nope", http_status_code=status
    )

    # Then the trigger fails as refused access (the event is kept), never as a rejection
    with pytest.raises(AccessRefusedError) as raised:
        transport(env3).trigger(make_request(env3))

    assert raised.value.code == expected
    assert "prod-mwaa" in raised.value.message


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ValidationException", 400, "mwaa_validation_error"),
    ],
)
def test_mwaa_permanent_errors_are_rejected_with_clear_codes(
    transport, env3, mwaa_stub, make_request, code, status, expected
):
    mwaa_stub.add_client_error(
        "invoke_rest_api", service_error_code=code, service_message="nope", http_status_code=status
    )

    with pytest.raises(RejectedError) as raised:
        transport(env3).trigger(make_request(env3))

    assert raised.value.code == expected
    assert "prod-mwaa" in raised.value.message


def test_dag_id_too_long_for_the_64_character_path_is_rejected_before_any_call(
    transport, env3, mwaa_stub, make_request
):
    # Given a valid dag id that makes "/dags/{dag_id}/dagRuns" longer than 64 characters
    dag_id = "d" * 52

    # When it is triggered (no MWAA answer is queued: any call would fail the stub)
    with pytest.raises(RejectedError) as raised:
        transport(env3).trigger(make_request(env3, dag_id=dag_id))

    # Then it is refused with its own code
    assert raised.value.code == "dag_id_too_long_for_invoke_rest_api"
    mwaa_stub.assert_no_pending_responses()


def test_airflow_version_comes_from_get_environment_once(transport, env3, mwaa_stub, make_request):
    # Given an environment whose Airflow version is not configured
    environment = replace(env3, airflow_major=None)
    mwaa_stub.add_response(
        "get_environment", {"Environment": {"AirflowVersion": "3.0.6"}}, {"Name": "prod-mwaa"}
    )
    for run_id in ("r1", "r2"):
        expect_call(
            mwaa_stub, "POST", "/dags/ingest_sales/dagRuns", 200, run(run_id=run_id),
            body={"dag_run_id": run_id, "conf": {}, "logical_date": None},
        )  # fmt: skip
        if run_id == "r1":  # the paused flag is then reused for a while
            expect_paused(mwaa_stub, False)
    rest = transport(environment)

    # When two triggers run, Then both use the Airflow 3 body, with one GetEnvironment call
    rest.trigger(make_request(environment, dag_run_id="r1", conf={}))
    rest.trigger(make_request(environment, dag_run_id="r2", conf={}))
    mwaa_stub.assert_no_pending_responses()


def test_run_state_is_read_directly_when_the_path_fits(transport, env3, mwaa_stub):
    expect_call(
        mwaa_stub, "GET", "/dags/etl/dagRuns/r1", 200, {"dag_run_id": "r1", "state": "success"}
    )

    assert transport(env3).get_dag_run_state("etl", "r1") == "success"


def test_run_state_of_an_absent_run_is_none(transport, env3, mwaa_stub):
    mwaa_stub.add_client_error(
        "invoke_rest_api", service_error_code="RestApiClientException",
        modeled_fields={"RestApiStatusCode": 404, "RestApiResponse": {"detail": "not found"}},
    )  # fmt: skip

    assert transport(env3).get_dag_run_state("etl", "r1") is None


class _UnreachableMwaa:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def invoke_rest_api(self, **_: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://env.airflow"),
        ReadTimeoutError(endpoint_url="https://env.airflow"),
    ],
)
def test_connection_errors_and_read_timeouts_are_transient(env3, make_request, error):
    with pytest.raises(TransientTriggerError):
        InvokeRestApiTransport(env3, _UnreachableMwaa(error)).trigger(make_request(env3))


def test_a_long_run_id_is_searched_from_its_trigger_time_over_invoke_rest_api(
    transport, env2, mwaa_stub
):
    # Given Airflow 2 and a run id too long for InvokeRestApi's 64-character path
    long_run_id = "dt__" + "a" * 60
    triggered_at = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    window = {"execution_date_gte": "2026-11-21T01:55:00.000000+00:00", "order_by": "id"}
    others = [run(state="success", run_id=f"other_{n}") for n in range(100)]
    expect_call(
        mwaa_stub, "GET", "/dags/etl/dagRuns", 200, {"dag_runs": others, "total_entries": 101},
        query={"limit": 100, "offset": 0, **window},
    )  # fmt: skip
    expect_call(
        mwaa_stub, "GET", "/dags/etl/dagRuns", 200,
        {"dag_runs": [run(state="running", run_id=long_run_id)], "total_entries": 101},
        query={"limit": 100, "offset": 100, **window},
    )  # fmt: skip

    # When its state is asked with the trigger time
    state = transport(env2).get_dag_run_state("etl", long_run_id, triggered_after=triggered_at)

    # Then the filtered listing found it on page 2
    assert state == "running"
    mwaa_stub.assert_no_pending_responses()


@pytest.mark.parametrize("status", [401, 403])
def test_airflow_refusing_our_role_is_refused_access(
    transport, env3, mwaa_stub, make_request, status
):
    # Given Airflow behind InvokeRestApi refusing the role our call maps to
    expect_airflow_error(mwaa_stub, status, {"detail": "Forbidden", "title": "Forbidden"})

    # Then the trigger fails as refused access: a configuration to fix, not a bad event
    with pytest.raises(AccessRefusedError) as raised:
        transport(env3).trigger(make_request(env3))

    assert raised.value.code == "airflow_unauthorized"
    assert raised.value.http_status == status


LONG_RUN_ID = "dagtrigger__s3__sales_2026-11-21.csv__20261121T020000Z__3f2a9c4b1d2e"


def test_failed_tasks_of_a_run_whose_path_is_too_long_come_from_the_batch_list(
    transport, env3, mwaa_stub
):
    # Given a failed run whose own task-list path exceeds InvokeRestApi's 64 characters
    assert len(f"/dags/ingest_sales/dagRuns/{LONG_RUN_ID}/taskInstances") > 64
    expect_call(
        mwaa_stub, "POST", "/dags/~/dagRuns/~/taskInstances/list", 200,
        {
            "task_instances": [
                {"task_id": "load", "state": "failed"},
                {"task_id": "load", "state": "failed"},
            ],
            "total_entries": 2,
        },
        body={
            "dag_ids": ["ingest_sales"],
            "dag_run_ids": [LONG_RUN_ID],
            "state": ["failed"],
            "page_limit": 100,
        },
    )  # fmt: skip

    # When its failed tasks are asked for / Then one batch list, filtered by DAG, run and
    # state, answers them
    assert transport(env3).failed_task_ids("ingest_sales", LONG_RUN_ID) == FailedTasks(
        ("load",), count=2
    )
    mwaa_stub.assert_no_pending_responses()


def test_failed_tasks_of_a_run_with_a_short_path_come_from_its_own_task_list(
    transport, env2, mwaa_stub
):
    expect_call(
        mwaa_stub, "GET", "/dags/etl/dagRuns/r1/taskInstances", 200,
        {"task_instances": [{"task_id": "load", "state": "failed"}], "total_entries": 1},
        query={"state": "failed", "limit": 100},
    )  # fmt: skip

    assert transport(env2).failed_task_ids("etl", "r1") == FailedTasks(("load",), count=1)


def test_an_airflow_without_the_run_filter_refuses_the_batch_list(transport, env2, mwaa_stub):
    # Given Airflow 2 older than 2.7, whose batch list has no dag_run_ids field
    expect_airflow_error(
        mwaa_stub, 400, {"detail": "{'dag_run_ids': ['Unknown field.']}", "title": "Bad Request"}
    )

    # Then the refusal says so (the reconciler records it as the reason)
    with pytest.raises(RejectedError, match="Unknown field"):
        transport(env2).failed_task_ids("ingest_sales", LONG_RUN_ID)


def test_the_reconcilers_reads_only_use_what_triggers_leave_of_the_shared_budget(
    env3, mwaa_client, mwaa_stub, clock
):
    with mock_aws():
        table = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="dagtrigger-history",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        budget = SharedRateBudget(
            lambda: table,
            calls_per_second=10,
            background_calls_per_second=3,
            max_wait_seconds=5,
            clock=clock,
            sleep=clock.sleep,
        )
        airflow = InvokeRestApiTransport(env3, mwaa_client, rate_budget=budget)
        # Given triggers that used 3 calls of each of the next seconds
        for second in range(1000, 1004):
            table.put_item(Item={"pk": rate_budget_key("prod-mwaa", second), "calls": 3})

        # When the reconciler asks whether a DAG is paused and for a failed run's tasks
        # Then neither gets a slot: no MWAA call is made (the stub has no answer queued)
        assert airflow.dag_paused("etl") is None
        with pytest.raises(RateBudgetExhausted):
            airflow.failed_task_ids("etl", "r1")

        # And in a quiet second the read goes ahead and counts in the budget
        clock.advance(10)
        expect_call(
            mwaa_stub, "GET", "/dags/etl/dagRuns/r1/taskInstances", 200,
            {"task_instances": [], "total_entries": 0}, query={"state": "failed", "limit": 100},
        )  # fmt: skip
        assert airflow.failed_task_ids("etl", "r1") == FailedTasks()
        counted = table.get_item(Key={"pk": rate_budget_key("prod-mwaa", int(clock.now))})
        assert counted["Item"]["calls"] == 1
