"""`dagtrigger routes check` and `dagtrigger routes test` with typer's test runner: a routes file
on disk, no stack, nothing triggered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.dry_run import NOTHING_TRIGGERED
from tests.unit.cli.conftest import DagtriggerRunner

ROUTES_YAML = r"""version: 1
environments:
  prod:
    name: analytics-prod
    transport: invoke_rest_api
    airflow_major: 3
s3:
  - name: sales-csv
    buckets: [landing]
    prefix: sales/
    suffix: .csv
    regex: '^sales/(?P<day>\d{4}-\d{2}-\d{2})\.csv$'
    environment: prod
    dag_id: ingest_sales
    conf:
      key: "{{ key }}"
      day: "{{ match.day }}"
  - name: big-files
    buckets: [landing]
    min_size: 1000000
    environment: prod
    dag_id: ingest_large
webhooks:
  - name: github-push
    scheme: github
    secret: dagtrigger/webhooks/github
    environment: prod
    dag_id: build_docs
    filter: "payload.ref == 'refs/heads/main'"
    conf:
      sha: "{{ payload.after }}"
schedules:
  - name: nightly-report
    environment: prod
    dag_id: nightly_report
"""
#: three mistakes, each on its own line
INVALID_YAML = """version: 1
environments:
  prod:
    name: analytics-prod
    transport: invoke_rest_apis
s3:
  - name: sales-csv
    buckets: [landing]
    sufix: .csv
    environment: prod
    dag_id: -ingest
"""


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES_YAML, encoding="utf-8")
    return path


@pytest.fixture
def invalid_file(tmp_path: Path) -> Path:
    path = tmp_path / "invalid.yaml"
    path.write_text(INVALID_YAML, encoding="utf-8")
    return path


@pytest.fixture
def push_payload(tmp_path: Path) -> Path:
    path = tmp_path / "push.json"
    path.write_text(json.dumps({"ref": "refs/heads/main", "after": "9f2c1e7"}), encoding="utf-8")
    return path


def dry_run_json(cli_runner: DagtriggerRunner, *args: str) -> dict[str, Any]:
    result = cli_runner.run("routes", "test", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


# ------------------------------------------------------------------------------------- help


def test_the_routes_help_lists_check_and_test(cli_runner: DagtriggerRunner) -> None:
    result = cli_runner.run("routes", "--help")

    assert result.exit_code == 0
    assert "check" in result.stdout
    assert "Dry-run one event against a routes file: nothing is triggered" in result.stdout


def test_the_test_help_names_the_options_of_each_event(cli_runner: DagtriggerRunner) -> None:
    result = cli_runner.run("routes", "test", "--help")

    assert result.exit_code == 0
    for option in ("--bucket", "--key", "--size", "--webhook", "--payload", "--schedule", "--json"):
        assert option in result.stdout
    assert "signature is not checked" in " ".join(result.stdout.split())


# ------------------------------------------------------------------------------------ check


def test_a_valid_file_is_summarised_in_tables(
    cli_runner: DagtriggerRunner, routes_file: Path
) -> None:
    result = cli_runner.run("routes", "check", str(routes_file))

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"{routes_file} is valid: 1 environment, 4 routes (2 s3, 1 webhooks, 1 schedules)"
    )
    row = next(line for line in lines if "big-files" in line)
    assert "ingest_large" in row
    assert "buckets landing; min_size 1000000" in row
    assert any("analytics-prod" in line and "invoke_rest_api" in line for line in lines)
    assert any("POST /v1/webhooks/github-push (github)" in line for line in lines)


def test_a_valid_file_as_json(cli_runner: DagtriggerRunner, routes_file: Path) -> None:
    result = cli_runner.run("routes", "check", str(routes_file), "--json")

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["valid"] is True
    assert [(route["kind"], route["name"]) for route in document["routes"]] == [
        ("s3", "sales-csv"),
        ("s3", "big-files"),
        ("webhooks", "github-push"),
        ("schedules", "nightly-report"),
    ]


def test_an_invalid_file_lists_every_problem_with_its_field_and_line(
    cli_runner: DagtriggerRunner, invalid_file: Path
) -> None:
    result = cli_runner.run("routes", "check", str(invalid_file))

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{invalid_file} is not a valid routes file (3 problems):"
    assert lines[1].startswith("  environments.prod.transport (line 5): Input should be")
    assert lines[2].startswith("  s3[0].dag_id (line 11): String should match pattern")
    assert "(got '-ingest')" in lines[2]
    assert lines[3] == "  s3[0].sufix (line 9): Extra inputs are not permitted"


def test_an_invalid_file_as_json(cli_runner: DagtriggerRunner, invalid_file: Path) -> None:
    result = cli_runner.run("routes", "check", str(invalid_file), "--json")

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert document["problems"][2] == {
        "location": "s3[0].sufix",
        "line": 9,
        "message": "Extra inputs are not permitted",
    }


def test_yaml_that_does_not_parse_is_reported_at_its_line(
    cli_runner: DagtriggerRunner, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nenvironments: [\n", encoding="utf-8")

    result = cli_runner.run("routes", "check", str(broken))

    assert result.exit_code == 1
    assert result.stdout.splitlines()[1].startswith("  line 3: expected")


def test_a_missing_file_is_one_line_and_exit_1(
    cli_runner: DagtriggerRunner, tmp_path: Path
) -> None:
    result = cli_runner.run("routes", "check", str(tmp_path / "nope.yaml"))

    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: no such file\n"
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------------- test


def test_an_s3_dry_run_shows_matches_conf_run_id_and_why_others_do_not_match(
    cli_runner: DagtriggerRunner, routes_file: Path
) -> None:
    # When an object of the sales route is dry-run
    result = cli_runner.run(
        "routes", "test", str(routes_file),
        "--bucket", "landing", "--key", "sales/2026-11-21.csv", "--size", "1234",
        "--version-id", "v1", "--event-time", "2026-11-21T10:15:00Z",
    )  # fmt: skip

    # Then it says what it tested, the route, its DAG, run id and conf, the other routes' reasons,
    # and that nothing was triggered
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith(
        "Dry run of s3://landing/sales/2026-11-21.csv (1234 bytes, created 2026-11-21T10:15:00Z)"
    )
    assert f"against {routes_file}: would start 1 DAG run" in out
    run_row = next(line for line in out.splitlines() if "sales-csv" in line)
    assert "ingest_sales" in run_row
    assert "dagtrigger__s3__sales-2026-11-21.csv__20261121T101500Z__" in run_row
    assert '"day": "2026-11-21"' in out
    big = next(line for line in out.splitlines() if "big-files" in line)
    assert "size 1234 is below min_size 1000000" in big
    assert f"- {NOTHING_TRIGGERED}" in out


def test_an_s3_dry_run_as_json_is_the_api_answer(
    cli_runner: DagtriggerRunner, routes_file: Path
) -> None:
    document = dry_run_json(
        cli_runner, str(routes_file), "--bucket", "landing", "--key", "sales/x.csv",
        "--event-time", "2026-11-21T10:15:00Z",
    )  # fmt: skip

    assert document["summary"] == "no route would start a DAG run"
    reasons = {verdict["route"]: verdict["reasons"] for verdict in document["non_matches"]}
    assert reasons["sales-csv"] == [
        r"the key does not match regex '^sales/(?P<day>\d{4}-\d{2}-\d{2})\.csv$'"
    ]
    assert reasons["nightly-report"] == ["a schedule route, and the event is an S3 object"]
    assert document["notes"][0] == NOTHING_TRIGGERED


def test_a_webhook_dry_run_renders_the_conf_from_the_payload_file(
    cli_runner: DagtriggerRunner, routes_file: Path, push_payload: Path
) -> None:
    document = dry_run_json(
        cli_runner, str(routes_file), "--webhook", "github-push", "--payload", str(push_payload),
        "--header", "X-GitHub-Delivery: 72d3162e", "--received-at", "2026-11-21T10:15:00Z",
    )  # fmt: skip

    (match,) = document["matches"]
    assert match["conf"] == {"sha": "9f2c1e7"}
    assert match["dag_run_id"].startswith("dagtrigger__webhook__github-push-72d3162e__")
    assert any("signatures are not checked" in note for note in document["notes"])


def test_a_schedule_dry_run_merges_the_schedules_conf(
    cli_runner: DagtriggerRunner, routes_file: Path
) -> None:
    document = dry_run_json(
        cli_runner, str(routes_file), "--schedule", "nightly-report",
        "--scheduled-time", "2026-11-22T02:00:00Z", "--conf", '{"region": "eu"}',
    )  # fmt: skip

    (match,) = document["matches"]
    assert match["conf"] == {
        "scheduled_time": "2026-11-22T02:00:00Z",
        "schedule_name": "nightly-report",
        "region": "eu",
    }
    assert "__20261122T020000Z__" in match["dag_run_id"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: give one event: --bucket and --key (an S3 object), --webhook and --payload"),
        (["--bucket", "landing"], "error: --bucket needs --key (the object's key)"),
        (["--key", "a.csv"], "error: --key needs --bucket"),
        (
            ["--bucket", "landing", "--key", "a", "--schedule", "nightly-report"],
            "error: give one event only: --bucket and --schedule are different events",
        ),
        (["--webhook", "github-push"], "error: --webhook needs --payload FILE"),
        (
            ["--bucket", "Landing_", "--key", "a"],
            "error: --bucket: String should match pattern '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' "
            "(got 'Landing_')",
        ),
        (
            ["--bucket", "landing", "--key", "a", "--event-time", "2026-11-21T10:15"],
            "error: --event-time: Input should have timezone info",
        ),
        (["--schedule", "nightly-report", "--conf", "[1]"], "error: --conf: Input should be a"),
        (["--schedule", "nightly-report", "--conf", "{"], "error: --conf is not JSON"),
    ],
)
def test_a_wrong_event_is_one_clear_line_and_exit_1(
    cli_runner: DagtriggerRunner, routes_file: Path, args: list[str], message: str
) -> None:
    result = cli_runner.run("routes", "test", str(routes_file), *args)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1


def test_a_payload_that_is_not_json_is_one_line(
    cli_runner: DagtriggerRunner, routes_file: Path, tmp_path: Path
) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text("not json", encoding="utf-8")

    result = cli_runner.run(
        "routes", "test", str(routes_file), "--webhook", "github-push", "--payload", str(payload)
    )

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: --payload {payload}: the body is not valid UTF-8 JSON at line 1 column 1\n"
    )


def test_testing_against_an_invalid_file_names_its_first_problem_and_the_check_command(
    cli_runner: DagtriggerRunner, invalid_file: Path
) -> None:
    result = cli_runner.run("routes", "test", str(invalid_file), "--schedule", "nightly")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: {invalid_file} is not a valid routes file: environments.prod.transport (line 5)"
    )
    assert result.stderr.endswith(f"(and 2 more); see dagtrigger routes check {invalid_file}\n")
