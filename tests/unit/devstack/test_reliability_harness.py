"""The fault matrix's harness, part by part: kill points, execution environments as processes,
EMF metrics, what became of each event, SQS receipts, and the table.

Processes run small handlers written to a temporary folder; AWS is a loopback server that answers
every call with an empty JSON object and remembers what it was asked.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devstack.airflow import AirflowServer
from devstack.mwaa_emulator.http_base import HttpRequest, HttpResponse, LoopbackHttpServer
from devstack.processes import ManagedProcess
from devstack.reliability.accounting import ScenarioEvent, ScenarioRow, fates, row
from devstack.reliability.airflow import AirflowWatchdog
from devstack.reliability.instances import (
    FunctionInstance,
    InstancePool,
    InvocationRecord,
    emf_metric_totals,
)
from devstack.reliability.kill_points import (
    AwsCall,
    KillPoint,
    dies_after,
    dies_before,
    is_claim,
    is_run_trigger,
    is_triggered_write,
)
from devstack.reliability.report import render_markdown, render_text
from devstack.reliability.sqs import receipts, retry_waits
from devstack.runner.invoke import InvocationResult
from devstack.runner.template import FunctionSpec

CLAIM = AwsCall("dynamodb", "PutItem", {"Item": {"status": {"S": "RECEIVED"}}})
TRIGGER = AwsCall("mwaa", "InvokeRestApi", {"Path": "/dags/ingest_sales/dagRuns", "Method": "POST"})
FINAL_WRITE = AwsCall(
    "dynamodb", "UpdateItem", {"ExpressionAttributeValues": {":s": {"S": "TRIGGERED"}}}
)

# A handler that makes the three calls a trigger makes, noting each step in a file.
TRIGGER_LIKE_HANDLER = """
import json, os
from pathlib import Path

import boto3
from botocore.config import Config

def lambda_handler(event, context):
    if event.get("fail_before_claim"):
        raise RuntimeError("Airflow did not answer in time")
    steps = Path(os.environ["STEPS_FILE"])
    def step(name):
        with steps.open("a") as notes:
            notes.write(name + "\\n")
    dynamodb = boto3.client("dynamodb")
    mwaa = boto3.client("mwaa", config=Config(inject_host_prefix=False))
    dynamodb.put_item(TableName="history", Item={"status": {"S": "RECEIVED"}})
    step("claimed")
    mwaa.invoke_rest_api(Name="env", Path="/dags/ingest_sales/dagRuns", Method="POST", Body={})
    step("run accepted")
    dynamodb.update_item(
        TableName="history",
        Key={"pk": {"S": "x"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "TRIGGERED"}},
    )
    step("recorded")
    return {"done": True}
"""
OTHER_HANDLERS = """
import json, os, time

def echo(event, context):
    print(json.dumps({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "t",
        "Dimensions": [["service"]], "Metrics": [{"Name": "Echoed", "Unit": "Count"}]}]},
        "service": "t", "Echoed": [1.0]}))
    return {"event": event, "function": context.function_name, "mark": os.environ.get("MARK")}

def crash(event, context):
    os._exit(3)

def slow(event, context):
    time.sleep(30)

def fails(event, context):
    raise ValueError("bad event")

def busy(event, context):
    time.sleep(0.5)
    return {"pid": os.getpid()}
"""


class FakeAws:
    """Answers every JSON API call with {} and records (operation, body) in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.server = LoopbackHttpServer(self._handle, name="fake-aws")

    def _handle(self, request: HttpRequest) -> HttpResponse:
        target = request.headers.get("x-amz-target", "")
        operation = target.rpartition(".")[2] or request.path
        self.calls.append((operation, json.loads(request.body or b"{}")))
        return HttpResponse(200, b"{}", {"Content-Type": "application/x-amz-json-1.0"})

    @property
    def url(self) -> str:
        return f"http://{self.server.host_port}"

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]


@pytest.fixture
def fake_aws() -> Iterator[FakeAws]:
    aws = FakeAws()
    aws.server.start()
    yield aws
    aws.server.stop()


def spec_for(code_dir: Path, handler: str, *, timeout: int = 10) -> FunctionSpec:
    return FunctionSpec(
        logical_id="TestFunction",
        function_name="test-function",
        arn="arn:aws:lambda:us-east-1:123456789012:function:test-function",
        code_uri=code_dir,
        handler=handler,
        runtime="python3.12",
        timeout_seconds=timeout,
        memory_mb=128,
        environment={},
    )


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "trigger_like.py").write_text(textwrap.dedent(TRIGGER_LIKE_HANDLER))
    (folder / "others.py").write_text(textwrap.dedent(OTHER_HANDLERS))
    return folder


@pytest.fixture
def trigger_env(tmp_path: Path, fake_aws: FakeAws) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_DYNAMODB": fake_aws.url,
        "AWS_ENDPOINT_URL_MWAA": fake_aws.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "STEPS_FILE": str(tmp_path / "steps.txt"),
    }


def started_instance(spec: FunctionSpec, env: dict[str, str], tmp_path: Path) -> FunctionInstance:
    instance = FunctionInstance(spec, env, log_path=tmp_path / "instance.log", number=1)
    instance.start()
    return instance


def steps_taken(env: dict[str, str]) -> list[str]:
    path = Path(env["STEPS_FILE"])
    return path.read_text().splitlines() if path.exists() else []


# -- kill points: which call is which -------------------------------------------------------


def test_the_claim_is_a_put_of_a_received_record() -> None:
    assert is_claim(CLAIM)
    rejected = AwsCall("dynamodb", "PutItem", {"Item": {"status": {"S": "REJECTED"}}})
    assert not is_claim(rejected)
    assert not is_claim(FINAL_WRITE)


def test_the_run_trigger_is_a_post_of_dag_runs_through_invoke_rest_api() -> None:
    assert is_run_trigger(TRIGGER)
    state_query = AwsCall(
        "mwaa", "InvokeRestApi", {"Path": "/dags/ingest_sales/dagRuns/r1", "Method": "GET"}
    )
    assert not is_run_trigger(state_query)
    assert not is_run_trigger(AwsCall("mwaa", "InvokeRestApi", {"Path": "/dags", "Method": "POST"}))


def test_the_final_write_sets_status_triggered() -> None:
    assert is_triggered_write(FINAL_WRITE)
    failed = AwsCall(
        "dynamodb", "UpdateItem", {"ExpressionAttributeValues": {":s": {"S": "TRIGGER_FAILED"}}}
    )
    assert not is_triggered_write(failed)


def test_each_kill_point_fires_at_its_own_call_only() -> None:
    assert dies_after(KillPoint.AFTER_CLAIM, CLAIM, 200)
    assert not dies_after(KillPoint.AFTER_CLAIM, CLAIM, 400)  # the claim was not written
    assert not dies_after(KillPoint.AFTER_CLAIM, TRIGGER, 200)
    assert dies_after(KillPoint.AFTER_RUN_ACCEPTED, TRIGGER, 200)
    assert not dies_after(KillPoint.AFTER_RUN_ACCEPTED, TRIGGER, 409)  # Airflow refused it
    assert dies_before(KillPoint.BEFORE_FINAL_WRITE, FINAL_WRITE)
    assert not dies_before(KillPoint.BEFORE_FINAL_WRITE, CLAIM)
    assert not dies_before(None, FINAL_WRITE)


# -- kill points in a real process -----------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "calls_sent", "steps"),
    [
        (KillPoint.AFTER_CLAIM, ["PutItem"], []),
        (KillPoint.AFTER_RUN_ACCEPTED, ["PutItem", "/restapi/env"], ["claimed"]),
        (
            KillPoint.BEFORE_FINAL_WRITE,
            ["PutItem", "/restapi/env"],
            ["claimed", "run accepted"],
        ),
    ],
)
def test_an_instance_dies_at_its_kill_point_with_lambdas_exit_error(
    code_dir: Path,
    tmp_path: Path,
    fake_aws: FakeAws,
    trigger_env: dict[str, str],
    point: KillPoint,
    calls_sent: list[str],
    steps: list[str],
) -> None:
    # Given a warm instance of a function that claims, triggers and records
    instance = started_instance(
        spec_for(code_dir, "trigger_like.lambda_handler"), trigger_env, tmp_path
    )
    try:
        # When it is invoked with the kill point armed
        result = instance.invoke({}, request_id="r-1", kill_at=point)
    finally:
        instance.stop()

    # Then the process exited there: the calls before it went out, nothing after it ran
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.ExitError"
    assert "exit status 86 (kill point)" in result.error["errorMessage"]
    assert fake_aws.operations() == calls_sent
    assert steps_taken(trigger_env) == steps
    assert not instance.is_alive()


def test_an_unarmed_invocation_runs_to_the_end(
    code_dir: Path, tmp_path: Path, fake_aws: FakeAws, trigger_env: dict[str, str]
) -> None:
    instance = started_instance(
        spec_for(code_dir, "trigger_like.lambda_handler"), trigger_env, tmp_path
    )
    try:
        result = instance.invoke({}, request_id="r-1")
        # A kill point armed for one invocation does not outlive it
        again = instance.invoke({}, request_id="r-2")
    finally:
        instance.stop()

    assert result.payload == {"done": True}
    assert again.payload == {"done": True}
    assert fake_aws.operations() == ["PutItem", "/restapi/env", "UpdateItem"] * 2
    assert steps_taken(trigger_env) == ["claimed", "run accepted", "recorded"] * 2


# -- execution environments ------------------------------------------------------------------


def test_an_instance_answers_like_lambda_with_its_context_and_environment(
    code_dir: Path, tmp_path: Path
) -> None:
    instance = started_instance(spec_for(code_dir, "others.echo"), {"MARK": "m-1"}, tmp_path)
    try:
        result = instance.invoke({"n": 1}, request_id="r-1")
    finally:
        instance.stop()

    assert result.succeeded
    assert result.payload == {"event": {"n": 1}, "function": "test-function", "mark": "m-1"}
    # And what the handler printed is in the instance's log, where EMF metrics are read
    assert emf_metric_totals(instance.log_path.read_text().splitlines()) == {"Echoed": 1.0}


def test_a_handler_error_is_lambdas_error_document_and_the_instance_lives_on(
    code_dir: Path, tmp_path: Path
) -> None:
    instance = started_instance(spec_for(code_dir, "others.fails"), {}, tmp_path)
    try:
        result = instance.invoke({}, request_id="r-1")
        alive = instance.is_alive()
    finally:
        instance.stop()

    assert result.error is not None
    assert (result.error["errorType"], result.error["errorMessage"]) == ("ValueError", "bad event")
    assert alive


def test_a_process_that_exits_is_a_runtime_exit_error(code_dir: Path, tmp_path: Path) -> None:
    instance = started_instance(spec_for(code_dir, "others.crash"), {}, tmp_path)
    try:
        result = instance.invoke({}, request_id="r-1")
    finally:
        instance.stop()

    assert result.error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: r-1 Error: Runtime exited with error: exit status 3",
    }


def test_an_invocation_past_the_timeout_is_killed_as_lambda_does(
    code_dir: Path, tmp_path: Path
) -> None:
    instance = started_instance(spec_for(code_dir, "others.slow", timeout=1), {}, tmp_path)
    try:
        started = time.monotonic()
        result = instance.invoke({}, request_id="r-1")
        took = time.monotonic() - started
    finally:
        instance.stop()

    assert result.error is not None
    assert result.error["errorType"] == "Sandbox.Timedout"
    assert took < 10
    assert not instance.is_alive()


def test_a_handler_that_cannot_be_imported_fails_the_cold_start(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "app.py").write_text("raise RuntimeError('no configuration')\n")
    instance = FunctionInstance(
        spec_for(broken, "app.lambda_handler"), {}, log_path=tmp_path / "broken.log", number=1
    )

    with pytest.raises(RuntimeError, match=r"failed its cold start: .*no configuration"):
        instance.start()
    assert not instance.is_alive()


def test_a_pool_runs_invocations_side_by_side_up_to_its_size(
    code_dir: Path, tmp_path: Path
) -> None:
    pool = InstancePool(spec_for(code_dir, "others.busy"), {}, log_dir=tmp_path, max_instances=3)
    try:
        pool.prewarm(3)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=6) as callers:
            results = list(callers.map(pool.invoke, [{}] * 6))
        took = time.monotonic() - started
    finally:
        pool.stop()

    # Six invocations of 0.5 s on three instances: two rounds, on three distinct processes
    assert all(result.succeeded for result in results)
    assert len({result.payload["pid"] for result in results}) == 3
    assert took < 6 * 0.5
    assert len(pool.records) == 6


def test_a_kill_plan_fires_once_on_the_first_matching_event(
    code_dir: Path, tmp_path: Path, fake_aws: FakeAws, trigger_env: dict[str, str]
) -> None:
    pool = InstancePool(
        spec_for(code_dir, "trigger_like.lambda_handler"),
        trigger_env,
        log_dir=tmp_path,
        max_instances=1,
    )
    try:
        plan = pool.arm_kill(KillPoint.AFTER_CLAIM, when=lambda event: event.get("key") == "b")
        first = pool.invoke({"key": "a"})
        killed = pool.invoke({"key": "b"})
        after = pool.invoke({"key": "b"})  # a new instance, no plan left
    finally:
        pool.stop()

    assert first.succeeded
    assert plan.wait(0) is killed
    assert killed.error is not None
    assert after.succeeded
    assert [record.kill_point for record in pool.records] == [None, KillPoint.AFTER_CLAIM, None]
    assert len({record.instance for record in pool.records}) == 2


def test_a_kill_plan_whose_invocation_fails_before_its_point_waits_for_the_next_delivery(
    code_dir: Path, tmp_path: Path, fake_aws: FakeAws, trigger_env: dict[str, str]
) -> None:
    pool = InstancePool(
        spec_for(code_dir, "trigger_like.lambda_handler"),
        trigger_env,
        log_dir=tmp_path,
        max_instances=1,
    )
    try:
        # Given a plan for event b, whose first delivery fails on its own before the point
        plan = pool.arm_kill(KillPoint.AFTER_CLAIM, when=lambda event: event.get("key") == "b")
        failed = pool.invoke({"key": "b", "fail_before_claim": True})
        fired_early = plan.fired.is_set()

        # When the event is delivered again
        killed = pool.invoke({"key": "b"})
    finally:
        pool.stop()

    # Then the plan waited for that delivery, which died at the point
    assert failed.error is not None
    assert failed.error["errorType"] == "RuntimeError"
    assert not fired_early
    assert plan.wait(0) is killed
    assert killed.error is not None
    assert killed.error["errorType"] == "Runtime.ExitError"


def test_a_stopped_pool_leaves_no_process(code_dir: Path, tmp_path: Path) -> None:
    pool = InstancePool(spec_for(code_dir, "others.echo"), {}, log_dir=tmp_path, max_instances=2)
    pool.prewarm(2)
    pids = pool.live_pids()

    pool.stop()

    assert len(pids) == 2
    assert pool.live_pids() == []


# -- EMF metrics -----------------------------------------------------------------------------


def test_emf_metrics_are_summed_across_documents_and_other_lines_ignored() -> None:
    def document(name: str, value: Any) -> str:
        directive = {"Namespace": "dagtrigger", "Metrics": [{"Name": name, "Unit": "Count"}]}
        return json.dumps({"_aws": {"CloudWatchMetrics": [directive]}, name: value})

    lines = [
        document("AccessRefused", [1.0, 1.0]),
        '{"level": "ERROR", "message": "refused"}',
        document("AccessRefused", 1),
        document("Triggered", [1]),
        'not json {"_aws"',
    ]

    assert emf_metric_totals(lines) == {"AccessRefused": 3.0, "Triggered": 1.0}


# -- what became of each event ---------------------------------------------------------------


def event(marker: str) -> ScenarioEvent:
    return ScenarioEvent(f"s3://landing/{marker}", "ingest_sales", "key", marker)


def test_an_event_with_two_runs_counts_one_duplicate_and_one_without_any_trace_is_lost() -> None:
    events = [event("a"), event("b"), event("c"), event("d")]
    runs = {
        "ingest_sales": [{"conf": {"key": "a"}}, {"conf": {"key": "a"}}, {"conf": {"key": "b"}}]
    }
    records = {
        "s3://landing/a": [{"status": "SUCCESS", "conf": {"key": "a"}}],
        "s3://landing/b": [{"status": "RUNNING", "conf": {"key": "b"}}],
        "s3://landing/c": [{"status": "REJECTED"}],
        "s3://landing/d": [{"status": "TRIGGER_FAILED", "conf": {"key": "d"}}],
    }

    found = fates(events, runs_by_dag=runs, records_by_source=records)
    table_row = row("mixed", found, drain_seconds=None)

    assert [fate.runs for fate in found] == [2, 1, 0, 0]
    assert [fate.settled for fate in found] == [True, False, True, False]
    assert (table_row.events_in, table_row.runs_started) == (4, 3)
    assert (table_row.duplicates, table_row.lost) == (1, 1)
    assert table_row.final_states == {
        "SUCCESS": 1,
        "RUNNING": 1,
        "REJECTED": 1,
        "TRIGGER_FAILED": 1,
    }


def test_an_event_waiting_in_the_dead_letter_queue_is_kept_not_lost() -> None:
    found = fates(
        [event("sales/e.csv")],
        runs_by_dag={},
        records_by_source={"s3://landing/sales/e.csv": [{"status": "TRIGGER_FAILED"}]},
        dead_letter_bodies=['{"detail": {"object": {"key": "sales/e.csv"}}}'],
    )

    assert row("dlq", found, drain_seconds=None).lost == 0
    assert not found[0].settled  # it still waits for a redrive


# -- SQS receipts ----------------------------------------------------------------------------


def sqs_record(started: float, ended: float, ids: list[str], failed: list[str]) -> InvocationRecord:
    messages = [
        {"messageId": i, "attributes": {"ApproximateReceiveCount": "1"}, "body": "{}"} for i in ids
    ]
    payload = {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
    return InvocationRecord(
        "S3EventsFunction",
        1,
        started,
        ended,
        {"Records": messages},
        InvocationResult("S3EventsFunction", "r", payload),
    )


def test_a_retry_wait_runs_from_a_failed_receive_to_the_next_one() -> None:
    records = [
        sqs_record(0.0, 2.0, ["m1", "m2"], failed=["m1"]),
        sqs_record(32.0, 33.0, ["m1"], failed=[]),
    ]

    found = receipts(records)

    assert [(r.message_id, r.failed) for r in found] == [("m1", True), ("m2", False), ("m1", False)]
    assert retry_waits(found) == [30.0]


def test_a_failed_invocation_leaves_every_message_of_its_batch() -> None:
    crashed = InvocationRecord(
        "S3EventsFunction",
        1,
        0.0,
        1.0,
        {"Records": [{"messageId": "m1"}, {"messageId": "m2"}]},
        InvocationResult("S3EventsFunction", "r", None, {"errorType": "Runtime.ExitError"}),
    )

    assert [receipt.failed for receipt in receipts([crashed])] == [True, True]


# -- the table -------------------------------------------------------------------------------


def test_the_table_shows_every_column_in_text_and_markdown() -> None:
    rows = [
        ScenarioRow("kills | s3", 1, 1, 0, 0, {"SUCCESS": 1}, 12.34, "recovered"),
        ScenarioRow("outage", 300, 299, 0, 1, {"SUCCESS": 299, "TRIGGER_FAILED": 1}, None),
    ]

    markdown = render_markdown(rows).splitlines()
    text = render_text(rows)

    assert markdown[2].startswith("| scenario | events in | runs started | duplicates | lost |")
    assert markdown[4] == "| kills \\| s3 | 1 | 1 | 0 | 0 | SUCCESS 1 | 12.3 s | recovered |"
    assert markdown[5] == (
        "| outage | 300 | 299 | 0 | 1 | SUCCESS 299, TRIGGER_FAILED 1 | not drained |  |"
    )
    assert "not drained" in text
    assert "TRIGGER_FAILED 1" in text


def test_concurrent_appends_to_a_pool_keep_every_record(code_dir: Path, tmp_path: Path) -> None:
    pool = InstancePool(spec_for(code_dir, "others.echo"), {}, log_dir=tmp_path, max_instances=2)
    try:
        threads = [threading.Thread(target=pool.invoke, args=({"n": n},)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        pool.stop()

    assert sorted(record.event["n"] for record in pool.records) == list(range(8))
    assert pool.metrics() == {"Echoed": 8.0}


# -- the Airflow watchdog --------------------------------------------------------------------


def test_the_watchdog_starts_a_dead_airflow_component_again_and_counts_it(tmp_path: Path) -> None:
    # Given an Airflow whose two components run, and one of them dies
    components = [
        ManagedProcess(name, ["sleep", "60"], env={}, cwd=None, log_path=tmp_path / f"{name}.log")
        for name in ("scheduler", "api-server")
    ]
    server = AirflowServer(
        major=3,
        version="3.test",
        base_url="http://127.0.0.1:9",
        username="admin",
        password="admin",
        home=tmp_path,
        venv=tmp_path,
        port=9,
        processes=components,
    )
    for component in components:
        component.start()
    scheduler, api_server = components
    watchdog = AirflowWatchdog(server)
    try:
        scheduler.stop()

        # When the watchdog looks
        restarted = watchdog.restart_dead()

        # Then the dead one runs again, in its place, with the same command; the other is left
        assert restarted == ["scheduler"]
        assert server.processes[0] is not scheduler
        assert server.processes[0].is_running()
        assert server.processes[0].argv == scheduler.argv
        assert server.processes[1] is api_server
        assert watchdog.restart_counts() == {"scheduler": 1}
        assert watchdog.restart_dead() == []
    finally:
        server.stop()
    assert server.pids() == []
