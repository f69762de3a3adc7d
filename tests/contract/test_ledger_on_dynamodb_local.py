"""The ledger's races on Amazon's DynamoDB Local, which (unlike moto) applies each conditional
write atomically, as DynamoDB does: no request serialisation is needed here."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from dagtrigger.ledger import ClaimOutcome, NewTrigger, SourceType, TriggerLedger
from dagtrigger.ledger.schema import create_table
from dagtrigger.transports.rate_budget import (
    CallPriority,
    RateBudgetExhausted,
    SharedRateBudget,
)
from devstack.dynamodb_local import start_dynamodb_local

pytestmark = pytest.mark.contract

CREDENTIALS = {
    "aws_access_key_id": "local",
    "aws_secret_access_key": "local",
    "region_name": "us-east-1",
}


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_dynamodb_local(state_dir=tmp_path_factory.mktemp("dynamodb-local"))
    try:
        client = boto3.client("dynamodb", endpoint_url=server.endpoint_url, **CREDENTIALS)
        create_table(client, "dagtrigger-history")
        resource = boto3.resource("dynamodb", endpoint_url=server.endpoint_url, **CREDENTIALS)
        yield resource.Table("dagtrigger-history")
    finally:
        server.stop()


def new_trigger(trigger_id: str) -> NewTrigger:
    return NewTrigger(
        trigger_id=trigger_id,
        source_type=SourceType.S3,
        source_key="s3://landing/sales/2026-11-21.csv",
        source_identity="s3://landing/sales/2026-11-21.csv#version=v1",
        source_ref={"bucket": "landing", "key": "sales/2026-11-21.csv", "version_id": "v1"},
        route="sales-csv",
        environment="prod",
        dag_id="ingest_sales",
        dag_run_id=f"dagtrigger__s3__{trigger_id}",
        conf={"bucket": "landing", "key": "sales/2026-11-21.csv"},
    )


def test_fifty_concurrent_claims_make_one_owner_and_count_fifty_deliveries(table: Any) -> None:
    # Given one trigger delivered 50 times at once
    ledger = TriggerLedger(table)
    trigger = new_trigger("t-concurrent-claims")

    # When 50 threads claim it together
    with ThreadPoolExecutor(max_workers=25) as pool:
        claims = list(pool.map(lambda _: ledger.claim(trigger), range(50)))

    # Then exactly one owns it and the record counts every delivery
    outcomes = [claim.outcome for claim in claims]
    assert outcomes.count(ClaimOutcome.NEW) == 1
    assert outcomes.count(ClaimOutcome.DUPLICATE) == 49
    record = ledger.get(trigger.trigger_id)
    assert record is not None
    assert record["deliveries"] == 50
    assert record["status"] == "RECEIVED"


def test_only_one_of_two_racing_status_changes_wins(table: Any) -> None:
    # Given a claimed trigger
    ledger = TriggerLedger(table)
    trigger = new_trigger("t-racing-updates")
    ledger.claim(trigger)

    # When two workers try to finish it differently at the same moment
    def reject() -> str:
        try:
            ledger.mark_rejected(trigger.trigger_id, code="dag_not_found", message="x", attempts=1)
        except Exception as exc:
            return type(exc).__name__
        return "ok"

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: reject(), range(2)))

    # Then one change is applied and the other is refused as a disallowed transition
    assert sorted(results) == ["InvalidTransitionError", "ok"]
    record = ledger.get(trigger.trigger_id)
    assert record is not None
    assert record["status"] == "REJECTED"


def test_forty_racing_callers_share_one_second_of_budget_exactly(table: Any) -> None:
    # Given 40 callers of one environment racing in one second, none willing to wait
    shared = SharedRateBudget(
        lambda: table,
        calls_per_second=10,
        background_calls_per_second=3,
        max_wait_seconds=0,
        clock=lambda: 5000.5,
    )

    def call(_: int) -> bool:
        try:
            shared.acquire("racing-mwaa", CallPriority.TRIGGER)
        except RateBudgetExhausted:
            return False
        return True

    with ThreadPoolExecutor(max_workers=10) as pool:
        granted = sum(pool.map(call, range(40)))

    # Then exactly the second's budget was granted, whatever the interleaving
    assert granted == 10
