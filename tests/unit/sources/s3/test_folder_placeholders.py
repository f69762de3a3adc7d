"""Keys ending in '/': the console's empty folder placeholders start nothing, data does."""

from __future__ import annotations

from typing import Any

import pytest

from dagtrigger.dependencies import Dependencies
from dagtrigger.sources.s3.service import handle_s3_message
from tests.unit.conftest import build_routes_yaml, s3_route
from tests.unit.sources.s3.test_service import eventbridge_body


@pytest.fixture
def routes_yaml() -> str:
    """One route that takes every object of the landing bucket."""
    return build_routes_yaml(s3_route("everything"))


def test_an_empty_key_ending_in_a_slash_is_a_folder_placeholder_that_starts_nothing(
    deps: Dependencies, transport: Any
) -> None:
    # When the S3 console's "Create folder" makes the empty object "sales/"
    handle_s3_message(eventbridge_body("sales/", size=0), deps)

    # Then no run starts and the object is recorded as ignored
    (record,) = deps.ledger.query_by_source("s3://landing/sales/").items
    assert transport.calls == []
    assert record["status"] == "IGNORED"


def test_an_object_with_content_whose_key_ends_in_a_slash_is_matched_like_any_other(
    deps: Dependencies, transport: Any
) -> None:
    # When an object named "sales/" holds 12 bytes of data
    handle_s3_message(eventbridge_body("sales/", size=12), deps)

    # Then it starts a run of the route that matches it
    (record,) = deps.ledger.query_by_source("s3://landing/sales/").items
    assert [call.conf["key"] for call in transport.calls] == ["sales/"]
    assert record["status"] == "TRIGGERED"
