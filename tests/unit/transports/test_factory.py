"""Choosing and building the transport an environment names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dagtrigger import aws
from dagtrigger.settings import Settings, get_settings
from dagtrigger.transports.airflow_rest import AirflowRestTransport
from dagtrigger.transports.base import EnvironmentRef, TransportKind
from dagtrigger.transports.factory import build_transport, reset_transports, transport_for
from dagtrigger.transports.invoke_rest_api import InvokeRestApiTransport
from dagtrigger.transports.mwaa_cli import MwaaCliTransport

SETTINGS = Settings(table_name="dagtrigger-history")


def env(kind: TransportKind, **extra: object) -> EnvironmentRef:
    return EnvironmentRef(alias="prod", name="prod-mwaa", transport=kind, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (env(TransportKind.INVOKE_REST_API), InvokeRestApiTransport),
        (env(TransportKind.CLI), MwaaCliTransport),
        (
            env(TransportKind.AIRFLOW_REST, base_url="https://airflow.example.com"),
            AirflowRestTransport,
        ),
    ],
)
def test_each_kind_builds_its_transport(environment, expected, mwaa_client, http_session):
    transport = build_transport(
        environment,
        settings=SETTINGS,
        mwaa_client=mwaa_client,
        http_session=http_session,
        table=object(),
    )

    assert isinstance(transport, expected)


def test_a_missing_client_is_named(http_session):
    with pytest.raises(ValueError, match="needs mwaa_client"):
        build_transport(
            env(TransportKind.INVOKE_REST_API),
            settings=SETTINGS,
            mwaa_client=None,
            http_session=http_session,
            table=None,
        )


def test_airflow_rest_without_base_url_is_a_configuration_error(http_session):
    with pytest.raises(ValueError, match="no base_url"):
        build_transport(
            env(TransportKind.AIRFLOW_REST),
            settings=SETTINGS,
            mwaa_client=None,
            http_session=http_session,
            table=None,
        )


@pytest.fixture
def fresh_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TABLE_NAME", "dagtrigger-history")
    get_settings.cache_clear()
    aws.reset_clients()
    reset_transports()
    yield
    reset_transports()
    aws.reset_clients()
    get_settings.cache_clear()


@pytest.mark.usefixtures("fresh_caches")
def test_transport_for_builds_once_per_environment():
    rest_api = env(TransportKind.INVOKE_REST_API)
    cli = env(TransportKind.CLI)

    assert transport_for(rest_api) is transport_for(rest_api)
    assert transport_for(cli) is not transport_for(rest_api)
    assert isinstance(transport_for(cli), MwaaCliTransport)
