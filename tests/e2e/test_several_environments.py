"""End to end: one stack, two MWAA environments. Objects dropped for the sales route and for the
finance route start runs, each through its own environment only, and a routes file naming an
environment the stack is not granted is refused when it loads.

The local stack runs the demo routes (devstack/demo/routes.yaml): aliases ``demo`` (environment
dagtrigger-demo, the sales route) and ``finance`` (dagtrigger-finance, the finance route). Both
are MWAA emulator environments in front of the one local Airflow: distinct to the emulator (each
its own web server, limits and entries in its request log), not two Airflows. The template's
MwaaEnvironmentNames lists both, so the functions are told exactly those two.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from boto3.dynamodb.conditions import Key

from devstack.processes import wait_until
from devstack.stack import LocalStack
from tests.e2e.test_http_and_schedules import api_url, iam_signed

pytestmark = pytest.mark.e2e

SALES_ENVIRONMENT = "dagtrigger-demo"
FINANCE_ENVIRONMENT = "dagtrigger-finance"
#: an environment the emulator can serve but the stack is not granted
PAYROLL_ENVIRONMENT = "dagtrigger-payroll"
#: each route's DAG, alias and environment
ROUTED = {
    "sales": ("ingest_sales", "demo", SALES_ENVIRONMENT),
    "finance": ("echo_conf", "finance", FINANCE_ENVIRONMENT),
}
#: Airflow on this 2-core machine, while others run
TIMEOUT_SECONDS = 150


def records_for(stack: LocalStack, bucket: str, key: str) -> list[dict[str, Any]]:
    answer = stack.history_table().query(
        IndexName="by_source", KeyConditionExpression=Key("source_key").eq(f"s3://{bucket}/{key}")
    )
    return list(answer["Items"])


#: what a record says once its run was started
STARTED = {"TRIGGERED", "RUNNING", "SUCCESS"}


def settled_record(
    stack: LocalStack, bucket: str, key: str, *, wanted: set[str] = STARTED
) -> dict[str, Any]:
    """The object's one record, once it says one of ``wanted``. A TRIGGER_FAILED on the way is
    waited through: the local Airflow's SQLite can answer 500 ("database is locked") while runs
    are started in parallel on this 2-core machine, and SQS delivers the message again after
    the retry backoff, as it would on AWS."""
    (record,) = wait_until(
        lambda: [r for r in records_for(stack, bucket, key) if r.get("status") in wanted],
        timeout=TIMEOUT_SECONDS,
        what=f"the record of s3://{bucket}/{key} to say one of {sorted(wanted)}",
    )
    return record


def trigger_calls_since(stack: LocalStack, started: str) -> list[tuple[str, str]]:
    """(environment, DAG id) of each InvokeRestApi call that started a run since ``started``."""
    assert stack.emulator is not None
    calls = []
    for entry in stack.emulator.requests.entries():
        method, _, path = entry.request.partition(" ")
        if entry.time < started or entry.operation != "InvokeRestApi" or method != "POST":
            continue
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "dags" and parts[2] == "dagRuns":
            calls.append((str(entry.environment), parts[1]))
    return calls


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_each_route_starts_its_runs_through_its_own_environment_only(stack: LocalStack) -> None:
    assert stack.emulator is not None
    assert stack.runner is not None
    assert stack.airflow is not None
    # Given a stack granted on exactly its two environments, which the emulator serves apart
    for function_id in ("S3EventsFunction", "ReconcilerFunction"):
        granted = stack.runner.function_environment(function_id)["MWAA_ENVIRONMENT_NAMES"]
        assert granted.split(",") == [SALES_ENVIRONMENT, FINANCE_ENVIRONMENT]
    hosts = {stack.emulator.web_server_hostname(name) for name in granted.split(",")}
    assert len(hosts) == 2

    # When two objects are dropped for each route
    started = now_iso()
    marker = uuid.uuid4().hex[:8]
    bucket = stack.source_bucket
    dropped = {
        route: [f"{route}/several-environments {marker}-{n}.csv" for n in range(2)]
        for route in ROUTED
    }
    for keys in dropped.values():
        for key in keys:
            stack.s3.put_object(Bucket=bucket, Key=key, Body=b"region,amount\nnorth,1\n")

    # Then every one started a run of its route's DAG, recorded against its route's environment
    session = stack.airflow.api_session()
    for route, keys in dropped.items():
        dag_id, alias, _ = ROUTED[route]
        for key in keys:
            record = settled_record(stack, bucket, key)
            assert (record["route"], record["dag_id"], record["environment"]) == (
                f"{route}-csv",
                dag_id,
                alias,
            ), record
            run = session.get(
                stack.airflow.api_url(
                    f"/dags/{dag_id}/dagRuns/{quote(record['dag_run_id'], safe='')}"
                ),
                timeout=60,
            )
            assert run.status_code == 200, run.text

    # And the emulator saw each DAG's runs started through its route's environment only
    calls = trigger_calls_since(stack, started)
    print(f"trigger calls since {started}: {calls}")
    for _, (dag_id, _, environment) in ROUTED.items():
        through = {env for env, dag in calls if dag == dag_id}
        assert through == {environment}, (dag_id, calls)
        assert sum(1 for env, dag in calls if dag == dag_id) >= len(dropped["sales"])
    assert {env for env, _ in calls} == {SALES_ENVIRONMENT, FINANCE_ENVIRONMENT}


def test_routes_naming_an_environment_the_stack_is_not_granted_are_refused_at_load(
    stack: LocalStack,
) -> None:
    assert stack.emulator is not None
    assert stack.routes is not None
    assert stack.airflow is not None
    bucket = stack.source_bucket
    marker = uuid.uuid4().hex[:8]
    # Given routes the functions have loaded (a sales object triggered)
    settled_record(stack, bucket, _put(stack, bucket, f"sales/refused-at-load {marker}.csv"))

    # And an environment the emulator serves, but which the stack's MwaaEnvironmentNames lacks
    stack.emulator.add_environment(
        PAYROLL_ENVIRONMENT,
        stack.airflow,
        rest_api_credentials=(stack.airflow.user_username, stack.airflow.user_password),
    )
    path = stack.routes.path
    original = path.read_text(encoding="utf-8")
    document = yaml.safe_load(original)
    document["environments"]["payroll"] = {
        "name": PAYROLL_ENVIRONMENT,
        "transport": "invoke_rest_api",
        "airflow_major": stack.airflow.major,
    }
    document["s3"].append(
        {
            "name": "payroll-csv",
            "buckets": [bucket],
            "prefix": "payroll/",
            "environment": "payroll",
            "dag_id": "echo_conf",
        }
    )
    edited = yaml.safe_dump(document, sort_keys=False)
    started = now_iso()
    try:
        # When the stack's routes file (re-read on every event here) is edited to route payroll/
        # objects to that environment, and one is dropped
        path.write_text(edited, encoding="utf-8")
        key = _put(stack, bucket, f"payroll/refused-at-load {marker}.csv")

        # Then the functions refuse the edited file and keep the last good routes: the object
        # matches no route, and nothing reached the environment the stack is not granted
        record = settled_record(stack, bucket, key, wanted={"IGNORED", *STARTED})
        assert record["status"] == "IGNORED", record
        assert [env for env, _ in trigger_calls_since(stack, started)].count(
            PAYROLL_ENVIRONMENT
        ) == 0
        assert not [
            entry
            for entry in stack.emulator.requests.entries()
            if entry.time >= started and entry.environment == PAYROLL_ENVIRONMENT
        ]

        # And a dry run of that file through the API says which field is refused, and why
        answer = iam_signed(
            "POST",
            api_url(stack, "/v1/routes/test"),
            body={"routes_document": edited, "s3": {"bucket": bucket, "key": key}},
        )
        print(answer.status_code, answer.text)
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert "environments.payroll.name" in detail
        assert f"'{PAYROLL_ENVIRONMENT}' is not one this stack may trigger" in detail
        assert f"MWAA_ENVIRONMENT_NAMES: {SALES_ENVIRONMENT}, {FINANCE_ENVIRONMENT}" in detail
    finally:
        path.write_text(original, encoding="utf-8")
        stack.emulator.remove_environment(PAYROLL_ENVIRONMENT)


def _put(stack: LocalStack, bucket: str, key: str) -> str:
    stack.s3.put_object(Bucket=bucket, Key=key, Body=b"region,amount\nnorth,1\n")
    return key
