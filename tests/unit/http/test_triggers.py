"""Reading history (one trigger, lists, one object) and replaying failed triggers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dagtrigger.ledger import NewTrigger, SourceType, TriggerStatus
from tests.unit.http.conftest import CALLER_ARN, ApiClient

MISSING_ID = "t-" + "0" * 32


def start_run(api: ApiClient, dag_id: str, **document: Any) -> dict[str, Any]:
    answer = api.post_json(f"/v1/dags/{dag_id}/runs", {"conf": {}, **document})
    assert answer.status == 202, answer.text
    return dict(answer.json)


def s3_trigger(key: str, *, suffix: str, conf: Any = None) -> NewTrigger:
    """A trigger as the s3 path builds it for ``s3://landing/<key>`` (version ``suffix``)."""
    return NewTrigger(
        trigger_id=f"t-{suffix:0>32}",
        source_type=SourceType.S3,
        source_key=f"s3://landing/{key}",
        source_identity=f"s3://landing/{key}#version={suffix}",
        source_ref={"bucket": "landing", "key": key},
        route="sales-csv",
        environment="prod",
        dag_id="ingest_sales",
        dag_run_id=f"dagtrigger__s3__{suffix}",
        conf=conf if conf is not None else {"key": key},
    )


def record_s3_trigger(
    api: ApiClient, key: str, *, status: TriggerStatus, suffix: str, conf: Any = None
) -> str:
    """A trigger as the s3 path records it: REJECTED/IGNORED directly, or claimed and failed."""
    ledger = api.deps.ledger
    new = s3_trigger(key, suffix=suffix, conf=conf)
    if status is TriggerStatus.REJECTED:
        ledger.record_final(new, status=status, code="dag_not_found", message="no such DAG")
    else:
        ledger.claim(new)
        if status is TriggerStatus.TRIGGER_FAILED:
            ledger.mark_trigger_failed(new.trigger_id, message="503 from MWAA", attempts=3)
    return new.trigger_id


# -------------------------------------------------------------------------------- one trigger


def test_a_trigger_is_read_by_id(api: ApiClient) -> None:
    started = start_run(api, "ingest_sales", note="hello")

    answer = api.request("GET", f"/v1/triggers/{started['trigger_id']}")

    assert answer.status == 200
    record = answer.json
    assert record["trigger_id"] == started["trigger_id"]
    assert record["status"] == "TRIGGERED"
    assert record["dag_run_id"] == started["dag_run_id"]
    assert record["transitions"][-1]["status"] == "TRIGGERED"
    assert "request_fingerprint" not in record


def test_an_unknown_trigger_is_a_404_problem(api: ApiClient) -> None:
    answer = api.request("GET", f"/v1/triggers/{MISSING_ID}")

    assert answer.status == 404
    assert answer.content_type == "application/problem+json"
    assert answer.json["code"] == "not_found"
    assert answer.json["instance"] == f"/v1/triggers/{MISSING_ID}"


def test_a_malformed_trigger_id_is_a_422(api: ApiClient) -> None:
    answer = api.request("GET", "/v1/triggers/not-an-id")

    assert answer.status == 422
    assert answer.json["errors"][0]["loc"] == ["path", "trigger_id"]


# ------------------------------------------------------------------------------------ lists


def all_pages(api: ApiClient, query: dict[str, str]) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        answer = api.request(
            "GET", "/v1/triggers", query={**query, **({"cursor": cursor} if cursor else {})}
        )
        assert answer.status == 200, answer.text
        pages.append([item["trigger_id"] for item in answer.json["items"]])
        cursor = answer.json["next_cursor"]
        if cursor is None:
            return pages


def flat(pages: list[list[str]]) -> list[str]:
    return [trigger for page in pages for trigger in page]


def test_triggers_of_a_dag_are_listed_newest_first_across_pages(api: ApiClient) -> None:
    started = [start_run(api, "ingest_sales")["trigger_id"] for _ in range(5)]
    start_run(api, "other_dag")

    pages = all_pages(api, {"dag_id": "ingest_sales", "limit": "2"})

    assert [len(page) for page in pages if page] == [2, 2, 1]
    assert [trigger for page in pages for trigger in page] == list(reversed(started))


def test_a_dag_on_another_environment_is_listed_only_with_that_environment(
    api: ApiClient,
) -> None:
    on_staging = start_run(api, "ingest_sales", environment="staging")["trigger_id"]
    on_prod = start_run(api, "ingest_sales")["trigger_id"]

    staging = all_pages(api, {"dag_id": "ingest_sales", "environment": "staging"})
    default = all_pages(api, {"dag_id": "ingest_sales"})

    assert flat(staging) == [on_staging]
    assert flat(default) == [on_prod]


def test_triggers_are_listed_by_status(api: ApiClient, transport: Any, answers: Any) -> None:
    transport.answers.append(answers.dag_not_found)
    rejected = api.post_json("/v1/dags/missing/runs", {"conf": {}}).json["trigger_id"]
    start_run(api, "ingest_sales")

    pages = all_pages(api, {"status": "REJECTED"})

    assert flat(pages) == [rejected]


def test_without_filters_the_last_days_are_walked_back(api: ApiClient) -> None:
    first = start_run(api, "a_dag")["trigger_id"]
    second = start_run(api, "b_dag")["trigger_id"]

    pages = all_pages(api, {"limit": "1"})

    assert flat(pages) == [second, first]


def test_a_window_before_any_trigger_lists_nothing(api: ApiClient) -> None:
    start_run(api, "a_dag")
    until = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")

    answer = api.request("GET", "/v1/triggers", query={"until": until})

    assert answer.status == 200
    assert answer.json == {"items": [], "next_cursor": None}


def test_a_source_filter_reads_the_source_index(api: ApiClient) -> None:
    started = start_run(api, "a_dag")
    caller = api.request("GET", f"/v1/triggers/{started['trigger_id']}").json["source_key"]

    pages = all_pages(api, {"source": caller})

    assert flat(pages) == [started["trigger_id"]]


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b'{"v": 1, "index": "by_status"}').decode().rstrip("="),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
    ],
)
def test_a_cursor_this_query_did_not_issue_is_a_400(api: ApiClient, cursor: str) -> None:
    answer = api.request("GET", "/v1/triggers", query={"dag_id": "a_dag", "cursor": cursor})

    assert answer.status == 400
    assert answer.json["code"] == "bad_request"
    assert "cursor" in answer.json["detail"]


def test_a_cursor_from_another_dag_is_a_400(api: ApiClient) -> None:
    for _ in range(3):
        start_run(api, "a_dag")
    cursor = api.request("GET", "/v1/triggers", query={"dag_id": "a_dag", "limit": "1"}).json[
        "next_cursor"
    ]
    assert cursor is not None

    answer = api.request("GET", "/v1/triggers", query={"dag_id": "b_dag", "cursor": cursor})

    assert answer.status == 400


def test_since_after_until_is_a_400(api: ApiClient) -> None:
    answer = api.request(
        "GET",
        "/v1/triggers",
        query={"since": "2026-11-21T10:00:00Z", "until": "2026-11-20T10:00:00Z"},
    )

    assert answer.status == 400
    assert "since" in answer.json["detail"]


@pytest.mark.parametrize(
    "query",
    [{"limit": "0"}, {"limit": "201"}, {"status": "DONE"}, {"since": "yesterday"}],
)
def test_bad_list_parameters_are_a_422(api: ApiClient, query: dict[str, str]) -> None:
    answer = api.request("GET", "/v1/triggers", query=query)

    assert answer.status == 422
    assert answer.json["errors"][0]["loc"][0] == "query"


# -------------------------------------------------------------------------- object history


def test_the_history_of_one_object_lists_its_triggers(api: ApiClient) -> None:
    key = "sales/c++ notes%20v2.csv"
    older = record_s3_trigger(api, key, status=TriggerStatus.REJECTED, suffix="1")
    newer = record_s3_trigger(api, key, status=TriggerStatus.TRIGGER_FAILED, suffix="2")
    record_s3_trigger(api, "sales/other.csv", status=TriggerStatus.REJECTED, suffix="3")

    answer = api.request("GET", "/v1/objects", query={"bucket": "landing", "key": key})

    assert answer.status == 200
    assert [item["trigger_id"] for item in answer.json["items"]] == [newer, older]
    assert answer.json["items"][1]["reject_code"] == "dag_not_found"


def test_object_history_needs_a_valid_bucket_and_a_key(api: ApiClient) -> None:
    answer = api.request("GET", "/v1/objects", query={"bucket": "Not_A_Bucket"})

    assert answer.status == 422
    locations = [error["loc"] for error in answer.json["errors"]]
    assert ["query", "bucket"] in locations
    assert ["query", "key"] in locations


# ---------------------------------------------------------------------------------- replays


@pytest.mark.parametrize("status", [TriggerStatus.TRIGGER_FAILED, TriggerStatus.REJECTED])
def test_a_failed_trigger_is_replayed_in_place_with_its_recorded_run_id(
    api: ApiClient, transport: Any, status: TriggerStatus
) -> None:
    # Given an S3 trigger that failed
    key = "sales/2026-11-21.csv"
    original = record_s3_trigger(api, key, status=status, suffix="9", conf={"key": key, "n": 1})

    # When it is replayed
    answer = api.request("POST", f"/v1/triggers/{original}/replay")

    # Then the same trigger ran with its recorded DAG, environment, conf and run id
    assert answer.status == 202, answer.text
    assert answer.json["trigger_id"] == original
    assert answer.json["dag_run_id"] == "dagtrigger__s3__9"
    assert answer.json["status"] == "TRIGGERED"
    (call,) = transport.calls
    assert (call.dag_id, call.environment.alias, call.dag_run_id, call.conf) == (
        "ingest_sales",
        "prod",
        "dagtrigger__s3__9",
        {"key": key, "n": 1},
    )
    # And the record counts the replay and says who asked; the object has one record still
    record = api.request("GET", f"/v1/triggers/{original}").json
    assert (record["replays"], record["replayed_by"]) == (1, CALLER_ARN)
    assert [step["status"] for step in record["transitions"]][-2:] == ["RECEIVED", "TRIGGERED"]
    history = api.request("GET", "/v1/objects", query={"bucket": "landing", "key": key}).json
    assert [item["trigger_id"] for item in history["items"]] == [original]


def test_a_replay_of_a_run_airflow_already_has_starts_nothing_new(
    api: ApiClient, transport: Any, answers: Any
) -> None:
    # Given a trigger recorded as failed although Airflow had accepted its run (answer lost)
    original = record_s3_trigger(api, "a.csv", status=TriggerStatus.TRIGGER_FAILED, suffix="7")
    transport.answers.append(answers.already_exists)

    # When it is replayed
    answer = api.request("POST", f"/v1/triggers/{original}/replay")

    # Then Airflow was asked for the recorded run id only, and the answer says it existed
    assert answer.status == 202, answer.text
    assert answer.json["already_existed"] is True
    assert [call.dag_run_id for call in transport.calls] == ["dagtrigger__s3__7"]


def test_a_second_replay_is_skipped_with_the_status_the_trigger_is_in(
    api: ApiClient, transport: Any
) -> None:
    # Given a failed trigger, replayed once
    original = record_s3_trigger(api, "a.csv", status=TriggerStatus.TRIGGER_FAILED, suffix="5")
    assert api.request("POST", f"/v1/triggers/{original}/replay").status == 202

    # When it is replayed again
    answer = api.request("POST", f"/v1/triggers/{original}/replay")

    # Then nothing starts: a 409 that says it was skipped and why
    assert answer.status == 409
    assert answer.json["code"] == "conflict"
    assert answer.json["trigger_status"] == "TRIGGERED"
    assert answer.json["trigger_id"] == original
    assert answer.json["detail"].startswith(f"skipped: trigger '{original}' is already TRIGGERED")
    assert len(transport.calls) == 1


def test_a_replay_retried_with_its_key_gets_the_same_answer_and_starts_nothing(
    api: ApiClient, transport: Any
) -> None:
    original = record_s3_trigger(api, "a.csv", status=TriggerStatus.REJECTED, suffix="5")
    key = {"Idempotency-Key": f"replay-{original}-0"}

    first = api.request("POST", f"/v1/triggers/{original}/replay", headers=key)
    second = api.request("POST", f"/v1/triggers/{original}/replay", headers=key)
    other_key = api.request(
        "POST", f"/v1/triggers/{original}/replay", headers={"Idempotency-Key": "another"}
    )

    assert first.status == second.status == 202
    assert second.json == first.json
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert other_key.status == 409
    assert len(transport.calls) == 1


def test_a_replay_that_failed_again_is_replayed_again_with_the_same_key(
    api: ApiClient, transport: Any, answers: Any
) -> None:
    # Given a replay made while Airflow was still down
    original = record_s3_trigger(api, "a.csv", status=TriggerStatus.TRIGGER_FAILED, suffix="3")
    key = {"Idempotency-Key": f"replay-{original}-0"}
    transport.answers.extend([answers.server_error] * 20)
    failed = api.request("POST", f"/v1/triggers/{original}/replay", headers=key)
    assert failed.status == 503
    assert api.request("GET", f"/v1/triggers/{original}").json["status"] == "TRIGGER_FAILED"

    # When Airflow is back and the client retries with the same key
    transport.answers.clear()
    retried = api.request("POST", f"/v1/triggers/{original}/replay", headers=key)

    # Then it is replayed again, always with the one recorded run id
    assert retried.status == 202, retried.text
    assert {call.dag_run_id for call in transport.calls} == {"dagtrigger__s3__3"}
    assert api.request("GET", f"/v1/triggers/{original}").json["replays"] == 2


def test_a_replay_loses_to_a_redelivery_that_took_the_trigger_over_first(
    api: ApiClient, transport: Any
) -> None:
    # Given a failed S3 trigger whose event a redrive has just delivered again (it owns it now)
    new = s3_trigger("a.csv", suffix="4")
    record_s3_trigger(api, "a.csv", status=TriggerStatus.TRIGGER_FAILED, suffix="4")
    assert api.deps.ledger.claim(new).owned

    # When an operator replays it meanwhile
    answer = api.request("POST", f"/v1/triggers/{new.trigger_id}/replay")

    # Then the replay starts nothing and says the trigger is being started by someone else
    assert answer.status == 409
    assert answer.json["trigger_status"] == "RECEIVED"
    assert "right now" in answer.json["detail"]
    assert transport.calls == []


def test_the_original_event_delivered_after_a_replay_starts_nothing(
    api: ApiClient, transport: Any
) -> None:
    # Given a failed S3 trigger, replayed
    new = s3_trigger("a.csv", suffix="6")
    record_s3_trigger(api, "a.csv", status=TriggerStatus.TRIGGER_FAILED, suffix="6")
    assert api.request("POST", f"/v1/triggers/{new.trigger_id}/replay").status == 202

    # When the original event comes back from the dead-letter queue (a redrive)
    claim = api.deps.ledger.claim(new)

    # Then it is a duplicate delivery: one run in all
    assert not claim.owned
    assert len(transport.calls) == 1


def test_a_trigger_that_succeeded_cannot_be_replayed(api: ApiClient, transport: Any) -> None:
    started = start_run(api, "ingest_sales")

    answer = api.request("POST", f"/v1/triggers/{started['trigger_id']}/replay")

    assert answer.status == 409
    assert answer.json["code"] == "conflict"
    assert "TRIGGERED" in answer.json["detail"]
    assert len(transport.calls) == 1


def test_a_rejection_without_a_dag_cannot_be_replayed(api: ApiClient) -> None:
    new = NewTrigger(
        trigger_id="t-" + "a" * 32,
        source_type=SourceType.S3,
        source_key="s3://landing/unrouted.bin",
        source_identity="s3://landing/unrouted.bin#version=1",
        source_ref={},
        route=None,
        environment=None,
        dag_id=None,
        dag_run_id=None,
        conf=None,
    )
    api.deps.ledger.record_final(
        new, status=TriggerStatus.REJECTED, code="malformed", message="not an S3 event"
    )

    answer = api.request("POST", f"/v1/triggers/{new.trigger_id}/replay")

    assert answer.status == 409
    assert "nothing to replay" in answer.json["detail"]


def test_replaying_an_unknown_trigger_is_a_404(api: ApiClient) -> None:
    answer = api.request("POST", f"/v1/triggers/{MISSING_ID}/replay")

    assert answer.status == 404


def test_records_are_valid_json_documents(api: ApiClient) -> None:
    started = start_run(api, "ingest_sales")

    text = api.request("GET", f"/v1/triggers/{started['trigger_id']}").text

    assert json.loads(text)["conf"] == {}


def test_a_time_range_wider_than_the_day_index_walks_is_a_400_that_says_the_limit(
    api: ApiClient,
) -> None:
    # Given a list of everything since 2000 (without a DAG, source or status to narrow it)
    answer = api.request(
        "GET",
        "/v1/triggers",
        query={"since": "2000-01-01T00:00:00Z", "until": "2026-11-21T00:00:00Z"},
    )

    # Then it is refused at once, naming the limit, instead of walking ten thousand days
    assert answer.status == 400
    assert answer.json["code"] == "bad_request"
    assert "at most 93 days" in answer.json["detail"]


def test_a_page_larger_than_the_limit_is_refused(api: ApiClient) -> None:
    answer = api.request("GET", "/v1/triggers", query={"limit": "201"})

    assert answer.status == 422
    assert answer.json["errors"][0]["loc"] == ["query", "limit"]
