"""Asset events (Airflow 3) and dataset events (Airflow 2) over an in-memory Airflow that
keeps assets and events and answers like Airflow's REST API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from dagtrigger.errors import RejectedError, TransientTriggerError
from dagtrigger.transports.airflow_api import AirflowApiTransport, ApiReply
from dagtrigger.transports.asset_events import (
    PAGE_LIMIT,
    AssetEventRequest,
    AssetEvents,
)
from dagtrigger.transports.base import EnvironmentRef, TransportKind

ENVIRONMENT = EnvironmentRef(alias="prod", name="prod", transport=TransportKind.AIRFLOW_REST)
ORDERS = "s3://landing/orders/"


class AssetAirflow(AirflowApiTransport):
    """Assets by id and their events, behind Airflow 3's or Airflow 2's endpoints; like Airflow
    with the Amazon provider, it stores an S3 URI without its trailing slash."""

    max_path_length = None

    def __init__(self, major: int, uris: list[str]) -> None:
        super().__init__(ENVIRONMENT)
        self.major = major
        self.assets = {index + 1: uri.rstrip("/") for index, uri in enumerate(uris)}
        self.events: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []
        self.fail_next_post: ApiReply | None = None

    def airflow_major(self) -> int:
        return self.major

    def call(
        self, method: str, path: str, *, body: Mapping[str, Any] | None, query: Any
    ) -> ApiReply:
        self.calls.append((method, path))
        noun = "assets" if self.major >= 3 else "datasets"
        if (method, path) == ("GET", f"/{noun}"):
            pattern = query["uri_pattern"]
            matching = [
                {"id": asset_id, "uri": uri, "name": uri + "/"}
                for asset_id, uri in self.assets.items()
                if pattern in uri
            ]
            start = query.get("offset", 0)
            return ApiReply(200, {noun: matching[start : start + query["limit"]]})
        if (method, path) == ("POST", f"/{noun}/events"):
            assert body is not None
            if self.fail_next_post is not None:
                reply, self.fail_next_post = self.fail_next_post, None
                return reply
            return self._create(body)
        if (method, path) == ("GET", f"/{noun}/events"):
            key = "asset_id" if self.major >= 3 else "dataset_id"
            assert query["order_by"] == "-timestamp"
            listed = [event for event in reversed(self.events) if event[key] == query[key]]
            return ApiReply(200, {f"{noun[:-1]}_events": listed[: query["limit"]]})
        return ApiReply(404, {"detail": f"no route {method} {path}"})

    def _create(self, body: Mapping[str, Any]) -> ApiReply:
        if self.major >= 3:
            asset_id = body["asset_id"]
            if asset_id not in self.assets:
                return ApiReply(404, {"detail": f"Asset with ID: `{asset_id}` was not found"})
        else:
            found = [key for key, uri in self.assets.items() if uri == body["dataset_uri"]]
            if not found:
                return ApiReply(404, {"title": "Dataset not found"})
            asset_id = found[0]
        key = "asset_id" if self.major >= 3 else "dataset_id"
        event = {
            "id": len(self.events) + 1,
            key: asset_id,
            "extra": {**body["extra"], "from_rest_api": True},
            "timestamp": f"2026-12-02T10:00:0{len(self.events)}Z",
            "created_dagruns": [],
        }
        self.events.append(event)
        return ApiReply(200, event)


def request(trigger_id: str = "t-1", uri: str = ORDERS) -> AssetEventRequest:
    return AssetEventRequest(
        environment=ENVIRONMENT, uri=uri, extra={"key": "orders/1.csv"}, trigger_id=trigger_id
    )


@pytest.mark.parametrize("major", [3, 2])
def test_an_event_is_posted_with_our_trigger_id_in_its_extra(major: int) -> None:
    # Given an Airflow whose DAGs name the orders asset (stored without its trailing slash), and
    # one whose URI also contains it
    airflow = AssetAirflow(major, [ORDERS + "archive/", ORDERS])

    # When an event is posted for the orders asset
    event = AssetEvents(airflow).post(request())

    # Then Airflow recorded it for that exact asset, with the object's extra and our trigger id
    assert (event.event_id, event.asset_id, event.already_existed) == (1, 2, False)
    assert airflow.events[0]["asset_id" if major >= 3 else "dataset_id"] == 2
    assert airflow.events[0]["extra"] == {
        "key": "orders/1.csv",
        "dagtrigger": {"trigger_id": "t-1"},
        "from_rest_api": True,
    }


@pytest.mark.parametrize("major", [3, 2])
def test_an_asset_is_looked_up_once_for_a_burst_of_events(major: int) -> None:
    # Given Airflow, which takes asset ids (3) or the URI as it stored it (2)
    airflow = AssetAirflow(major, [ORDERS])
    events = AssetEvents(airflow)

    # When ten events are posted for the same asset
    for number in range(10):
        events.post(request(f"t-{number}"))

    # Then one lookup served them all: 11 calls for 10 events
    noun = "assets" if major >= 3 else "datasets"
    assert airflow.calls.count(("GET", f"/{noun}")) == 1
    assert len(airflow.calls) == 11


@pytest.mark.parametrize("major", [3, 2])
def test_an_asset_airflow_does_not_know_is_the_events_own_fault(major: int) -> None:
    airflow = AssetAirflow(major, [ORDERS])
    with pytest.raises(RejectedError) as refused:
        AssetEvents(airflow).post(request(uri="s3://landing/unknown/"))
    assert refused.value.code == "asset_not_found"
    assert "s3://landing/unknown/" in str(refused.value)
    assert "names it" in str(refused.value)


def test_an_asset_deleted_since_its_lookup_is_looked_up_again() -> None:
    # Given an asset id cached by an earlier event, then the asset gone from Airflow
    airflow = AssetAirflow(3, [ORDERS])
    events = AssetEvents(airflow)
    events.post(request("t-1"))
    del airflow.assets[1]

    # When the next event is posted, it is refused, and the stale id is forgotten
    with pytest.raises(RejectedError):
        events.post(request("t-2"))
    airflow.assets[7] = ORDERS  # the DAG is back, with a new asset id
    event = events.post(request("t-3"))

    # Then the new id was looked up
    assert event.asset_id == 7


@pytest.mark.parametrize("status", [500, 503, 429])
def test_airflow_failing_is_a_retry_not_a_rejection(status: int) -> None:
    airflow = AssetAirflow(3, [ORDERS])
    airflow.fail_next_post = ApiReply(status, {"detail": "database is locked"})
    with pytest.raises(TransientTriggerError):
        AssetEvents(airflow).post(request())
    assert airflow.events == []


@pytest.mark.parametrize("major", [3, 2])
def test_a_takeover_finds_the_event_airflow_already_has(major: int) -> None:
    # Given our event posted (the Lambda then died before recording it), among others
    airflow = AssetAirflow(major, [ORDERS])
    events = AssetEvents(airflow)
    events.post(request("t-other"))
    posted = events.post(request("t-crashed"))
    events.post(request("t-later"))

    # When whoever takes the claim over looks for it before posting again
    found = AssetEvents(airflow).find(ORDERS, "t-crashed")
    missing = AssetEvents(airflow).find(ORDERS, "t-never-posted")

    # Then the event is found with its id, and one never posted is not
    assert found is not None
    assert (found.event_id, found.already_existed) == (posted.event_id, True)
    assert missing is None


def test_the_search_reads_one_page_of_the_newest_events() -> None:
    # Given more events for the asset than one page
    airflow = AssetAirflow(3, [ORDERS])
    events = AssetEvents(airflow)
    events.post(request("t-oldest"))
    for number in range(PAGE_LIMIT):
        events.post(request(f"t-{number}"))

    # When the oldest, beyond the newest page, is looked for
    airflow.calls.clear()
    found = events.find(ORDERS, "t-oldest")

    # Then it is reported absent after one list call (the documented limit)
    assert found is None
    assert airflow.calls == [("GET", "/assets/events")]
