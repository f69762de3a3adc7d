"""get_settings: a missing or malformed environment variable fails at cold start, by name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dagtrigger.errors import SettingsError
from dagtrigger.settings import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_every_bad_variable_is_named_upper_case_in_one_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a table name that is too short and a size that is not a number
    monkeypatch.setenv("TABLE_NAME", "x")
    monkeypatch.setenv("CONF_MAX_BYTES", "lots")

    # When the settings are read
    with pytest.raises(SettingsError) as raised:
        get_settings()

    # Then both variables are named as they are written in the environment
    assert str(raised.value) == (
        "invalid configuration: TABLE_NAME: String should have at least 3 characters; "
        "CONF_MAX_BYTES: Input should be a valid integer, unable to parse string as an integer"
    )


@pytest.mark.parametrize(
    ("topic", "expected"),
    [("", None), ("arn:aws:sns:eu-west-1:123456789012:dag-failures", "same")],
)
def test_an_empty_run_failure_topic_means_none(
    monkeypatch: pytest.MonkeyPatch, topic: str, expected: str | None
) -> None:
    # Given the template's optional topic parameter, passed on empty or set
    monkeypatch.setenv("TABLE_NAME", "dagtrigger-history")
    monkeypatch.setenv("RUN_FAILURE_TOPIC_ARN", topic)

    # Then an empty one is no topic, and the bus is the default one
    settings = get_settings()
    assert settings.run_failure_topic_arn == (topic if expected == "same" else None)
    assert settings.run_event_bus_name == "default"


def test_a_fifo_topic_or_a_bus_arn_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "dagtrigger-history")
    monkeypatch.setenv("RUN_FAILURE_TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:alerts.fifo")
    monkeypatch.setenv("RUN_EVENT_BUS_NAME", "arn:aws:events:eu-west-1:123456789012:event-bus/x")

    with pytest.raises(SettingsError) as raised:
        get_settings()

    assert "RUN_FAILURE_TOPIC_ARN" in str(raised.value)
    assert "RUN_EVENT_BUS_NAME" in str(raised.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("analytics-prod", ("analytics-prod",)),
        ("sales,finance_2", ("sales", "finance_2")),
    ],
)
def test_the_granted_environments_are_read_from_the_templates_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[str, ...]
) -> None:
    # Given MWAA_ENVIRONMENT_NAMES as the template joins MwaaEnvironmentNames (or unset: empty)
    monkeypatch.setenv("TABLE_NAME", "dagtrigger-history")
    monkeypatch.setenv("MWAA_ENVIRONMENT_NAMES", value)

    # Then each name is one item, and empty means no check
    assert get_settings().mwaa_environment_names == expected


def test_a_granted_environment_name_mwaa_would_refuse_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TABLE_NAME", "dagtrigger-history")
    monkeypatch.setenv("MWAA_ENVIRONMENT_NAMES", "sales,-finance")

    with pytest.raises(SettingsError) as raised:
        get_settings()

    assert "MWAA_ENVIRONMENT_NAMES[1]: String should match pattern" in str(raised.value)
