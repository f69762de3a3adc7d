"""Choosing and building the transport an environment names."""

from __future__ import annotations

import pytest

from dagtrigger.settings import Settings
from dagtrigger.transports.airflow_rest import AirflowRestTransport
from dagtrigger.transports.base import EnvironmentRef, TransportKind
from dagtrigger.transports.factory import TransportCache, TransportParts, build_transport
from dagtrigger.transports.invoke_rest_api import InvokeRestApiTransport
from dagtrigger.transports.mwaa_cli import MwaaCliTransport

SETTINGS = Settings(table_name="dagtrigger-history")


def parts(mwaa_client: object, http_session: object, table: object) -> TransportParts:
    def given(client: object, name: str) -> object:
        if client is None:
            raise ValueError(f"this test gives no {name}")
        return client

    return TransportParts(
        settings=SETTINGS,
        mwaa_client=lambda: given(mwaa_client, "mwaa_client"),
        table=lambda: given(table, "table"),
        http_session=lambda: given(http_session, "http_session"),
        secrets_provider=lambda: given(None, "secrets_provider"),
    )


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
        parts(mwaa_client=mwaa_client, http_session=http_session, table=object()),
    )

    assert isinstance(transport, expected)


def test_an_unknown_transport_is_named(http_session):
    with pytest.raises(ValueError, match="unknown transport 'carrier-pigeon'"):
        build_transport(
            env("carrier-pigeon"),  # type: ignore[arg-type]
            parts(mwaa_client=None, http_session=http_session, table=None),
        )


def test_airflow_rest_without_base_url_is_a_configuration_error(http_session):
    with pytest.raises(ValueError, match="no base_url"):
        build_transport(
            env(TransportKind.AIRFLOW_REST),
            parts(mwaa_client=None, http_session=http_session, table=None),
        )


def test_transports_are_built_once_per_environment(mwaa_client, http_session):
    transports = TransportCache(parts(mwaa_client, http_session, object()))
    rest_api = env(TransportKind.INVOKE_REST_API)
    cli = env(TransportKind.CLI)

    assert transports(rest_api) is transports(rest_api)
    assert transports(cli) is not transports(rest_api)
    assert isinstance(transports(cli), MwaaCliTransport)
