"""A webhook whose function died after claiming the delivery still starts exactly one run, even
when the sender never delivers it again: the reconciler takes the claim over once its lease
ends."""

from __future__ import annotations

from typing import Any

import pytest

from dagtrigger.trigger.reconcile import reconcile_open_triggers
from tests.unit.conftest import FunctionKilled
from tests.unit.http.conftest import ApiClient
from tests.unit.http.test_webhooks import PUSH, github_delivery
from tests.unit.ledger.conftest import FakeClock

#: well past the ledger's claim lease, in seconds
AFTER_THE_LEASE = 3600


def test_a_webhook_killed_after_its_claim_is_started_once_without_a_redelivery(
    make_api_deps: Any, transport: Any, answers: Any
) -> None:
    # Given a signed push whose function is killed mid-trigger, and a sender that never retries
    clock = FakeClock()
    deps = make_api_deps(clock=clock)
    api = ApiClient(deps)
    transport.answers.append(answers.killed)
    with pytest.raises(FunctionKilled):
        github_delivery(api, PUSH)
    (claimed,) = deps.ledger.query_by_source("webhook:github-push").items
    assert claimed["status"] == "RECEIVED"

    # When the reconciler runs after the claim's lease ended
    clock.advance(seconds=AFTER_THE_LEASE)
    summary = reconcile_open_triggers(deps)

    # Then the run started once, with the conf the delivery rendered
    record = deps.ledger.get(claimed["trigger_id"])
    assert record is not None
    assert summary.resumed == 1
    assert record["status"] == "TRIGGERED"
    first, second = transport.calls
    assert second.dag_run_id == first.dag_run_id == record["dag_run_id"]
    assert second.conf == first.conf


def test_an_api_run_taken_over_keeps_its_requested_logical_date(
    make_api_deps: Any, transport: Any, answers: Any
) -> None:
    # Given a DAG run asked for a logical date, whose function is killed mid-trigger
    clock = FakeClock()
    deps = make_api_deps(clock=clock)
    api = ApiClient(deps)
    transport.answers.append(answers.killed)
    body = {"conf": {"day": "2026-11-20"}, "logical_date": "2026-11-20T00:00:00+00:00"}
    with pytest.raises(FunctionKilled):
        api.post_json("/v1/dags/ingest_sales/runs", body, headers={"Idempotency-Key": "k-1"})

    # When the reconciler takes the claim over
    clock.advance(seconds=AFTER_THE_LEASE)
    reconcile_open_triggers(deps)

    # Then the run is asked for the same logical date and conf
    first, second = transport.calls
    assert second.logical_date == first.logical_date
    assert first.logical_date is not None
    assert first.logical_date.isoformat() == "2026-11-20T00:00:00+00:00"
    assert second.conf == {"day": "2026-11-20"}
