"""POST /v1/dags/{dag_id}/runs: validation, idempotency keys, Airflow's answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.unit.http.conftest import OTHER_CALLER_ARN, ApiClient

RUNS = "/v1/dags/ingest_sales/runs"


def test_a_run_is_started_and_answered_202_with_a_link_to_its_record(
    api: ApiClient, transport: Any
) -> None:
    # Given a valid request without an idempotency key
    # When it is sent
    answer = api.post_json(RUNS, {"conf": {"day": "2026-11-21"}, "note": "backfill"})

    # Then Airflow got one trigger with the conf, on the default (first) environment
    assert answer.status == 202, answer.text
    body = answer.json
    assert body["status"] == "TRIGGERED"
    assert body["links"] == {"self": f"/v1/triggers/{body['trigger_id']}"}
    assert body["environment"] == "prod"
    assert len(transport.calls) == 1
    call = transport.calls[0]
    assert call.dag_id == "ingest_sales"
    assert call.conf == {"day": "2026-11-21"}
    assert call.dag_run_id == body["dag_run_id"]
    assert call.environment.name == "analytics-prod"
    # And the record keeps the note and who asked
    record = api.request("GET", body["links"]["self"]).json
    assert record["note"] == "backfill"
    assert record["source_type"] == "api"
    assert record["source_ref"]["caller"].endswith(":user/data-engineer")


def test_without_a_key_every_request_is_a_new_trigger(api: ApiClient, transport: Any) -> None:
    first = api.post_json(RUNS, {"conf": {}})
    second = api.post_json(RUNS, {"conf": {}})

    assert first.status == second.status == 202
    assert first.json["trigger_id"] != second.json["trigger_id"]
    assert first.json["dag_run_id"] != second.json["dag_run_id"]
    assert len(transport.calls) == 2


def test_an_environment_and_a_logical_date_are_passed_to_airflow(
    api: ApiClient, transport: Any
) -> None:
    answer = api.post_json(
        RUNS, {"conf": {}, "environment": "staging", "logical_date": "2026-11-21T02:00:00+01:00"}
    )

    assert answer.status == 202, answer.text
    call = transport.calls[0]
    assert call.environment.alias == "staging"
    assert call.logical_date == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("path", "document", "location"),
    [
        ("/v1/dags/-rm/runs", {"conf": {}}, ["path", "dag_id"]),
        ("/v1/dags/caf%C3%A9/runs", {"conf": {}}, ["path", "dag_id"]),
        (RUNS, {"conf": ["not", "an", "object"]}, ["body", "conf"]),
        (RUNS, {"conf": "text"}, ["body", "conf"]),
        (RUNS, {}, ["body", "conf"]),
        (RUNS, {"conf": {}, "unexpected": 1}, ["body", "unexpected"]),
        (RUNS, {"conf": {}, "logical_date": "2026-11-21T02:00:00"}, ["body", "logical_date"]),
        (RUNS, {"conf": {}, "environment": "Prod!"}, ["body", "environment"]),
    ],
)
def test_invalid_input_is_a_422_naming_where_it_is(
    api: ApiClient, transport: Any, path: str, document: Any, location: list[str]
) -> None:
    answer = api.post_json(path, document)

    assert answer.status == 422, answer.text
    assert answer.content_type == "application/problem+json"
    problem = answer.json
    assert problem["code"] == "validation_error"
    assert location in [error["loc"] for error in problem["errors"]]
    assert transport.calls == []


def test_a_missing_body_is_a_422_on_the_body(api: ApiClient) -> None:
    answer = api.request("POST", RUNS)

    assert answer.status == 422
    assert ["body"] in [error["loc"] for error in answer.json["errors"]]


def test_a_body_that_is_not_json_is_a_400(api: ApiClient) -> None:
    answer = api.request("POST", RUNS, body="{conf:", headers={"content-type": "application/json"})

    assert answer.status == 400
    assert answer.json["code"] == "bad_request"


def test_an_unknown_environment_is_a_422_listing_the_known_ones(
    api: ApiClient, transport: Any
) -> None:
    answer = api.post_json(RUNS, {"conf": {}, "environment": "qa"})

    assert answer.status == 422
    assert answer.json["errors"][0]["loc"] == ["body", "environment"]
    assert "prod, staging" in answer.json["detail"]
    assert transport.calls == []


def test_a_conf_over_the_size_limit_is_a_413(api: ApiClient, transport: Any) -> None:
    # Given a conf one byte over the 32 KiB default: {"blob":"xxx..."} is 11 bytes plus the xs
    limit = api.deps.settings.conf_max_bytes
    oversized = {"blob": "x" * (limit - 11 + 1)}

    answer = api.post_json(RUNS, {"conf": oversized})

    assert answer.status == 413
    assert answer.json["code"] == "payload_too_large"
    assert f"limit of {limit} bytes" in answer.json["detail"]
    assert transport.calls == []


def test_a_conf_exactly_at_the_size_limit_is_accepted(api: ApiClient) -> None:
    limit = api.deps.settings.conf_max_bytes
    answer = api.post_json(RUNS, {"conf": {"blob": "x" * (limit - 11)}})

    assert answer.status == 202, answer.text


# ------------------------------------------------------------------------------ idempotency


def test_the_same_key_and_body_get_the_same_answer_and_start_one_run(
    api: ApiClient, transport: Any
) -> None:
    # Given a request sent with an idempotency key
    request = {"conf": {"day": "2026-11-21"}}
    key = {"Idempotency-Key": "nightly-2026-11-21"}
    first = api.post_json(RUNS, request, headers=key)

    # When it is sent again
    second = api.post_json(RUNS, request, headers=key)

    # Then both answers name the same trigger and run, and Airflow was called once
    assert first.status == second.status == 202
    assert second.json == first.json
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(transport.calls) == 1
    record = api.request("GET", first.json["links"]["self"]).json
    assert record["deliveries"] == 2


def test_the_same_key_with_a_different_body_is_refused(api: ApiClient, transport: Any) -> None:
    key = {"Idempotency-Key": "nightly-2026-11-21"}
    api.post_json(RUNS, {"conf": {"day": "2026-11-21"}}, headers=key)

    answer = api.post_json(RUNS, {"conf": {"day": "2026-11-22"}}, headers=key)

    assert answer.status == 422
    assert answer.json["code"] == "validation_error"
    assert "idempotency key reused with a different request" in answer.json["detail"]
    assert len(transport.calls) == 1


def test_the_same_key_for_another_dag_is_refused(api: ApiClient, transport: Any) -> None:
    key = {"Idempotency-Key": "k-1"}
    api.post_json(RUNS, {"conf": {}}, headers=key)

    answer = api.post_json("/v1/dags/other_dag/runs", {"conf": {}}, headers=key)

    assert answer.status == 422
    assert len(transport.calls) == 1


def test_two_callers_with_the_same_key_get_two_triggers(api: ApiClient, transport: Any) -> None:
    key = {"Idempotency-Key": "shared-key"}
    mine = api.post_json(RUNS, {"conf": {}}, headers=key)
    theirs = api.post_json(RUNS, {"conf": {}}, headers=key, caller_arn=OTHER_CALLER_ARN)

    assert mine.status == theirs.status == 202
    assert mine.json["trigger_id"] != theirs.json["trigger_id"]
    assert len(transport.calls) == 2


@pytest.mark.parametrize("key", ["has space", "x" * 256, "tab\tkey", "ключ"])
def test_a_malformed_idempotency_key_is_a_422(api: ApiClient, key: str) -> None:
    answer = api.post_json(RUNS, {"conf": {}}, headers={"Idempotency-Key": key})

    assert answer.status == 422
    assert ["header", "Idempotency-Key"] in [error["loc"] for error in answer.json["errors"]]


# ------------------------------------------------------------------------- Airflow answers


def test_an_unknown_dag_is_a_404_with_airflows_message(
    api: ApiClient, transport: Any, answers: Any
) -> None:
    transport.answers.append(answers.dag_not_found)

    answer = api.post_json(RUNS, {"conf": {}}, headers={"Idempotency-Key": "k-404"})

    assert answer.status == 404
    assert answer.json["code"] == "not_found"
    assert answer.json["detail"] == "The Dag with ID: `ingest_sales` was not found"
    # And a retry with the key answers the same, from the record, without calling Airflow
    again = api.post_json(RUNS, {"conf": {}}, headers={"Idempotency-Key": "k-404"})
    assert again.status == 404
    assert again.json["trigger_id"] == answer.json["trigger_id"]
    assert len(transport.calls) == 1


def test_airflow_down_is_a_503_with_retry_after_and_a_retry_with_the_key_recovers(
    api: ApiClient, transport: Any, answers: Any
) -> None:
    # Given Airflow answering 503 for longer than the trigger budget
    transport.answers.extend([answers.server_error] * 20)
    key = {"Idempotency-Key": "k-503"}

    # When the run is requested
    answer = api.post_json(RUNS, {"conf": {"n": 1}}, headers=key)

    # Then the caller is told to come back, and the record says TRIGGER_FAILED
    assert answer.status == 503
    assert answer.json["code"] == "unavailable"
    assert answer.headers["Retry-After"] == "7"
    failed_calls = len(transport.calls)
    # When Airflow is back and the client retries with the same key
    transport.answers.clear()
    retried = api.post_json(RUNS, {"conf": {"n": 1}}, headers=key)

    # Then the same trigger is triggered, with the same DAG run id as the failed attempts
    assert retried.status == 202, retried.text
    assert len(transport.calls) == failed_calls + 1
    assert transport.calls[-1].dag_run_id == transport.calls[0].dag_run_id
    assert retried.json["dag_run_id"] == transport.calls[0].dag_run_id


def test_a_run_airflow_already_has_is_accepted(
    api: ApiClient, transport: Any, answers: Any
) -> None:
    transport.answers.append(answers.already_exists)

    answer = api.post_json(RUNS, {"conf": {}})

    assert answer.status == 202
    assert answer.json["status"] == "TRIGGERED"


def test_a_conf_holding_nan_is_a_422(api: ApiClient, transport: Any) -> None:
    # Python's JSON parser reads NaN; JSON and Airflow do not
    answer = api.request("POST", RUNS, body='{"conf": {"ratio": NaN}}')

    assert answer.status == 422
    assert answer.json["errors"][0]["loc"] == ["body", "conf"]
    assert transport.calls == []


@pytest.mark.parametrize(
    "body",
    [
        '{"conf": {"x": "\\ud800"}}',
        '{"conf": {"\\udc00": 1}}',
        '{"conf": {}, "note": "half a pair: \\ud83d"}',
    ],
)
def test_json_escaping_a_lone_surrogate_is_a_400(api: ApiClient, transport: Any, body: str) -> None:
    # Given a body whose JSON escapes text that is not Unicode (half of a surrogate pair)
    answer = api.request("POST", RUNS, body=body)

    # Then it is refused as malformed, and nothing is started or recorded
    assert answer.status == 400, answer.text
    assert answer.json["code"] == "bad_request"
    assert "surrogate" in answer.json["detail"]
    assert transport.calls == []
