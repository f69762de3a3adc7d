"""The MWAA CLI transport against a loopback HTTPS fake of ``/aws_mwaa/cli`` and a stubbed MWAA."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from dagtrigger.errors import RejectedError, TransientTriggerError
from dagtrigger.settings import Settings
from dagtrigger.transports.base import EnvironmentRef, FailedTasks
from dagtrigger.transports.mwaa_cli import CliTokenCache, MwaaCliTransport, cli_request_timeout

TOKEN_1 = "cli-token-ONE-do-not-log"
TOKEN_2 = "cli-token-TWO-do-not-log"


def traceback_of(last_line: str) -> str:
    return (
        "[2026-11-21T02:00:00.000+0000] {cli.py:1} WARNING - something noisy\n"
        "Traceback (most recent call last):\n"
        '  File "/usr/local/bin/airflow", line 8, in <module>\n'
        "    sys.exit(main())\n"
        '  File "/usr/local/lib/python3.12/site-packages/airflow/__main__.py", line 58, in main\n'
        "    args.func(args)\n"
        f"{last_line}\n"
    )


def trigger_json(argv: list[str], state: str = "queued") -> str:
    run_id = argv[argv.index("--run-id") + 1]
    logical = None
    for flag in ("--logical-date", "--exec-date"):
        if flag in argv:
            logical = argv[argv.index(flag) + 1]
    record = {"dag_id": argv[2], "dag_run_id": run_id, "logical_date": logical, "state": state}
    return "WARNING: some deprecation\n" + json.dumps([record]) + "\n"


def succeed(argv: list[str]) -> tuple[int, str, str]:
    assert argv[:2] == ["dags", "trigger"]
    return 200, trigger_json(argv), ""


@pytest.fixture
def stub_tokens(mwaa_stub, fake_mwaa_cli):
    """Queue CreateCliToken answers and make the fake web server accept those tokens."""

    def add(*tokens: str) -> None:
        for token in tokens:
            fake_mwaa_cli.valid_tokens.add(token)
            mwaa_stub.add_response(
                "create_cli_token",
                {"CliToken": token, "WebServerHostname": fake_mwaa_cli.hostname},
                {"Name": "prod-mwaa"},
            )

    return add


@pytest.fixture
def transport(cli_env, mwaa_client, tls_session, recording_lock, clock, fixed_now):
    def build(environment: EnvironmentRef = cli_env) -> MwaaCliTransport:
        return MwaaCliTransport(
            environment,
            mwaa_client,
            tls_session,
            recording_lock,
            tokens=CliTokenCache(mwaa_client, clock=clock),
            now=fixed_now,
        )

    return build


def test_trigger_sends_one_quoted_command_under_the_environment_lock(
    transport, stub_tokens, fake_mwaa_cli, recording_lock, make_request, cli_env
):
    # Given a working MWAA CLI
    stub_tokens(TOKEN_1)
    fake_mwaa_cli.behaviour = succeed
    request = make_request(cli_env, conf={"key": 'it\'s a "quoted" key\n$(x)'})

    # When a DAG run is triggered
    result = transport().trigger(request)

    # Then one text/plain command went out, holding the environment's CLI lock, and the run
    # is reported with Airflow's state
    assert len(fake_mwaa_cli.bodies) == 1
    assert fake_mwaa_cli.content_types == ["text/plain"]
    assert recording_lock.keys == ["lock#cli#prod-mwaa"]
    assert result.dag_run_id == request.dag_run_id
    assert result.state == "queued"
    assert result.already_existed is False
    assert result.dag_paused is None


def test_cli_token_is_reused_within_its_lifetime_and_refreshed_after(
    transport, stub_tokens, fake_mwaa_cli, mwaa_stub, clock, make_request, cli_env
):
    # Given two tokens MWAA will hand out in turn
    stub_tokens(TOKEN_1, TOKEN_2)
    fake_mwaa_cli.behaviour = succeed
    cli = transport()

    # When three triggers run: now, 30 s later, and 60 s after the first
    cli.trigger(make_request(cli_env, dag_run_id="run_a"))
    clock.advance(30)
    cli.trigger(make_request(cli_env, dag_run_id="run_b"))
    clock.advance(30)
    cli.trigger(make_request(cli_env, dag_run_id="run_c"))

    # Then the first token served the first two requests and a fresh one the third
    assert fake_mwaa_cli.tokens_seen == [TOKEN_1, TOKEN_1, TOKEN_2]
    mwaa_stub.assert_no_pending_responses()


def test_a_refused_token_is_dropped_and_the_failure_is_transient(
    transport, stub_tokens, fake_mwaa_cli, mwaa_stub, make_request, cli_env
):
    # Given a token the web server no longer accepts, then a good one
    stub_tokens(TOKEN_1, TOKEN_2)
    fake_mwaa_cli.valid_tokens.discard(TOKEN_1)
    fake_mwaa_cli.behaviour = succeed
    cli = transport()

    # When the first trigger is refused with 403
    with pytest.raises(TransientTriggerError) as refused:
        cli.trigger(make_request(cli_env))
    # Then it is retryable, and the next attempt asks MWAA for a new token and succeeds
    assert refused.value.http_status == 403
    assert cli.trigger(make_request(cli_env)).dag_run_id == "dt__3f2a9c"
    assert fake_mwaa_cli.tokens_seen == [TOKEN_1, TOKEN_2]
    mwaa_stub.assert_no_pending_responses()


def test_cli_token_never_appears_in_logs_or_errors(
    transport, stub_tokens, fake_mwaa_cli, make_request, cli_env, caplog
):
    # Given verbose logging and a trigger that is refused once (expired token), then succeeds
    caplog.set_level(logging.DEBUG)
    stub_tokens(TOKEN_1, TOKEN_2)
    fake_mwaa_cli.valid_tokens.discard(TOKEN_1)
    fake_mwaa_cli.behaviour = succeed
    cli = transport()

    # When both attempts run
    with pytest.raises(TransientTriggerError) as refused:
        cli.trigger(make_request(cli_env))
    result = cli.trigger(make_request(cli_env))

    # Then no token shows in any log record, error message or result
    assert caplog.records, "the HTTP and AWS libraries log at DEBUG: the check must see them"
    for token in (TOKEN_1, TOKEN_2):
        assert token not in caplog.text
        assert token not in str(refused.value)
        assert token not in repr(result)


def test_our_run_id_already_existing_is_already_triggered_on_airflow_3(
    transport, stub_tokens, fake_mwaa_cli, make_request, cli_env
):
    # Given Airflow 3 answers that a run with our run id exists
    stub_tokens(TOKEN_1)
    fake_mwaa_cli.behaviour = lambda argv: (
        200,
        "",
        traceback_of(
            "airflow.exceptions.DagRunAlreadyExists: A DAG Run already exists for DAG "
            "ingest_sales with run id dt__3f2a9c"
        ),
    )

    # When the trigger is made
    result = transport().trigger(make_request(cli_env))

    # Then it is a success that Airflow already had, not an error
    assert result.already_existed is True
    assert result.dag_run_id == "dt__3f2a9c"


def test_airflow_2_existing_run_is_confirmed_by_listing_runs(
    transport, stub_tokens, fake_mwaa_cli, make_request, cli_env
):
    # Given Airflow 2, whose DagRunAlreadyExists names the requested id whatever clashed,
    # and whose run list does hold our run
    stub_tokens(TOKEN_1)
    listed = [
        {
            "dag_id": "ingest_sales",
            "run_id": "dt__3f2a9c",
            "state": "running",
            "execution_date": "2026-11-20T01:00:00+00:00",
        }
    ]

    def airflow_2(argv: list[str]) -> tuple[int, str, str]:
        if argv[:2] == ["dags", "list-runs"]:
            return 200, json.dumps(listed), ""
        return (
            200,
            "",
            traceback_of(
                "airflow.exceptions.DagRunAlreadyExists: A DAG Run already exists for DAG "
                "ingest_sales at 2026-11-21 02:00:00.124456+00:00 with run id dt__3f2a9c"
            ),
        )

    fake_mwaa_cli.behaviour = airflow_2
    environment = replace(cli_env, airflow_major=2)

    # When the trigger is made
    result = transport(environment).trigger(make_request(environment))

    # Then the run is reported as already triggered, with Airflow's state and date for it
    assert result.already_existed is True
    assert result.state == "running"
    assert result.logical_date == "2026-11-20T01:00:00+00:00"


def test_airflow_2_logical_date_collision_retries_with_a_new_date(
    transport, stub_tokens, fake_mwaa_cli, make_request, cli_env
):
    # Given Airflow 2 where another run holds the first logical date we send
    stub_tokens(TOKEN_1)
    trigger_calls: list[list[str]] = []

    def airflow_2(argv: list[str]) -> tuple[int, str, str]:
        if argv[:2] == ["dags", "list-runs"]:
            return 200, json.dumps([{"run_id": "manual__other", "state": "success"}]), ""
        trigger_calls.append(argv)
        if len(trigger_calls) == 1:
            return (
                200,
                "",
                traceback_of("airflow.exceptions.DagRunAlreadyExists: A DAG Run already exists"),
            )
        return 200, trigger_json(argv), ""

    fake_mwaa_cli.behaviour = airflow_2
    environment = replace(cli_env, airflow_major=2)

    # When the trigger is made
    result = transport(environment).trigger(make_request(environment))

    # Then it was sent again with a different logical date (-e on Airflow 2) and succeeded
    first_date = trigger_calls[0][trigger_calls[0].index("--exec-date") + 1]
    second_date = trigger_calls[1][trigger_calls[1].index("--exec-date") + 1]
    assert first_date != second_date
    assert result.already_existed is False
    assert result.logical_date == second_date


def test_unknown_dag_is_rejected_with_airflows_message(
    transport, stub_tokens, fake_mwaa_cli, make_request, cli_env
):
    stub_tokens(TOKEN_1)
    fake_mwaa_cli.behaviour = lambda argv: (
        200, "",
        traceback_of("airflow.exceptions.DagNotFound: Dag id ingest_sales not found in DagModel"),
    )  # fmt: skip

    with pytest.raises(RejectedError) as raised:
        transport().trigger(make_request(cli_env))

    assert raised.value.code == "dag_not_found"
    assert "Dag id ingest_sales not found in DagModel" in raised.value.message


@pytest.mark.parametrize(
    "last_line",
    [
        "ValueError: DagRun conf must be a JSON object or null",
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    ],
)
def test_refused_conf_is_rejected(
    transport, stub_tokens, fake_mwaa_cli, make_request, cli_env, last_line
):
    stub_tokens(TOKEN_1)
    fake_mwaa_cli.behaviour = lambda argv: (200, "", traceback_of(last_line))

    with pytest.raises(RejectedError) as raised:
        transport().trigger(make_request(cli_env))

    assert raised.value.code == "conf_rejected"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_web_server_errors_are_transient(
    transport, stub_tokens, fake_mwaa_cli, make_request, cli_env, status
):
    stub_tokens(TOKEN_1)
    fake_mwaa_cli.behaviour = lambda argv: (status, "", "")

    with pytest.raises(TransientTriggerError) as raised:
        transport().trigger(make_request(cli_env))

    assert raised.value.http_status == status


def test_table_output_is_tolerated(transport, stub_tokens, fake_mwaa_cli, make_request, cli_env):
    # Given an Airflow that ignores --output json and prints its table
    stub_tokens(TOKEN_1)
    table = (
        "conf | dag_id       | dag_run_id | state\n"
        "=====+==============+============+=======\n"
        "{}   | ingest_sales | dt__3f2a9c | queued\n"
    )
    fake_mwaa_cli.behaviour = lambda argv: (200, table, "")

    # When the trigger is made, Then the run is recognised
    assert transport().trigger(make_request(cli_env)).dag_run_id == "dt__3f2a9c"


@pytest.mark.parametrize("dag_id", ["-rf", "a b", "dag;rm", "dägs"])
def test_bad_dag_ids_are_rejected_before_any_call(
    transport, mwaa_stub, fake_mwaa_cli, recording_lock, make_request, cli_env, dag_id
):
    # Given no MWAA answer queued at all: any call would fail the stub
    # When a trigger names a dangerous DAG id
    with pytest.raises(RejectedError) as raised:
        transport(replace(cli_env, airflow_major=None)).trigger(
            make_request(cli_env, dag_id=dag_id)
        )

    # Then nothing was called: no token, no lock, no command
    assert raised.value.code == "invalid_dag_id"
    assert fake_mwaa_cli.bodies == []
    assert recording_lock.keys == []
    mwaa_stub.assert_no_pending_responses()


def test_run_state_on_airflow_3_uses_dags_state(transport, stub_tokens, fake_mwaa_cli):
    stub_tokens(TOKEN_1)
    fake_mwaa_cli.behaviour = lambda argv: (
        (200, 'success, {"key": "a"}\n', "")
        if argv == ["dags", "state", "ingest_sales", "dt__3f2a9c"]
        else (200, "", "")
    )

    assert transport().get_dag_run_state("ingest_sales", "dt__3f2a9c") == "success"


def test_run_state_on_airflow_2_reads_the_run_list(transport, stub_tokens, fake_mwaa_cli, cli_env):
    stub_tokens(TOKEN_1)
    fake_mwaa_cli.behaviour = lambda argv: (
        200,
        json.dumps(
            [{"run_id": "other", "state": "failed"}, {"run_id": "dt__3f2a9c", "state": "running"}]
        ),
        "",
    )
    cli = transport(replace(cli_env, airflow_major=2))

    assert cli.get_dag_run_state("ingest_sales", "dt__3f2a9c") == "running"
    assert cli.get_dag_run_state("ingest_sales", "absent_run") is None
    assert fake_mwaa_cli.bodies[0] == "dags list-runs --dag-id ingest_sales --output json"


def test_airflow_version_is_asked_of_mwaa_once(
    transport, stub_tokens, mwaa_stub, fake_mwaa_cli, make_request, cli_env
):
    # Given an environment without a configured Airflow version
    mwaa_stub.add_response(
        "get_environment", {"Environment": {"AirflowVersion": "2.10.3"}}, {"Name": "prod-mwaa"}
    )
    stub_tokens(TOKEN_1)
    fake_mwaa_cli.behaviour = succeed
    environment = replace(cli_env, airflow_major=None)
    cli = transport(environment)

    # When two triggers run
    cli.trigger(make_request(environment, dag_run_id="run_a"))
    cli.trigger(make_request(environment, dag_run_id="run_b"))

    # Then GetEnvironment was called once and the Airflow 2 flag was used
    mwaa_stub.assert_no_pending_responses()
    assert all("--exec-date" in body for body in fake_mwaa_cli.bodies)


def test_started_runs_are_listed_in_one_command(transport, stub_tokens, fake_mwaa_cli, cli_env):
    # Given a DAG with a queued, a running and a finished run
    stub_tokens(TOKEN_1)
    runs = [
        {"run_id": "waiting", "state": "queued"},
        {"run_id": "busy", "state": "running"},
        {"run_id": "done", "state": "success"},
    ]
    fake_mwaa_cli.behaviour = lambda argv: (200, json.dumps(runs), "")

    # When its started runs are listed
    listing = transport().started_run_states(
        "ingest_sales", started_since=datetime(2026, 11, 21, tzinfo=UTC)
    )

    # Then one command listed them, and the queued run is left out
    assert listing.states == {"busy": "running", "done": "success"}
    assert fake_mwaa_cli.bodies == ["dags list-runs ingest_sales --output json"]


def test_the_cli_token_is_fetched_before_the_environment_lease_is_taken(
    transport, stub_tokens, fake_mwaa_cli, mwaa_client, recording_lock, make_request, cli_env
):
    # Given a token request that notes whether the lease was held while it ran
    held_during_token_request: list[int] = []
    mwaa_client.meta.events.register(
        "provide-client-params.mwaa.CreateCliToken",
        lambda **_: held_during_token_request.append(recording_lock.held_now),
    )
    stub_tokens(TOKEN_1)
    fake_mwaa_cli.behaviour = succeed

    # When a trigger runs
    transport().trigger(make_request(cli_env))

    # Then the token came first, outside the lease, which covers the CLI request alone
    assert held_during_token_request == [0]
    assert recording_lock.keys == ["lock#cli#prod-mwaa"]


def test_a_cli_request_always_ends_inside_the_lease() -> None:
    # Given the default settings, then connect + read ends at least 5 s before the lease does
    defaults = Settings(table_name="history")
    connect, read = cli_request_timeout(defaults)
    assert connect + read <= defaults.cli_lock_seconds - 5

    # And a lease too short for any request is refused by the settings, by name
    with pytest.raises(ValidationError, match="cli_lock_seconds"):
        Settings(table_name="history", cli_lock_seconds=8, connect_timeout_seconds=3)


def test_failed_tasks_come_from_one_task_states_command(transport, stub_tokens, fake_mwaa_cli):
    # Given a run whose tasks the CLI lists with their states, after a warning line
    stub_tokens(TOKEN_1)
    states = [
        {"dag_id": "ingest_sales", "task_id": "extract", "state": "success"},
        {"dag_id": "ingest_sales", "task_id": "load", "state": "failed"},
        {"dag_id": "ingest_sales", "task_id": "notify", "state": "upstream_failed"},
    ]
    fake_mwaa_cli.behaviour = lambda argv: (200, "WARNING: noisy\n" + json.dumps(states), "")

    # When its failed tasks are asked for
    failed = transport().failed_task_ids("ingest_sales", "dt__3f2a9c")

    # Then one read-only command, quoted, answered them
    assert failed == FailedTasks(("load",), count=1)
    assert fake_mwaa_cli.bodies == [
        "tasks states-for-dag-run ingest_sales dt__3f2a9c --output json"
    ]


def test_the_cli_never_asks_whether_a_dag_is_paused(transport, fake_mwaa_cli):
    assert transport().dag_paused("ingest_sales") is None
    assert fake_mwaa_cli.bodies == []
