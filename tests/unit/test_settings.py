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
