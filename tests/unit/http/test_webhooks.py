"""POST /v1/webhooks/{name}: signatures, delivery ids, filters and conf mapping."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from dagtrigger.sources.webhooks import sign_github, sign_standard_webhooks
from tests.unit.http.conftest import GITHUB_SECRET, STANDARD_SECRET, ApiClient

GITHUB_HOOK = "/v1/webhooks/github-push"
PUSH = {
    "ref": "refs/heads/main",
    "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    "repository": {"full_name": "octo-org/docs"},
}


def github_delivery(
    api: ApiClient,
    payload: Any,
    *,
    delivery_id: str | None = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    event: str = "push",
    secret: str = GITHUB_SECRET,
    path: str = GITHUB_HOOK,
    base64_body: bool = False,
) -> Any:
    body = json.dumps(payload).encode("utf-8")
    headers = {
        **sign_github(body, secret=secret, delivery_id=delivery_id),
        "X-GitHub-Event": event,
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
    }
    return api.request(
        "POST", path, body=body, headers=headers, base64_body=base64_body, caller_arn=None
    )


def test_a_signed_github_push_starts_the_routes_dag_with_its_conf(
    api: ApiClient, transport: Any
) -> None:
    # Given a push to main, signed with the route's secret
    # When GitHub delivers it
    answer = github_delivery(api, PUSH)

    # Then the run starts with the conf the route's templates build from the payload
    assert answer.status == 202, answer.text
    assert answer.json["status"] == "TRIGGERED"
    assert answer.json["delivery_id"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert answer.json["duplicate"] is False
    (call,) = transport.calls
    assert call.dag_id == "build_docs"
    assert call.conf == {
        "repository": "octo-org/docs",
        "after": PUSH["after"],
        "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }
    record = api.request("GET", answer.json["links"]["self"]).json
    assert record["source_type"] == "webhook"
    assert record["source_ref"]["event"] == "push"


def test_a_base64_encoded_body_is_verified_on_its_raw_bytes(api: ApiClient, transport: Any) -> None:
    answer = github_delivery(api, PUSH, base64_body=True)

    assert answer.status == 202, answer.text
    assert len(transport.calls) == 1


def test_a_repeated_delivery_id_starts_one_run(api: ApiClient, transport: Any) -> None:
    first = github_delivery(api, PUSH)
    second = github_delivery(api, PUSH)

    assert first.status == second.status == 202
    assert second.json["trigger_id"] == first.json["trigger_id"]
    assert second.json["duplicate"] is True
    assert len(transport.calls) == 1


def test_a_delivery_without_an_id_is_keyed_by_its_body(api: ApiClient, transport: Any) -> None:
    answer = github_delivery(api, PUSH, delivery_id=None)

    assert answer.status == 202, answer.text
    assert answer.json["delivery_id"].startswith("sha256:")
    record = api.request("GET", answer.json["links"]["self"]).json
    assert answer.json["delivery_id"] == "sha256:" + record["source_ref"]["replay_key"][:32]


@pytest.mark.parametrize("secret", ["not the secret", GITHUB_SECRET + " ", GITHUB_SECRET.upper()])
def test_a_bad_signature_is_a_401_that_does_not_say_why(
    api: ApiClient, transport: Any, secret: str
) -> None:
    answer = github_delivery(api, PUSH, secret=secret)

    assert answer.status == 401
    assert answer.content_type == "application/problem+json"
    problem = answer.json
    assert problem["code"] == "unauthorized"
    assert problem["detail"] == "the request could not be authenticated"
    assert set(problem) == {"type", "title", "status", "detail", "instance", "code"}
    assert transport.calls == []


def test_a_missing_signature_gets_the_same_401_as_a_wrong_one(api: ApiClient) -> None:
    body = json.dumps(PUSH)
    unsigned = api.request(
        "POST", GITHUB_HOOK, body=body, headers={"X-GitHub-Event": "push"}, caller_arn=None
    )
    wrong = github_delivery(api, PUSH, secret="guess")

    assert unsigned.status == wrong.status == 401
    assert unsigned.text == wrong.text


def test_comma_joined_repeated_signature_headers_are_handled(
    api: ApiClient, transport: Any
) -> None:
    # Given a signature header sent twice, which API Gateway joins with a comma
    body = json.dumps(PUSH).encode()
    good = sign_github(body, secret=GITHUB_SECRET)["x-hub-signature-256"]
    stale = sign_github(body, secret="old secret")["x-hub-signature-256"]
    headers = {
        "x-hub-signature-256": f"{stale},{good}",
        "x-github-delivery": "d-joined",
        "x-github-event": "push",
    }

    answer = api.request("POST", GITHUB_HOOK, body=body, headers=headers, caller_arn=None)

    assert answer.status == 202, answer.text
    assert len(transport.calls) == 1


def test_a_payload_the_filter_rejects_is_recorded_as_ignored(
    api: ApiClient, transport: Any
) -> None:
    answer = github_delivery(api, {**PUSH, "ref": "refs/heads/feature"}, delivery_id="d-feature")

    assert answer.status == 202
    assert answer.json["status"] == "IGNORED"
    assert transport.calls == []
    record = api.request("GET", answer.json["links"]["self"]).json
    assert record["reject_code"] == "filtered_out"


def test_the_filter_sees_the_headers(api: ApiClient, transport: Any) -> None:
    answer = github_delivery(api, PUSH, delivery_id="d-ping", event="ping")

    assert answer.json["status"] == "IGNORED"
    assert transport.calls == []


def test_a_paused_route_records_the_delivery_as_ignored(api: ApiClient, transport: Any) -> None:
    answer = github_delivery(api, PUSH, path="/v1/webhooks/paused-hook")

    assert answer.status == 202
    assert answer.json["status"] == "IGNORED"
    assert transport.calls == []


def test_an_unknown_webhook_is_a_404(api: ApiClient) -> None:
    answer = github_delivery(api, PUSH, path="/v1/webhooks/nope")

    assert answer.status == 404
    assert answer.json["code"] == "not_found"


def test_a_signed_body_that_is_not_json_is_a_400(api: ApiClient, transport: Any) -> None:
    body = b"ref=refs/heads/main"
    headers = {**sign_github(body, secret=GITHUB_SECRET, delivery_id="d-form")}

    answer = api.request("POST", GITHUB_HOOK, body=body, headers=headers, caller_arn=None)

    assert answer.status == 400
    assert answer.json["code"] == "bad_request"
    assert transport.calls == []


def test_a_body_over_the_limit_is_a_413(make_api_deps: Any, api_settings: Any) -> None:
    api = ApiClient(make_api_deps(webhook_max_body_bytes=1024))

    answer = github_delivery(api, {**PUSH, "padding": "x" * 2000})

    assert answer.status == 413


# ---------------------------------------------------------------------- Standard Webhooks


def standard_delivery(api: ApiClient, path: str, payload: Any, msg_id: str) -> Any:
    body = json.dumps(payload).encode()
    headers = sign_standard_webhooks(
        body, secrets=[STANDARD_SECRET], msg_id=msg_id, timestamp=int(time.time())
    )
    return api.request("POST", path, body=body, headers=headers, caller_arn=None)


def test_a_standard_webhook_builds_its_conf_with_jmespath(api: ApiClient, transport: Any) -> None:
    payload = {"id": "evt_1", "type": "invoice.paid", "data": {"amount": 100}}

    msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    answer = standard_delivery(api, "/v1/webhooks/payments", payload, msg_id)

    assert answer.status == 202, answer.text
    assert answer.json["delivery_id"] == msg_id
    assert transport.calls[0].conf == {"id": "evt_1", "kind": "invoice.paid"}


def test_a_conf_mapping_that_is_not_an_object_is_rejected_with_a_422(
    api: ApiClient, transport: Any
) -> None:
    payload = {"items": [1, 2, 3]}

    answer = standard_delivery(api, "/v1/webhooks/payments-raw", payload, "msg_list")

    assert answer.status == 422
    assert answer.json["reject_code"] == "conf_not_object"
    assert transport.calls == []
    record = api.request("GET", f"/v1/triggers/{answer.json['trigger_id']}").json
    assert record["status"] == "REJECTED"


def test_an_old_standard_webhook_timestamp_is_a_422_that_says_so(
    api: ApiClient, transport: Any
) -> None:
    body = b'{"id": "evt_old"}'
    headers = sign_standard_webhooks(
        body, secrets=[STANDARD_SECRET], msg_id="msg_old", timestamp=int(time.time()) - 600
    )

    answer = api.request("POST", "/v1/webhooks/payments", body=body, headers=headers)

    assert answer.status == 422
    assert answer.json["errors"][0]["type"] == "timestamp_outside_replay_window"
    assert "outside the replay window" in answer.json["detail"]
    assert transport.calls == []


def test_airflow_down_is_a_503_and_the_senders_retry_triggers(
    api: ApiClient, transport: Any, answers: Any
) -> None:
    # Given Airflow unavailable for longer than the budget
    transport.answers.extend([answers.throttled] * 20)

    # When GitHub delivers, then the sender is told to retry and the record says so
    failed = github_delivery(api, PUSH, delivery_id="d-retry")
    assert failed.status == 503
    assert failed.headers["Retry-After"] == "7"
    run_id = transport.calls[0].dag_run_id

    # When GitHub redelivers with the same id once Airflow is back
    transport.answers.clear()
    retried = github_delivery(api, PUSH, delivery_id="d-retry")

    # Then the same trigger runs, with the same DAG run id
    assert retried.status == 202, retried.text
    assert retried.json["status"] == "TRIGGERED"
    assert transport.calls[-1].dag_run_id == run_id


def test_a_payload_escaping_a_lone_surrogate_is_a_400(api: ApiClient, transport: Any) -> None:
    # Given a signed delivery whose JSON escapes half of a surrogate pair
    answer = github_delivery(api, {**PUSH, "after": "\ud800"})

    # Then it is refused as malformed before any record or run
    assert answer.status == 400, answer.text
    assert "surrogate" in answer.json["detail"]
    assert transport.calls == []
    assert api.deps.ledger.query_by_source("webhook:github-push").items == []
