"""Asset events (Airflow 3) and dataset events (Airflow 2) over an in-memory Airflow that
keeps assets and events and answers like Airflow's REST API (``AssetAirflow``)."""

from __future__ import annotations

import pytest

from dagtrigger.errors import RejectedError, TransientTriggerError
from dagtrigger.transports.airflow_api import ApiReply
from dagtrigger.transports.asset_events import (
    PAGE_LIMIT,
    AssetEventRequest,
    AssetEvents,
)
from tests.unit.conftest import ASSET_ENVIRONMENT as ENVIRONMENT
from tests.unit.conftest import AssetAirflow

ORDERS = "s3://landing/orders/"


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
