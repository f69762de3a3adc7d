"""Replayed webhooks start nothing: a delivery is known by what its signature covers.

Regression tests for issue 9, item 3: a captured GitHub or generic-HMAC delivery replayed with
a new (unsigned) delivery id, or with none, started a run each time; a signed timestamp is
refused outside the deployment's replay window with a problem that says so.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from dagtrigger.dependencies import Dependencies
from dagtrigger.sources.webhooks import (
    HmacSchemeConfig,
    sign_generic_hmac,
    sign_github,
    sign_standard_webhooks,
)
from tests.unit.http.conftest import API_ROUTES_YAML, GITHUB_SECRET, STANDARD_SECRET, ApiClient
from tests.unit.http.test_webhooks import PUSH
from tests.unit.ledger.conftest import FakeClock

HMAC_SECRET_NAME = "dagtrigger/webhooks/in-house"
HMAC_SECRET = "in-house shared secret"
PLAIN_HMAC = HmacSchemeConfig(header="x-signature", delivery_id_header="x-request-id")
STAMPED_HMAC = HmacSchemeConfig(
    header="x-signature",
    timestamp_header="x-signature-timestamp",
    delivery_id_header="x-request-id",
)
REPLAYS = 5


@pytest.fixture
def routes_yaml() -> str:
    """The API's routes, plus generic HMAC routes with and without a signed timestamp."""
    routes = yaml.safe_load(API_ROUTES_YAML)
    common = {"secret": HMAC_SECRET_NAME, "environment": "prod", "dag_id": "load_orders"}
    routes["webhooks"] += [
        {"name": "orders", "scheme": "hmac", "hmac": _route_fields(PLAIN_HMAC), **common},
        {"name": "orders-stamped", "scheme": "hmac", "hmac": _route_fields(STAMPED_HMAC), **common},
    ]
    return yaml.safe_dump(routes, sort_keys=False)


def _route_fields(config: HmacSchemeConfig) -> dict[str, Any]:
    # tolerance_seconds left out: the route then takes the deployment's replay window
    fields = {
        "header": config.header,
        "timestamp_header": config.timestamp_header,
        "delivery_id_header": config.delivery_id_header,
    }
    return {name: value for name, value in fields.items() if value is not None}


@pytest.fixture(autouse=True)
def hmac_secret(secrets_client: Any) -> Iterator[None]:
    secrets_client.create_secret(Name=HMAC_SECRET_NAME, SecretString=HMAC_SECRET)
    yield
    secrets_client.delete_secret(SecretId=HMAC_SECRET_NAME, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_api(make_api_deps: Callable[..., Dependencies], clock: FakeClock) -> Callable[..., Any]:
    def build(**settings: Any) -> tuple[ApiClient, Dependencies]:
        deps = make_api_deps(clock=clock, **settings)
        return ApiClient(deps), deps

    return build


def post(api: ApiClient, name: str, body: bytes, headers: dict[str, str]) -> Any:
    return api.request("POST", f"/v1/webhooks/{name}", body=body, headers=headers, caller_arn=None)


def records_of(deps: Dependencies, route: str) -> list[dict[str, Any]]:
    return deps.ledger.query_by_source(f"webhook:{route}").items


def assert_one_trigger_and_duplicates(
    answers: list[Any], deps: Dependencies, route: str, transport: Any
) -> None:
    assert [answer.status for answer in answers] == [202] * len(answers), answers[-1].text
    assert [answer.json["duplicate"] for answer in answers] == [False] + [True] * (len(answers) - 1)
    assert len({answer.json["trigger_id"] for answer in answers}) == 1
    assert len(transport.calls) == 1
    (record,) = records_of(deps, route)
    assert record["status"] == "TRIGGERED"
    assert record["deliveries"] == len(answers)


# ------------------------------------------------------------------------------------ GitHub


@pytest.mark.parametrize(
    "replayed_id",
    [lambda n: f"forged-delivery-{n}", lambda n: None],
    ids=["a-new-delivery-id-each-time", "no-delivery-id"],
)
def test_a_captured_github_delivery_replayed_five_times_starts_one_run(
    make_api: Callable[..., Any],
    clock: FakeClock,
    transport: Any,
    replayed_id: Callable[[int], str | None],
) -> None:
    # Given one push, signed by GitHub, captured by an attacker
    api, deps = make_api()
    body = json.dumps(PUSH).encode()
    signature = sign_github(body, secret=GITHUB_SECRET)
    github = {"x-github-event": "push", "content-type": "application/json"}

    # When it is replayed five times, a second apart, with whatever delivery id the replayer likes
    answers = []
    for attempt in range(REPLAYS):
        delivery_id = replayed_id(attempt)
        unsigned = {"x-github-delivery": delivery_id} if delivery_id else {}
        answers.append(post(api, "github-push", body, {**signature, **github, **unsigned}))
        clock.advance(seconds=1)

    # Then one run started; every replay was answered as a duplicate of its trigger
    assert_one_trigger_and_duplicates(answers, deps, "github-push", transport)


def test_a_replayed_ping_cannot_become_a_push_through_its_unsigned_headers(
    make_api: Callable[..., Any], transport: Any
) -> None:
    # Given a delivery the route's filter ignored (its X-GitHub-Event said "ping")
    api, deps = make_api()
    body = json.dumps(PUSH).encode()
    signature = sign_github(body, secret=GITHUB_SECRET)
    first = post(api, "github-push", body, {**signature, "x-github-event": "ping"})
    assert first.json["status"] == "IGNORED"

    # When it is replayed with the unsigned event header and delivery id changed
    replay = post(
        api,
        "github-push",
        body,
        {**signature, "x-github-event": "push", "x-github-delivery": "forged"},
    )

    # Then the replay is the ignored delivery again, and nothing runs
    assert replay.status == 202, replay.text
    assert replay.json["duplicate"] is True
    assert replay.json["status"] == "IGNORED"
    assert replay.json["trigger_id"] == first.json["trigger_id"]
    assert transport.calls == []
    (record,) = records_of(deps, "github-push")
    assert record["deliveries"] == 2


def test_a_replay_with_its_body_changed_is_refused_and_leaves_no_record(
    make_api: Callable[..., Any], transport: Any
) -> None:
    # Given a captured delivery whose body the attacker edits (the signature no longer covers it)
    api, deps = make_api()
    body = json.dumps(PUSH).encode()
    signature = sign_github(body, secret=GITHUB_SECRET)
    edited = body.replace(b"octo-org/docs", b"octo-org/evil")

    answer = post(api, "github-push", edited, {**signature, "x-github-event": "push"})

    # Then it is a bare 401, and neither the ledger nor Airflow ever saw it
    assert answer.status == 401
    assert answer.json["detail"] == "the request could not be authenticated"
    assert records_of(deps, "github-push") == []
    assert transport.calls == []


# ------------------------------------------------------------------------------ generic HMAC


@pytest.mark.parametrize(
    "replayed_id",
    [lambda n: f"req-{n}", lambda n: None],
    ids=["a-new-request-id-each-time", "no-request-id"],
)
def test_a_captured_hmac_delivery_replayed_five_times_starts_one_run(
    make_api: Callable[..., Any],
    clock: FakeClock,
    transport: Any,
    replayed_id: Callable[[int], str | None],
) -> None:
    # Given one generic HMAC delivery (no signed timestamp), captured
    api, deps = make_api()
    body = b'{"order": 1042, "action": "load"}'
    signature = sign_generic_hmac(body, config=PLAIN_HMAC, secret=HMAC_SECRET)

    # When it is replayed five times, a second apart, with new request ids or none
    answers = []
    for attempt in range(REPLAYS):
        request_id = replayed_id(attempt)
        unsigned = {"x-request-id": request_id} if request_id else {}
        answers.append(post(api, "orders", body, {**signature, **unsigned}))
        clock.advance(seconds=1)

    # Then one run started; the rest are duplicates
    assert_one_trigger_and_duplicates(answers, deps, "orders", transport)


def test_a_timestamped_hmac_replay_inside_the_window_is_a_duplicate(
    make_api: Callable[..., Any], clock: FakeClock, transport: Any
) -> None:
    # Given a delivery signed with a timestamp, received at once, then replayed with a new
    # request id four minutes later (inside the default five-minute window)
    api, deps = make_api()
    body = b'{"order": 1043}'
    signed = sign_generic_hmac(
        body, config=STAMPED_HMAC, secret=HMAC_SECRET, timestamp=int(clock().timestamp())
    )
    first = post(api, "orders-stamped", body, {**signed, "x-request-id": "req-1"})
    clock.advance(minutes=4)
    replay = post(api, "orders-stamped", body, {**signed, "x-request-id": "req-2"})

    # Then the replay starts nothing
    assert_one_trigger_and_duplicates([first, replay], deps, "orders-stamped", transport)


def test_a_timestamped_hmac_delivery_outside_the_window_is_refused_with_a_422_that_says_so(
    make_api: Callable[..., Any], clock: FakeClock, transport: Any
) -> None:
    # Given a delivery whose signed timestamp is six minutes old (the window is five)
    api, deps = make_api()
    body = b'{"order": 1044}'
    signed_at = int(clock().timestamp()) - 360
    signed = sign_generic_hmac(body, config=STAMPED_HMAC, secret=HMAC_SECRET, timestamp=signed_at)

    answer = post(api, "orders-stamped", body, signed)

    # Then it is refused, naming the header and the window, and nothing is recorded or run
    assert answer.status == 422, answer.text
    problem = answer.json
    assert problem["code"] == "validation_error"
    assert "360 s behind the clock" in problem["detail"]
    assert "replay window of 300 s" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["header", "x-signature-timestamp"]
    assert problem["errors"][0]["type"] == "timestamp_outside_replay_window"
    assert records_of(deps, "orders-stamped") == []
    assert transport.calls == []


def test_an_hmac_route_without_its_own_tolerance_takes_the_deployments_window(
    make_api: Callable[..., Any], clock: FakeClock, transport: Any
) -> None:
    # Given a deployment with a 15-minute replay window, and a delivery signed 10 minutes ago
    api, deps = make_api(webhook_replay_window_seconds=900)
    body = b'{"order": 1045}'
    signed_at = int(clock().timestamp()) - 600
    signed = sign_generic_hmac(body, config=STAMPED_HMAC, secret=HMAC_SECRET, timestamp=signed_at)

    answer = post(api, "orders-stamped", body, signed)

    # Then it is accepted, with its signed time on record
    assert answer.status == 202, answer.text
    assert len(transport.calls) == 1
    (record,) = records_of(deps, "orders-stamped")
    assert record["source_ref"]["signed_at"] == "2026-11-21T01:50:00Z"


# ------------------------------------------------------------------------- Standard Webhooks


def standard(body: bytes, msg_id: str, signed_at: int) -> dict[str, str]:
    return sign_standard_webhooks(
        body, secrets=[STANDARD_SECRET], msg_id=msg_id, timestamp=signed_at
    )


def test_a_standard_webhook_replayed_inside_a_configured_window_is_a_duplicate(
    make_api: Callable[..., Any], clock: FakeClock, transport: Any
) -> None:
    # Given a deployment with a 10-minute window, and a delivery received as it was signed
    api, deps = make_api(webhook_replay_window_seconds=600)
    body = b'{"id": "evt_1", "type": "invoice.paid"}'
    headers = standard(body, "msg_replayed", int(clock().timestamp()))
    first = post(api, "payments", body, headers)

    # When it is replayed unchanged after 400 s, and again after 590 s
    clock.advance(seconds=400)
    second = post(api, "payments", body, headers)
    clock.advance(seconds=190)
    third = post(api, "payments", body, headers)

    # Then only the first started a run
    assert_one_trigger_and_duplicates([first, second, third], deps, "payments", transport)


def test_a_standard_webhook_replayed_outside_the_window_is_refused_with_a_422(
    make_api: Callable[..., Any], clock: FakeClock, transport: Any
) -> None:
    # Given a delivery that started its run
    api, deps = make_api()
    body = b'{"id": "evt_2", "type": "invoice.paid"}'
    headers = standard(body, "msg_late", int(clock().timestamp()))
    assert post(api, "payments", body, headers).status == 202

    # When it is replayed six minutes later (the window is five)
    clock.advance(minutes=6)
    replay = post(api, "payments", body, headers)

    # Then the replay is refused for its timestamp, saying so, and nothing more runs
    assert replay.status == 422, replay.text
    assert replay.json["errors"][0]["loc"] == ["header", "webhook-timestamp"]
    assert "outside the replay window of 300 s" in replay.json["detail"]
    (record,) = records_of(deps, "payments")
    assert record["deliveries"] == 1
    assert len(transport.calls) == 1


def test_a_senders_retry_signed_with_a_fresh_timestamp_is_the_same_delivery(
    make_api: Callable[..., Any], clock: FakeClock, transport: Any
) -> None:
    # Given a message delivered once, then retried by its sender an hour later: the spec keeps
    # the webhook-id and signs the attempt with the time it is sent
    api, deps = make_api()
    body = b'{"id": "evt_3", "type": "invoice.paid"}'
    first = post(api, "payments", body, standard(body, "msg_retried", int(clock().timestamp())))
    clock.advance(hours=1)
    retry = post(api, "payments", body, standard(body, "msg_retried", int(clock().timestamp())))

    # Then the retry finds the first delivery's trigger
    assert_one_trigger_and_duplicates([first, retry], deps, "payments", transport)


def test_a_forged_standard_webhook_with_a_stale_timestamp_gets_the_bare_401(
    make_api: Callable[..., Any], clock: FakeClock, transport: Any
) -> None:
    # Given a delivery an hour old, signed with a key the route does not hold
    api, deps = make_api()
    body = b'{"id": "evt_4"}'
    wrong_key = "whsec_" + base64.b64encode(b"w" * 32).decode()
    headers = sign_standard_webhooks(
        body, secrets=[wrong_key], msg_id="msg_forged", timestamp=int(clock().timestamp()) - 3600
    )

    answer = post(api, "payments", body, headers)

    # Then the answer says nothing about the timestamp, and nothing is recorded
    assert answer.status == 401
    assert answer.json["detail"] == "the request could not be authenticated"
    assert records_of(deps, "payments") == []
    assert transport.calls == []
