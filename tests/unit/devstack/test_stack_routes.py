"""The routes file the local stack runs: the user's, checked, then fitted to the local Airflow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from devstack.local_state import drop_commands
from devstack.stack import DEMO_ROUTES
from devstack.stack_routes import (
    AIRFLOW_CREDENTIALS_SECRET,
    RoutesFileError,
    check_routes_file,
    fit_routes,
)

AIRFLOW_URL = "http://127.0.0.1:48080"
USER_ROUTES = """\
version: 1
environments:
  prod:
    name: analytics-prod
    transport: cli
    airflow_major: 2
  self-managed:
    name: on-prem
    transport: airflow_rest
    base_url: https://airflow.example.com
    credentials_secret: prod/airflow
s3:
  - name: raw-json
    buckets: [raw-data, archive]
    prefix: incoming/
    suffix: .json
    environment: prod
    dag_id: load_raw
  - name: reports
    buckets: [archive]
    regex: '^reports/.*$'
    environment: self-managed
    dag_id: publish_reports
"""


@pytest.fixture
def user_routes(tmp_path: Path) -> Path:
    path = tmp_path / "my-routes.yaml"
    path.write_text(USER_ROUTES)
    return path


def test_every_environment_is_served_by_the_local_airflow(
    user_routes: Path, tmp_path: Path
) -> None:
    # When the user's routes file is fitted to a stack running Airflow 3
    fitted = fit_routes(
        user_routes,
        tmp_path / "state" / "routes.yaml",
        airflow_major=3,
        airflow_base_url=AIRFLOW_URL,
    )

    # Then MWAA environments keep their names and transports, with the local Airflow's major
    environments = yaml.safe_load(fitted.path.read_text())["environments"]
    assert environments["prod"] == {
        "name": "analytics-prod",
        "transport": "cli",
        "airflow_major": 3,
    }
    # And the self-managed one reaches the local Airflow with the stack's stored credentials
    assert environments["self-managed"]["base_url"] == AIRFLOW_URL
    assert environments["self-managed"]["credentials_secret"] == AIRFLOW_CREDENTIALS_SECRET
    assert environments["self-managed"]["allow_plain_http"] is True
    # And the stack learns what it must provide
    assert fitted.mwaa_environments == ("analytics-prod",)
    # And the template grants every environment, the self-managed one too (its name names its
    # rate budget, and the functions refuse routes naming an environment not granted)
    assert fitted.environment_names == ("analytics-prod", "on-prem")
    assert fitted.buckets == ("raw-data", "archive")
    assert fitted.uses_airflow_rest
    assert fitted.transports == {"prod": "cli", "self-managed": "airflow_rest"}
    # And the user's file is left as it was
    assert user_routes.read_text() == USER_ROUTES


def test_a_chosen_transport_replaces_every_environments_own(
    user_routes: Path, tmp_path: Path
) -> None:
    fitted = fit_routes(
        user_routes,
        tmp_path / "routes.yaml",
        airflow_major=2,
        airflow_base_url=AIRFLOW_URL,
        transport="invoke_rest_api",
    )

    environments = yaml.safe_load(fitted.path.read_text())["environments"]
    assert {env["transport"] for env in environments.values()} == {"invoke_rest_api"}
    assert "base_url" not in environments["self-managed"]
    assert fitted.mwaa_environments == ("analytics-prod", "on-prem")
    assert not fitted.uses_airflow_rest


def test_the_demo_routes_drop_example_starts_ingest_sales(tmp_path: Path) -> None:
    fitted = fit_routes(
        DEMO_ROUTES, tmp_path / "routes.yaml", airflow_major=2, airflow_base_url=AIRFLOW_URL
    )

    example = fitted.drop_example
    assert example is not None
    assert (example.bucket, example.route, example.dag_id, example.certain) == (
        "landing",
        "sales-csv",
        "ingest_sales",
        True,
    )
    assert example.key.startswith("sales/")
    assert example.key.endswith(".csv")


def test_a_drop_command_puts_the_example_with_the_aws_cli_or_boto3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resources = {"moto_endpoint": "http://127.0.0.1:45001"}

    monkeypatch.setattr("devstack.local_state.shutil.which", lambda name: "/usr/bin/aws")
    (with_cli,) = drop_commands(resources, "landing", "sales/2026-11-21.csv")
    monkeypatch.setattr("devstack.local_state.shutil.which", lambda name: None)
    note, with_boto3 = drop_commands(resources, "landing", "sales/2026-11-21.csv")

    assert with_cli.endswith(
        "aws --endpoint-url http://127.0.0.1:45001 s3 cp - s3://landing/sales/2026-11-21.csv"
    )
    assert "not installed" in note
    assert 'put_object(Bucket="landing", Key="sales/2026-11-21.csv"' in with_boto3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nenvironments: {}\n", "environments"),
        (
            "version: 1\nenvironments:\n  a: {name: x, transport: grpc}\n",
            "environments.a.transport",
        ),
        ("version: [1\n", "line 2, column 1"),
    ],
)
def test_a_bad_routes_file_is_refused_with_the_loaders_message(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(text)

    with pytest.raises(RoutesFileError, match=re.escape(f"invalid routes file {path}")) as raised:
        check_routes_file(path)
    assert message in str(raised.value)


def test_a_missing_routes_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RoutesFileError, match=r"cannot read routes file .*missing\.yaml"):
        check_routes_file(tmp_path / "missing.yaml")


def test_the_demo_routes_run_on_two_emulated_environments(tmp_path: Path) -> None:
    # Given the demo routes, fitted to the local stack
    fitted = fit_routes(
        DEMO_ROUTES, tmp_path / "routes.yaml", airflow_major=3, airflow_base_url=AIRFLOW_URL
    )

    # Then the emulator serves two MWAA environments, both granted by the template, and each
    # S3 route names its own
    assert fitted.mwaa_environments == ("dagtrigger-demo", "dagtrigger-finance")
    assert fitted.environment_names == fitted.mwaa_environments
    routes = yaml.safe_load(fitted.path.read_text())
    assert {route["name"]: route["environment"] for route in routes["s3"]} == {
        "sales-csv": "demo",
        "finance-csv": "finance",
        "orders-asset": "demo",
        "exports": "demo",
    }


def test_on_the_cli_transport_the_demo_routes_leave_out_their_asset_route(tmp_path: Path) -> None:
    # The MWAA CLI has no command for asset events: `make up TRANSPORT=cli` still starts
    fitted = fit_routes(
        DEMO_ROUTES,
        tmp_path / "routes.yaml",
        airflow_major=3,
        airflow_base_url=AIRFLOW_URL,
        transport="cli",
    )
    routes = yaml.safe_load(fitted.path.read_text())
    assert [route["name"] for route in routes["s3"]] == ["sales-csv", "finance-csv", "exports"]
    assert set(fitted.transports.values()) == {"cli"}
