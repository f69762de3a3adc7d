"""End to end: the HTTP API and EventBridge Scheduler start real Airflow runs on the local stack.

A GitHub-signed webhook and an IAM-signed API call go to the runner's HTTP API on 127.0.0.1; a
schedule created through the API is fired by the runner as EventBridge Scheduler would. Each
ends in a run of real Airflow whose task wrote the conf it received to the conf sink, and a
repeat (same delivery id, same Idempotency-Key, same scheduled time) starts nothing more.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from boto3.dynamodb.conditions import Key
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from dagtrigger.sources.webhooks import sign_github
from devstack.processes import wait_until
from devstack.stack import REGION, LocalStack

pytestmark = pytest.mark.e2e

#: a caller's (dummy) credentials: the local HTTP API checks that a request is signed, not who
CALLER = Credentials("AKIAE2ECALLEREXAMPLE", "e2e-caller-secret-key-example")
#: Airflow on this 2-core machine: a task run takes about 10 s, more while others run
RUN_TIMEOUT_SECONDS = 150
_UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.~+-]")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def api_url(stack: LocalStack, path: str) -> str:
    assert stack.runner is not None, "the stack is not started"
    return stack.runner.http_api_url.rstrip("/") + path


def iam_signed(
    method: str,
    url: str,
    *,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """Call the API as an IAM principal would: SigV4 for the execute-api service."""
    data = json.dumps(body).encode() if body is not None else b""
    request = AWSRequest(
        method=method,
        url=url,
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    SigV4Auth(CALLER, "execute-api", REGION).add_auth(request)
    return requests.request(method, url, data=data, headers=dict(request.headers), timeout=60)


def task_record(conf_sink: Path, dag_id: str, run_id: str) -> dict[str, Any]:
    """What the run's task wrote to the sink (devstack/dags/conf_sink_dags.py): its conf and
    whatever else it found."""
    sink_file = conf_sink / dag_id / f"{_UNSAFE_FILENAME_CHARACTERS.sub('_', run_id)}.json"
    wait_until(sink_file.exists, timeout=RUN_TIMEOUT_SECONDS, what=f"the task of run {run_id}")
    written: dict[str, Any] = json.loads(sink_file.read_text())
    assert written["run_id"] == run_id
    return written


def conf_received(conf_sink: Path, dag_id: str, run_id: str) -> dict[str, Any]:
    """The conf the run's task received."""
    conf: dict[str, Any] = task_record(conf_sink, dag_id, run_id)["conf"]
    return conf


def airflow_runs(stack: LocalStack, dag_id: str, *, marker_key: str, marker: str) -> list[dict]:
    """The DAG's runs in Airflow whose conf carries ``marker`` under ``marker_key``."""
    assert stack.airflow is not None
    answer = stack.airflow.api_session().get(
        stack.airflow.api_url(f"/dags/{quote(dag_id, safe='')}/dagRuns"),
        params={"limit": 100},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return [
        run
        for run in answer.json()["dag_runs"]
        if (run.get("conf") or {}).get(marker_key) == marker
    ]


def history_for_source(stack: LocalStack, source_key: str) -> list[dict[str, Any]]:
    answer = stack.history_table().query(
        IndexName="by_source", KeyConditionExpression=Key("source_key").eq(source_key)
    )
    items: list[dict[str, Any]] = answer["Items"]
    return items


def github_push(branch: str, commit: str) -> bytes:
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "after": commit,
            "repository": {"full_name": "acme/sales-pipelines"},
            "pusher": {"name": "octocat"},
        }
    ).encode()


def post_webhook(stack: LocalStack, body: bytes, headers: Mapping[str, str]) -> requests.Response:
    return requests.post(
        api_url(stack, "/v1/webhooks/github-push"),
        data=body,
        headers={"Content-Type": "application/json", "X-GitHub-Event": "push", **headers},
        timeout=60,
    )


# ---------------------------------------------------------------------------------------------
# Signed webhooks
# ---------------------------------------------------------------------------------------------


def test_a_signed_github_push_starts_one_airflow_run_with_conf_from_the_payload(
    stack: LocalStack, conf_sink: Path, github_push_secret: str
) -> None:
    # Given a push to main, signed like GitHub signs it, with a delivery id
    commit = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    body = github_push("main", commit)
    delivery_id = str(uuid.uuid4())
    headers = sign_github(body, secret=github_push_secret, delivery_id=delivery_id)

    # When GitHub delivers it, and then delivers it again (a redelivery)
    first = post_webhook(stack, body, headers)
    again = post_webhook(stack, body, headers)

    # Then both are accepted as one trigger, the second as a duplicate
    assert first.status_code == 202, first.text
    assert again.status_code == 202, again.text
    accepted, repeated = first.json(), again.json()
    assert accepted["delivery_id"] == delivery_id
    assert accepted["duplicate"] is False
    assert repeated["duplicate"] is True
    assert repeated["trigger_id"] == accepted["trigger_id"]

    # And the trigger record (read over the IAM-signed API) names the DAG run it started
    record = iam_signed("GET", api_url(stack, f"/v1/triggers/{accepted['trigger_id']}"))
    assert record.status_code == 200, record.text
    trigger = record.json()
    assert trigger["dag_id"] == "echo_conf"
    assert trigger["source_type"] == "webhook"
    assert trigger["deliveries"] == 2

    # And the run's task saw the conf the route's JMESPath built from the payload
    conf = conf_received(conf_sink, "echo_conf", trigger["dag_run_id"])
    assert conf == {
        "repository": "acme/sales-pipelines",
        "ref": "refs/heads/main",
        "commit": commit,
        "pusher": "octocat",
    }
    # And Airflow holds exactly one run for the two deliveries
    assert len(airflow_runs(stack, "echo_conf", marker_key="commit", marker=commit)) == 1


def test_a_push_to_another_branch_is_recorded_as_ignored_without_a_run(
    stack: LocalStack, github_push_secret: str
) -> None:
    # Given a correctly signed push to a branch the route's filter leaves out
    body = github_push("feature/x", uuid.uuid4().hex)
    headers = sign_github(body, secret=github_push_secret, delivery_id=str(uuid.uuid4()))

    # When it is delivered
    answer = post_webhook(stack, body, headers)

    # Then it is accepted and recorded, but starts nothing
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "IGNORED"


def test_a_webhook_with_a_bad_signature_is_refused_and_leaves_no_record(
    stack: LocalStack, github_push_secret: str
) -> None:
    # Given a push signed with the wrong secret, and the records the route has so far
    body = github_push("main", uuid.uuid4().hex)
    headers = sign_github(body, secret=github_push_secret + "-wrong", delivery_id="forged-1")
    before = history_for_source(stack, "webhook:github-push")

    # When it is delivered
    answer = post_webhook(stack, body, headers)

    # Then it is refused as unauthenticated, saying nothing that helps a forger
    assert answer.status_code == 401, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert "signature" not in answer.text.lower()

    # And nothing was recorded for it
    after = history_for_source(stack, "webhook:github-push")
    assert len(after) == len(before)
    assert all(item.get("source_ref", {}).get("delivery_id") != "forged-1" for item in after)


# ---------------------------------------------------------------------------------------------
# IAM-signed API calls
# ---------------------------------------------------------------------------------------------


def test_an_iam_signed_call_starts_one_airflow_run_with_its_conf(
    stack: LocalStack, conf_sink: Path
) -> None:
    # Given a conf with a marker of its own and an Idempotency-Key
    marker = str(uuid.uuid4())
    request_body = {"conf": {"request_id": marker, "source": "e2e"}, "note": "from the e2e test"}
    key = {"Idempotency-Key": f"e2e-{marker}"}
    url = api_url(stack, "/v1/dags/ingest_sales/runs")

    # When a signed client asks for a run, and retries the same request with the same key
    first = iam_signed("POST", url, body=request_body, headers=key)
    retry = iam_signed("POST", url, body=request_body, headers=key)

    # Then both get 202 and the same trigger and run, the retry marked as a replay
    assert first.status_code == 202, first.text
    assert retry.status_code == 202, retry.text
    accepted = first.json()
    assert accepted["dag_id"] == "ingest_sales"
    assert accepted["dag_run_id"]
    assert retry.json()["trigger_id"] == accepted["trigger_id"]
    assert retry.json()["dag_run_id"] == accepted["dag_run_id"]
    assert retry.headers.get("Idempotent-Replayed") == "true"

    # And the trigger can be read back by its id
    record = iam_signed("GET", api_url(stack, f"/v1/triggers/{accepted['trigger_id']}"))
    assert record.status_code == 200, record.text
    trigger = record.json()
    assert trigger["dag_run_id"] == accepted["dag_run_id"]
    assert trigger["conf"] == request_body["conf"]
    assert trigger["note"] == "from the e2e test"

    # And the run's task saw the conf, in the one run Airflow holds for it
    assert conf_received(conf_sink, "ingest_sales", accepted["dag_run_id"]) == request_body["conf"]
    assert len(airflow_runs(stack, "ingest_sales", marker_key="request_id", marker=marker)) == 1


def test_an_unsigned_call_to_a_management_route_is_forbidden(stack: LocalStack) -> None:
    # When a client calls a management route without a SigV4 signature
    answer = requests.post(
        api_url(stack, "/v1/dags/ingest_sales/runs"),
        json={"conf": {"unsigned": True}},
        timeout=60,
    )

    # Then API Gateway's IAM authorizer refuses it before the function runs
    assert answer.status_code == 403, answer.text
    assert answer.json() == {"message": "Forbidden"}


# ---------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------


def test_a_schedule_created_through_the_api_starts_one_run_per_scheduled_time(
    stack: LocalStack, conf_sink: Path
) -> None:
    # Given a schedule created over the API for route nightly-sales, in the stack's group
    assert stack.runner is not None
    marker = str(uuid.uuid4())
    name = f"e2e-nightly-{marker[:8]}"
    created = iam_signed(
        "POST",
        api_url(stack, "/v1/schedules"),
        body={
            "name": name,
            "route": "nightly-sales",
            "expression": "cron(0 2 * * ? *)",
            "timezone": "Europe/Paris",
            "flexible_window_minutes": 15,
            "conf": {"region": "emea", "marker": marker},
        },
    )
    assert created.status_code == 201, created.text
    group = stack.runner.resources["ScheduleGroup"].name
    stored = stack.scheduler.get_schedule(Name=name, GroupName=group)
    assert stored["Target"]["Arn"] == stack.runner.template.function("SchedulesFunction").arn

    # When EventBridge Scheduler fires it for 02:00 Paris time, and fires the same time again
    scheduled = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
    first = stack.runner.fire_schedule(name, scheduled, group_name=group)
    again = stack.runner.fire_schedule(name, scheduled, group_name=group)

    # Then both fires end well and name the same trigger and DAG run
    assert first.succeeded, first.attempts[-1].error
    assert again.succeeded, again.attempts[-1].error
    outcome, repeat = first.attempts[-1].payload, again.attempts[-1].payload
    assert outcome["dag_run_id"]
    assert repeat["trigger_id"] == outcome["trigger_id"]
    assert repeat["dag_run_id"] == outcome["dag_run_id"]

    # And the history shows the scheduled time beside the trigger time, and both deliveries
    record = iam_signed("GET", api_url(stack, f"/v1/triggers/{outcome['trigger_id']}"))
    assert record.status_code == 200, record.text
    trigger = record.json()
    assert trigger["source_type"] == "schedule"
    assert trigger["scheduled_time"].startswith("2026-11-21T01:00:00")
    assert trigger["triggered_at"]
    assert trigger["deliveries"] == 2

    # And one run of the route's DAG saw the route's conf with the schedule's merged over it
    conf = conf_received(conf_sink, "ingest_sales", outcome["dag_run_id"])
    assert conf["day"] == "2026-11-21"
    assert conf["schedule_name"] == name
    assert conf["region"] == "emea"
    assert conf["marker"] == marker
    assert len(airflow_runs(stack, "ingest_sales", marker_key="marker", marker=marker)) == 1


def test_the_templates_example_schedule_is_provisioned_disabled(stack: LocalStack) -> None:
    # Given the stack's schedule group, When we read the template's example schedule
    assert stack.runner is not None
    group = stack.runner.resources["ScheduleGroup"].name
    example = stack.scheduler.get_schedule(Name="nightly-sales", GroupName=group)

    # Then it exists in the group, disabled (ExampleScheduleState), in Paris time, aimed at the
    # schedules function through the Scheduler role
    assert example["State"] == "DISABLED"
    assert example["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert example["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert example["Target"]["Arn"] == stack.runner.template.function("SchedulesFunction").arn
