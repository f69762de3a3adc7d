"""Schedule management through the API, against moto's EventBridge Scheduler."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.http.conftest import (
    SCHEDULE_DLQ_ARN,
    SCHEDULE_GROUP,
    SCHEDULE_TARGET_ARN,
    SCHEDULER_ROLE_ARN,
    ApiClient,
)

NIGHTLY = {
    "name": "nightly-report",
    "route": "nightly",
    "expression": "cron(0 2 * * ? *)",
    "timezone": "Europe/Paris",
    "flexible_window_minutes": 15,
    "conf": {"region": "eu"},
}


def test_a_schedule_is_created_in_the_stacks_group_targeting_the_schedules_function(
    api: ApiClient, scheduler_client: Any
) -> None:
    answer = api.post_json("/v1/schedules", NIGHTLY)

    assert answer.status == 201, answer.text
    created = answer.json
    assert created["group"] == SCHEDULE_GROUP
    assert created["expression"] == "cron(0 2 * * ? *)"
    assert created["timezone"] == "Europe/Paris"
    stored = scheduler_client.get_schedule(Name="nightly-report", GroupName=SCHEDULE_GROUP)
    assert stored["Target"]["Arn"] == SCHEDULE_TARGET_ARN
    assert stored["Target"]["RoleArn"] == SCHEDULER_ROLE_ARN
    assert stored["Target"]["DeadLetterConfig"] == {"Arn": SCHEDULE_DLQ_ARN}
    assert json.loads(stored["Target"]["Input"])["route"] == "nightly"


def test_schedules_are_read_listed_replaced_and_deleted(api: ApiClient) -> None:
    # Given a schedule
    assert api.post_json("/v1/schedules", NIGHTLY).status == 201

    # When it is read and listed
    read = api.request("GET", "/v1/schedules/nightly-report")
    listed = api.request("GET", "/v1/schedules")

    # Then both show it
    assert read.status == 200
    assert read.json["target"]["conf"] == {"region": "eu"}
    assert [item["name"] for item in listed.json["items"]] == ["nightly-report"]

    # When it is replaced (the path names it; the body need not)
    replacement = {**NIGHTLY, "expression": "rate(6 hours)", "timezone": "UTC"}
    del replacement["name"]
    replaced = api.request("PUT", "/v1/schedules/nightly-report", body=json.dumps(replacement))

    # Then the new definition is stored
    assert replaced.status == 200, replaced.text
    assert replaced.json["expression"] == "rate(6 hours)"
    assert api.request("GET", "/v1/schedules/nightly-report").json["timezone"] == "UTC"

    # When it is deleted
    deleted = api.request("DELETE", "/v1/schedules/nightly-report")

    # Then it is gone
    assert deleted.status == 204
    assert deleted.text == ""
    gone = api.request("GET", "/v1/schedules/nightly-report")
    assert gone.status == 404
    assert gone.content_type == "application/problem+json"


def test_creating_a_schedule_twice_is_a_409(api: ApiClient) -> None:
    api.post_json("/v1/schedules", NIGHTLY)

    answer = api.post_json("/v1/schedules", NIGHTLY)

    assert answer.status == 409
    assert answer.json["code"] == "conflict"


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"expression": "cron(0 2 * * *)"}, ["body", "expression"]),
        ({"expression": "rate(1 hours)"}, ["body", "expression"]),
        ({"timezone": "Europe/Pariss"}, ["body", "timezone"]),
        ({"name": "has space"}, ["body", "name"]),
        ({"route": "unknown-route"}, ["body", "route"]),
    ],
)
def test_an_invalid_schedule_is_a_422_naming_the_field(
    api: ApiClient, scheduler_client: Any, change: dict[str, Any], location: list[str]
) -> None:
    answer = api.post_json("/v1/schedules", {**NIGHTLY, **change})

    assert answer.status == 422, answer.text
    assert location in [error["loc"][:2] for error in answer.json["errors"]]
    assert scheduler_client.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []


def test_a_direct_target_needs_a_known_environment(api: ApiClient) -> None:
    direct = {"name": "direct", "expression": "rate(1 day)", "environment": "qa", "dag_id": "x"}

    answer = api.post_json("/v1/schedules", direct)

    assert answer.status == 422
    assert answer.json["errors"][0]["loc"] == ["body", "environment"]


def test_a_replacement_naming_another_schedule_is_a_422(api: ApiClient) -> None:
    api.post_json("/v1/schedules", NIGHTLY)

    answer = api.request(
        "PUT", "/v1/schedules/nightly-report", body=json.dumps({**NIGHTLY, "name": "other"})
    )

    assert answer.status == 422
    assert answer.json["errors"][0]["loc"] == ["body", "name"]


def test_replacing_a_missing_schedule_is_a_404(api: ApiClient) -> None:
    answer = api.request("PUT", "/v1/schedules/missing", body=json.dumps(NIGHTLY | {"name": None}))

    assert answer.status == 404


def test_without_schedule_settings_the_routes_answer_503(make_api_deps: Any) -> None:
    unset = dict.fromkeys(
        ["schedule_group_name", "schedule_target_arn", "scheduler_role_arn", "schedule_dlq_arn"]
    )
    api = ApiClient(make_api_deps(**unset))

    answer = api.request("GET", "/v1/schedules")

    assert answer.status == 503
    assert "SCHEDULE_GROUP_NAME" in answer.json["detail"]
