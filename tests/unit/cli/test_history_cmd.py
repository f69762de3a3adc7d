"""`dagtrigger history`, `show` and `trigger` against the real api function (over HTTP, signed),
and their one-line errors."""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import dagtrigger_cli.target
from dagtrigger.ids import file_set_id, set_member_identity, trigger_id
from dagtrigger.ledger import NewTrigger, SourceType, TriggerStatus
from dagtrigger.ledger.file_sets import CompletionReason, FileSetRef, SetMember
from dagtrigger.transports.asset_events import AssetEvent
from dagtrigger.transports.base import FailedTasks, TriggerResult
from dagtrigger_cli import history_cmd
from dagtrigger_cli.api import ApiClient
from tests.unit.cli.conftest import ApiStack, DagtriggerRunner

MISSING_ID = "t-" + "0" * 32
RESOLVE = dagtrigger_cli.target.resolve  # before api_stack stands in for it


def new_s3_trigger(suffix: str, key: str, *, dag_id: str = "ingest_sales") -> NewTrigger:
    return NewTrigger(
        trigger_id=f"t-{suffix:0>32}",
        source_type=SourceType.S3,
        source_key=f"s3://landing/{key}",
        source_identity=f"s3://landing/{key}#version={suffix}",
        source_ref={"bucket": "landing", "key": key},
        route="sales-csv",
        environment="prod",
        dag_id=dag_id,
        dag_run_id=f"dagtrigger__s3__{suffix}",
        conf={"bucket": "landing", "key": key},
        event_time=datetime(2026, 11, 21, 2, 0, tzinfo=UTC),
    )


def record_trigger(stack: ApiStack, suffix: str, status: TriggerStatus, key: str = "") -> str:
    """A trigger of ``s3://landing/KEY`` recorded as the s3 path would, ending in ``status``."""
    ledger = stack.ledger
    new = new_s3_trigger(suffix, key or f"sales/{suffix}.csv")
    if status in (TriggerStatus.REJECTED, TriggerStatus.IGNORED):
        message = "no such DAG" if status is TriggerStatus.REJECTED else "the route is paused"
        ledger.record_final(new, status=status, code="dag_not_found", message=message)
        return new.trigger_id
    ledger.claim(new)
    if status is TriggerStatus.TRIGGER_FAILED:
        ledger.mark_trigger_failed(new.trigger_id, message="503 from MWAA", attempts=3)
        return new.trigger_id
    result = TriggerResult(dag_run_id=str(new.dag_run_id), logical_date=None, state="queued")
    ledger.mark_triggered(new.trigger_id, result=result, attempts=1)
    if status in (TriggerStatus.SUCCESS, TriggerStatus.FAILED):
        ledger.update_run_state(new.trigger_id, status=status, airflow_state=status.lower())
    return new.trigger_id


def rows_of(output: str, trigger_ids: list[str]) -> dict[str, str]:
    """The table line of each trigger id that appears in ``output``."""
    return {
        trigger_id: line
        for line in output.splitlines()
        for trigger_id in trigger_ids
        if trigger_id in line
    }


def assert_one_line_error(result: Any, *expected: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


# --------------------------------------------------------------------------------------- help


def test_the_help_lists_the_history_commands(cli_runner: DagtriggerRunner) -> None:
    result = cli_runner.run("--help")

    assert result.exit_code == 0
    for command in ("history", "show", "trigger"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("history", ["--dag", "--status", "--source", "--bucket", "--key", "--since", "--all"]),
        ("show", ["timeline", "conf", "Airflow run", "--json"]),
        ("trigger", ["DAG_ID", "--conf", "--environment", "--note", "--idempotency-key"]),
    ],
)
def test_each_command_explains_its_options(
    cli_runner: DagtriggerRunner, command: str, expected: list[str]
) -> None:
    result = cli_runner.run(command, "--help")

    assert result.exit_code == 0
    for text in expected:
        assert text in result.stdout


# ------------------------------------------------------------------------------------ history


def test_history_is_a_table_newest_first_with_statuses_and_reasons(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    succeeded = record_trigger(api_stack, "1", TriggerStatus.SUCCESS)
    rejected = record_trigger(api_stack, "2", TriggerStatus.REJECTED)
    failed = record_trigger(api_stack, "3", TriggerStatus.TRIGGER_FAILED)

    result = cli_runner.run("history")

    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    for column in ("time (UTC)", "trigger", "source", "DAG", "status", "run id", "reason"):
        assert column in header
    rows = rows_of(result.stdout, [succeeded, rejected, failed])
    assert "SUCCESS" in rows[succeeded]
    assert "dagtrigger__s3__1" in rows[succeeded]
    assert "s3://landing/sales/1.csv" in rows[succeeded]
    assert "REJECTED" in rows[rejected]
    assert "dag_not_found: no such DAG" in rows[rejected]
    assert "TRIGGER_FAILED" in rows[failed]
    assert "503 from MWAA" in rows[failed]
    lines = result.stdout.splitlines()
    order = [next(i for i, line in enumerate(lines) if t in line) for t in (failed, succeeded)]
    assert order == sorted(order), "newest first"


def test_history_colours_each_status(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = record_trigger(api_stack, "1", TriggerStatus.TRIGGER_FAILED)
    succeeded = record_trigger(api_stack, "2", TriggerStatus.SUCCESS)
    colour = Console(force_terminal=True, color_system="standard", width=250)
    monkeypatch.setattr(history_cmd, "console", colour)

    result = cli_runner.run("history")

    rows = rows_of(result.stdout, [failed, succeeded])
    assert "\x1b[1;31mTRIGGER_FAILED" in rows[failed]  # bold red
    assert "\x1b[32mSUCCESS" in rows[succeeded]  # green


def test_history_sends_its_filters_as_query_parameters(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    before = datetime.now(UTC)

    result = cli_runner.run(
        "history",
        "--dag",
        "ingest_sales",
        "--environment",
        "prod",
        "--status",
        "trigger_failed",
        "--since",
        "12h",
        "--until",
        "2026-12-31T10:00+01:00",
        "--limit",
        "7",
    )

    assert result.exit_code == 0, result.output
    [query] = api_stack.queries("/v1/triggers")
    since = datetime.fromisoformat(query.pop("since"))
    assert before - timedelta(hours=12, seconds=5) <= since <= before - timedelta(hours=11)
    assert query == {
        "dag_id": "ingest_sales",
        "environment": "prod",
        "status": "TRIGGER_FAILED",
        "until": "2026-12-31T09:00:00Z",
        "limit": "7",
    }


def test_an_objects_history_reads_the_objects_route(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    key = "sales/c++ notes v2.csv"
    mine = record_trigger(api_stack, "1", TriggerStatus.SUCCESS, key=key)
    other = record_trigger(api_stack, "2", TriggerStatus.SUCCESS, key="sales/other.csv")

    result = cli_runner.run("history", "--bucket", "landing", "--key", key)

    assert result.exit_code == 0, result.output
    assert mine in result.stdout
    assert other not in result.stdout
    assert api_stack.queries("/v1/objects") == [{"bucket": "landing", "key": key, "limit": "20"}]


def test_an_objects_history_with_other_filters_lists_by_its_source(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    failed = record_trigger(api_stack, "1", TriggerStatus.TRIGGER_FAILED, key="sales/a.csv")
    succeeded = record_trigger(api_stack, "2", TriggerStatus.SUCCESS, key="sales/a.csv")

    # the stack's bucket is the default
    result = cli_runner.run("history", "--key", "sales/a.csv", "--status", "TRIGGER_FAILED")

    assert result.exit_code == 0, result.output
    assert failed in result.stdout
    assert succeeded not in result.stdout
    [query] = api_stack.queries("/v1/triggers")
    assert query["source"] == "s3://landing/sales/a.csv"
    assert query["status"] == "TRIGGER_FAILED"


def test_history_without_a_terminal_prints_what_limit_asks_and_says_more_match(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    ids = [record_trigger(api_stack, str(n), TriggerStatus.SUCCESS) for n in range(1, 6)]

    result = cli_runner.run("history", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert set(rows_of(result.stdout, ids)) == {ids[4], ids[3]}
    assert "more triggers match" in result.stderr
    assert len(api_stack.queries("/v1/triggers")) == 1


def test_history_follows_the_cursor_until_it_has_what_limit_asks(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [record_trigger(api_stack, str(n), TriggerStatus.SUCCESS) for n in range(1, 7)]
    monkeypatch.setattr(history_cmd, "MAX_PAGE_SIZE", 2)

    result = cli_runner.run("history", "--limit", "5")

    assert result.exit_code == 0, result.output
    assert set(rows_of(result.stdout, ids)) == set(ids[1:])
    queries = api_stack.queries("/v1/triggers")
    assert [query["limit"] for query in queries] == ["2", "2", "1"]
    assert "cursor" not in queries[0]
    assert queries[1]["cursor"] != queries[2]["cursor"]
    assert "more triggers match" in result.stderr


def test_history_all_reads_every_page(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [record_trigger(api_stack, str(n), TriggerStatus.SUCCESS) for n in range(1, 6)]
    monkeypatch.setattr(history_cmd, "MAX_PAGE_SIZE", 2)

    result = cli_runner.run("history", "--dag", "ingest_sales", "--all")

    assert result.exit_code == 0, result.output
    assert set(rows_of(result.stdout, ids)) == set(ids)
    assert len(api_stack.queries("/v1/triggers")) == 3
    assert "more triggers match" not in result.stderr


def test_history_on_a_terminal_asks_before_each_next_page(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [record_trigger(api_stack, str(n), TriggerStatus.SUCCESS) for n in range(1, 6)]
    monkeypatch.setattr(history_cmd, "interactive", lambda: True)

    result = cli_runner.run("history", "--limit", "2", input="y\nn\n")

    assert result.exit_code == 0, result.output
    assert result.stdout.count("more?") == 2
    assert set(rows_of(result.stdout, ids)) == {ids[4], ids[3], ids[2], ids[1]}
    assert len(api_stack.queries("/v1/triggers")) == 2


def test_history_json_is_the_records_for_scripts(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    ids = [record_trigger(api_stack, str(n), TriggerStatus.SUCCESS) for n in range(1, 4)]

    result = cli_runner.run("history", "--json", "--all")

    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [record["trigger_id"] for record in records] == ids[::-1]
    assert records[0]["conf"] == {"bucket": "landing", "key": "sales/3.csv"}


def test_history_says_when_nothing_matches(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    result = cli_runner.run("history", "--status", "FAILED")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no triggers match"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is not a time"),
        (["--status", "DONE"], "unknown status 'DONE'"),
        (["--bucket", "landing"], "both --bucket and --key"),
        (["--key", "a.csv", "--source", "webhook:x"], "--source and --bucket/--key"),
    ],
)
def test_bad_history_filters_are_one_line_errors_before_any_call(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, arguments: list[str], expected: str
) -> None:
    result = cli_runner.run("history", *arguments)

    assert_one_line_error(result, expected)
    assert api_stack.events == []


def test_a_refused_filter_is_the_apis_one_line_problem(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    result = cli_runner.run("history", "--since", "1d", "--until", "3d")

    assert_one_line_error(result, "is after until", "(400 Bad Request)")


# --------------------------------------------------------------------------------------- show


def test_show_tells_a_triggers_story(cli_runner: DagtriggerRunner, api_stack: ApiStack) -> None:
    ledger = api_stack.ledger
    new = new_s3_trigger("9", "sales/2026-11-21.csv")
    ledger.claim(new)
    ledger.mark_trigger_failed(new.trigger_id, message="MWAA answered 503", attempts=3)
    ledger.claim(new)  # the queue's redelivery takes it over
    result = TriggerResult(dag_run_id=str(new.dag_run_id), logical_date=None, state="queued")
    ledger.mark_triggered(new.trigger_id, result=result, attempts=1)
    ledger.claim(new)  # a duplicate delivery: counted, starts nothing
    ledger.update_run_state(new.trigger_id, status=TriggerStatus.RUNNING, airflow_state="running")
    ledger.update_run_state(
        new.trigger_id,
        status=TriggerStatus.FAILED,
        airflow_state="failed",
        start_date="2026-11-21T02:00:05+00:00",
        end_date="2026-11-21T02:01:00+00:00",
        failed_tasks=FailedTasks(task_ids=("load",), count=2),
    )

    shown = cli_runner.run("show", new.trigger_id)

    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "failed tasks: load (2 failed in all)" in text
    timeline = text[text.index("Timeline") : text.index("\nConf\n")].splitlines()[1:]
    steps = [line.split()[2] for line in timeline if line.strip()]
    assert steps == [
        "object",  # created
        "RECEIVED",
        "TRIGGER_FAILED",
        "RECEIVED",
        "TRIGGERED",
        "delivered",  # again
        "RUNNING",
        "FAILED",
    ]
    assert "MWAA answered 503" in timeline[2]
    assert "claimed again for a retry" in timeline[3]
    assert "a duplicate (3 deliveries in all): it started nothing" in timeline[5]
    conf = text[text.index("\nConf\n") : text.index("\nAirflow run\n")]
    assert json.loads(conf.removeprefix("\nConf\n")) == {
        "bucket": "landing",
        "key": "sales/2026-11-21.csv",
    }
    assert '  "key": "sales/2026-11-21.csv"' in conf  # pretty, not one line
    airflow = text[text.index("\nAirflow run\n") :]
    for expected in ("dagtrigger__s3__9", "prod", "failed", "2026-11-21 02:01:00", "load"):
        assert expected in airflow


def test_show_tells_an_asset_events_story(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    # Given an asset route's trigger whose event Airflow recorded as event 7 of asset 3
    ledger = api_stack.ledger
    new = replace(
        new_s3_trigger("a", "orders/1.csv"),
        dag_id=None,
        dag_run_id=None,
        asset_uri="s3://landing/orders/",
    )
    ledger.claim(new)
    event = AssetEvent(event_id=7, asset_id=3, uri="s3://landing/orders", timestamp=None)
    ledger.mark_event_created(new.trigger_id, event=event, attempts=1)

    # When it is shown, and listed
    shown = cli_runner.run("show", new.trigger_id)
    listed = cli_runner.run("history", "--source", "s3://landing/orders/1.csv")

    # Then the asset takes the DAG's place, the event id the run id's, and the extra the conf's
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "asset event 7 created: Airflow starts the DAGs that consume the asset" in text
    extra = text[text.index("\nExtra\n") : text.index("\nAirflow asset event\n")]
    assert json.loads(extra.removeprefix("\nExtra\n")) == new.conf
    section = text[text.index("\nAirflow asset event\n") :]
    for expected in ("s3://landing/orders/", "event id", "7", "asset id", "3"):
        assert expected in section
    row = rows_of(listed.stdout, [new.trigger_id])[new.trigger_id]
    for expected in ("asset s3://landing/orders/", "EVENT_CREATED", "event 7"):
        assert expected in row


def test_set_shows_a_file_set_its_objects_and_a_members_record_names_it(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    # Given a file set of two parts, completed by its count
    sets = api_stack.deps.file_sets
    assert sets is not None
    group = "exports/2026-12-03"
    file_set = FileSetRef(
        set_id=file_set_id("exports", group),
        route="exports",
        group=group,
        environment="prod",
        dag_id="load_export",
        limit=2,
    )
    members = []
    for key in (f"{group}/part-0.csv", f"{group}/part-1.csv"):
        identity = set_member_identity("landing", key, "e1")
        members.append(
            SetMember(
                trigger_id=trigger_id(identity, "exports"),
                source_key=f"s3://landing/{key}",
                source_identity=identity,
                source_ref={"bucket": "landing", "key": key, "size": 6, "etag": "e1"},
                size=6,
            )
        )
        sets.join(file_set, members[-1])
    sets.complete(file_set.set_id, CompletionReason.COUNT, at_least=2)

    # When the set is shown, and one of its objects' records
    shown = cli_runner.run("set", file_set.set_id)
    member = cli_runner.run("show", members[0].trigger_id)

    # Then the set says how it completed and lists its objects; the member names its set
    assert shown.exit_code == 0, shown.output
    for expected in ("SET_COMPLETE", "count", "2 (12 bytes)", f"s3://landing/{group}/part-1.csv"):
        assert expected in shown.stdout
    assert member.exit_code == 0, member.output
    assert "IN_SET" in member.stdout
    assert re.search(rf"file set +{file_set.set_id}", member.stdout), member.stdout


def test_show_json_is_the_record(cli_runner: DagtriggerRunner, api_stack: ApiStack) -> None:
    trigger_id = record_trigger(api_stack, "1", TriggerStatus.FAILED)

    result = cli_runner.run("show", trigger_id, "--json")

    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["trigger_id"] == trigger_id
    assert [step["status"] for step in record["transitions"]] == [
        "RECEIVED",
        "TRIGGERED",
        "FAILED",
    ]
    assert record["finished_at"] is not None


def test_show_of_an_unknown_trigger_is_one_line(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    result = cli_runner.run("show", MISSING_ID)

    assert_one_line_error(result, f"no trigger with id '{MISSING_ID}'", "404")


# ------------------------------------------------------------------------------------ trigger


def test_trigger_starts_a_run_through_the_api(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    result = cli_runner.run(
        "trigger",
        "ingest_sales",
        "--conf",
        '{"day": "2026-11-21"}',
        "--note",
        "backfill",
        "--idempotency-key",
        "backfill-2026-11-21",
    )

    assert result.exit_code == 0, result.output
    [call] = api_stack.transport.calls
    assert call.dag_id == "ingest_sales"
    assert call.conf == {"day": "2026-11-21"}
    assert call.dag_run_id in result.stdout
    assert "TRIGGERED" in result.stdout
    [event] = api_stack.events
    assert event["headers"]["idempotency-key"] == "backfill-2026-11-21"
    [record] = api_stack.ledger.query_by_dag("prod", "ingest_sales").items
    assert record["trigger_id"] in result.stdout
    assert record["note"] == "backfill"


def test_trigger_with_the_same_key_starts_nothing_new(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    arguments = ("trigger", "ingest_sales", "--conf", "{}", "--idempotency-key", "k1", "--json")

    first = json.loads(cli_runner.run(*arguments).stdout)
    second = json.loads(cli_runner.run(*arguments).stdout)

    assert second["trigger_id"] == first["trigger_id"]
    assert len(api_stack.transport.calls) == 1


def test_trigger_reads_conf_from_a_file(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, tmp_path: Path
) -> None:
    conf_file = tmp_path / "conf.json"
    conf_file.write_text('{"rows": [1, 2]}')

    result = cli_runner.run("trigger", "ingest_sales", "--conf", f"@{conf_file}")

    assert result.exit_code == 0, result.output
    assert api_stack.transport.calls[0].conf == {"rows": [1, 2]}


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ("{bad", "--conf is not JSON: Expecting property name"),
        ("[1, 2]", "--conf must be a JSON object ({...}), not an array"),
        ("@/nonexistent/conf.json", "--conf @/nonexistent/conf.json: No such file"),
    ],
)
def test_a_bad_conf_is_one_line_before_any_call(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, conf: str, expected: str
) -> None:
    result = cli_runner.run("trigger", "ingest_sales", "--conf", conf)

    assert_one_line_error(result, expected)
    assert api_stack.events == []


def test_a_dag_the_routes_do_not_allow_is_the_apis_one_line_problem(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    result = cli_runner.run("trigger", "ingest_sales", "--environment", "nowhere")

    assert_one_line_error(result, "unknown environment 'nowhere'", "422")


# ----------------------------------------------------------------------------- other errors


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_api_that_does_not_answer_is_one_line(
    cli_runner: DagtriggerRunner, api_stack: ApiStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = replace(api_stack.target, api_url=f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(dagtrigger_cli.target, "resolve", lambda options: gone)

    result = cli_runner.run("history")

    assert_one_line_error(result, "the API did not answer", gone.api_url, "connection refused")


def test_without_a_stack_the_command_says_how_to_get_one(
    cli_runner: DagtriggerRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGTRIGGER_STACK", raising=False)
    monkeypatch.setattr(dagtrigger_cli.target, "LOCAL_STATE_FILE", tmp_path / "up.json")

    for arguments in (["history"], ["show", MISSING_ID], ["trigger", "ingest_sales"]):
        result = cli_runner.run(*arguments)

        assert_one_line_error(result, "no dagtrigger to talk to", "--stack", "make up")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"pid": 2**22 + 12345, "ready": True, "resources": {}}, "is not running"),
        ({"endpoints": {}}, "does not give the local stack's resources"),
        ({"resources": {"region": "us-east-1"}}, "local stack's moto_endpoint"),
    ],
)
def test_a_local_stack_that_is_not_usable_is_one_line(
    cli_runner: DagtriggerRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    state: dict[str, Any],
    expected: str,
) -> None:
    monkeypatch.delenv("DAGTRIGGER_STACK", raising=False)
    state_file = tmp_path / "up.json"
    # a live process group, unless the state names its own pid
    state_file.write_text(json.dumps({"pid": os.getpgid(0), **state}))
    monkeypatch.setattr(dagtrigger_cli.target, "LOCAL_STATE_FILE", state_file)

    result = cli_runner.run("history")

    assert_one_line_error(result, expected)


def test_the_local_stack_is_found_from_its_state_file(
    cli_runner: DagtriggerRunner,
    api_stack: ApiStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trigger_id = record_trigger(api_stack, "1", TriggerStatus.SUCCESS)
    resources = {
        "region": "us-east-1",
        "moto_endpoint": "http://127.0.0.1:5000",
        "dynamodb_endpoint": "http://127.0.0.1:8000",
        "table": api_stack.target.table,
        "queue_url": api_stack.target.queue_url,
        "dlq_url": api_stack.target.dlq_url,
        "bucket": "landing",
        "api_url": api_stack.target.api_url,
    }
    state_file = tmp_path / "up.json"
    state_file.write_text(json.dumps({"pid": os.getpgid(0), "ready": True, "resources": resources}))
    monkeypatch.setattr(dagtrigger_cli.target, "LOCAL_STATE_FILE", state_file)
    monkeypatch.setattr(dagtrigger_cli.target, "resolve", RESOLVE)
    monkeypatch.delenv("DAGTRIGGER_STACK", raising=False)

    result = cli_runner.run("history", "--key", "sales/1.csv")

    assert result.exit_code == 0, result.output
    assert trigger_id in result.stdout
    assert api_stack.queries("/v1/objects") == [
        {"bucket": "landing", "key": "sales/1.csv", "limit": "20"}
    ]


def test_show_tells_who_replayed_a_trigger(
    cli_runner: DagtriggerRunner, api_stack: ApiStack
) -> None:
    trigger_id = record_trigger(api_stack, "1", TriggerStatus.TRIGGER_FAILED)
    ApiClient(api_stack.target).post(f"/v1/triggers/{trigger_id}/replay")

    result = cli_runner.run("show", trigger_id)

    assert result.exit_code == 0, result.output
    timeline = result.stdout[result.stdout.index("Timeline") :].splitlines()
    replayed = next(line for line in timeline if "replayed by" in line)
    assert "RECEIVED" in replayed
    assert "user/local-testing" in replayed
    assert "TRIGGERED" in timeline[timeline.index(replayed) + 1]
    assert "503 from MWAA" in result.stdout
