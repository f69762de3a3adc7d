"""claim(): a conditional put decides which delivery of an event owns the trigger."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dagtrigger.ledger import ClaimOutcome, NewTrigger, TriggerLedger, TriggerStatus
from dagtrigger.transports.base import TriggerResult

from .conftest import START, FakeClock

MakeTrigger = Callable[..., NewTrigger]


def test_first_delivery_creates_a_received_record(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given a trigger never seen before
    new = make_trigger()

    # When it is claimed
    claim = ledger.claim(new)

    # Then the caller owns it and the stored record says so
    assert claim.outcome is ClaimOutcome.NEW
    assert claim.owned
    stored = ledger.get(new.trigger_id)
    assert stored == claim.record
    assert stored is not None
    assert stored["status"] == TriggerStatus.RECEIVED
    assert stored["deliveries"] == 1
    assert stored["attempts"] == 0
    assert stored["created_at"] == "2026-11-21T02:00:00.123456Z"
    assert stored["created_day"] == "2026-11-21"
    assert stored["lease_until"] == "2026-11-21T02:01:00.123456Z"
    assert stored["expires_at"] == int(START.timestamp()) + 90 * 86400
    assert stored["dag_key"] == "prod#ingest_sales"
    assert stored["conf"] == {"bucket": "landing", "key": "sales/2026-11-21.csv"}
    assert stored["source_ref"]["size"] == 1024
    assert stored["source_ref"]["ratio"] == 0.25
    assert stored["transitions"] == [{"status": "RECEIVED", "at": "2026-11-21T02:00:00.123456Z"}]


def test_redelivery_is_a_duplicate_that_counts_deliveries(
    ledger: TriggerLedger, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    # Given a claimed trigger whose attempt is still in progress
    new = make_trigger()
    ledger.claim(new)
    clock.advance(seconds=5)

    # When the same event is delivered twice more
    ledger.claim(new)
    claim = ledger.claim(new)

    # Then both redeliveries are duplicates and the record counts all three
    assert claim.outcome is ClaimOutcome.DUPLICATE
    assert not claim.owned
    assert claim.record["deliveries"] == 3
    assert claim.record["status"] == TriggerStatus.RECEIVED
    assert claim.record["last_delivery_at"] == "2026-11-21T02:00:05.123456Z"


def test_redelivery_after_trigger_failed_is_a_retry(
    ledger: TriggerLedger, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    # Given a trigger whose first delivery gave up after 3 attempts
    new = make_trigger()
    ledger.claim(new)
    ledger.mark_trigger_failed(new.trigger_id, message="MWAA answered 503", attempts=3)
    clock.advance(minutes=5)

    # When SQS delivers the event again
    claim = ledger.claim(new)

    # Then this delivery owns the trigger again, under a new lease, keeping its history
    assert claim.outcome is ClaimOutcome.RETRY
    record = claim.record
    assert record["status"] == TriggerStatus.RECEIVED
    assert record["deliveries"] == 2
    assert record["attempts"] == 3
    assert record["lease_until"] == "2026-11-21T02:06:00.123456Z"
    assert record["last_error"] == "MWAA answered 503"
    assert [step["status"] for step in record["transitions"]] == [
        "RECEIVED",
        "TRIGGER_FAILED",
        "RECEIVED",
    ]


def test_attempts_accumulate_across_deliveries(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given a trigger that failed once after 3 attempts and was retried
    new = make_trigger()
    ledger.claim(new)
    ledger.mark_trigger_failed(new.trigger_id, message="timeout", attempts=3)
    ledger.claim(new)

    # When the retry succeeds on its second attempt
    record = ledger.mark_triggered(
        new.trigger_id,
        result=TriggerResult(dag_run_id=new.dag_run_id or "", logical_date=None, state="queued"),
        attempts=2,
    )

    # Then the record counts every attempt of every delivery
    assert record["attempts"] == 5
    assert record["status"] == TriggerStatus.TRIGGERED


def test_crashed_attempt_is_taken_over_once_its_lease_has_passed(
    ledger: TriggerLedger, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    # Given a delivery that claimed the trigger and then vanished (a Lambda timeout)
    new = make_trigger()
    ledger.claim(new)

    # When a redelivery arrives within the lease, and another after it
    clock.advance(seconds=59)
    within_lease = ledger.claim(new)
    clock.advance(seconds=2)
    after_lease = ledger.claim(new)

    # Then the first waits (duplicate) and the second takes the trigger over
    assert within_lease.outcome is ClaimOutcome.DUPLICATE
    assert after_lease.outcome is ClaimOutcome.RETRY
    assert after_lease.record["deliveries"] == 3
    assert after_lease.record["lease_until"] == "2026-11-21T02:02:01.123456Z"


@pytest.mark.parametrize(
    "finish",
    [
        pytest.param(
            lambda ledger, trigger_id: ledger.mark_triggered(
                trigger_id,
                result=TriggerResult(dag_run_id="r", logical_date=None, state="queued"),
                attempts=1,
            ),
            id="triggered",
        ),
        pytest.param(
            lambda ledger, trigger_id: ledger.mark_rejected(
                trigger_id, code="dag_not_found", message="no such DAG", attempts=1
            ),
            id="rejected",
        ),
    ],
)
def test_finished_trigger_is_never_taken_over(
    ledger: TriggerLedger,
    make_trigger: MakeTrigger,
    clock: FakeClock,
    finish: Callable[[TriggerLedger, str], Any],
) -> None:
    # Given a trigger that was settled long ago (its lease is long gone)
    new = make_trigger()
    ledger.claim(new)
    finish(ledger, new.trigger_id)
    clock.advance(days=1)

    # When the event is delivered again
    claim = ledger.claim(new)

    # Then it is a duplicate: settled triggers run once
    assert claim.outcome is ClaimOutcome.DUPLICATE
    assert claim.record["deliveries"] == 2


def test_expired_record_not_yet_deleted_counts_as_absent(
    table: Any, clock: FakeClock, make_trigger: MakeTrigger
) -> None:
    # Given a record past its TTL that DynamoDB has not deleted yet
    ledger = TriggerLedger(table, history_ttl_days=1, clock=clock)
    new = make_trigger()
    ledger.claim(new)
    ledger.mark_triggered(
        new.trigger_id,
        result=TriggerResult(dag_run_id="old-run", logical_date=None, state="success"),
        attempts=1,
    )
    clock.advance(days=2)
    assert table.get_item(Key={"pk": new.trigger_id}).get("Item") is not None

    # When the same trigger id is claimed again
    ledger_get_before = ledger.get(new.trigger_id)
    claim = ledger.claim(new)

    # Then the old record is treated as gone and replaced by a fresh one
    assert ledger_get_before is None
    assert claim.outcome is ClaimOutcome.NEW
    assert claim.record["deliveries"] == 1
    assert claim.record["status"] == TriggerStatus.RECEIVED
    stored = ledger.get(new.trigger_id)
    assert stored is not None
    assert "triggered_at" not in stored
    assert stored["created_day"] == "2026-11-23"


@pytest.mark.usefixtures("atomic_requests")
def test_fifty_concurrent_claims_give_exactly_one_owner(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given one event delivered 50 times at once
    new = make_trigger()

    # When 50 threads claim it concurrently
    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(lambda _: ledger.claim(new).outcome, range(50)))

    # Then exactly one owns it, 49 are duplicates, and every delivery is counted
    assert Counter(outcomes) == {ClaimOutcome.NEW: 1, ClaimOutcome.DUPLICATE: 49}
    stored = ledger.get(new.trigger_id)
    assert stored is not None
    assert stored["deliveries"] == 50


@pytest.mark.usefixtures("atomic_requests")
def test_concurrent_redeliveries_of_a_failed_trigger_give_exactly_one_retry(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given a trigger that gave up, redelivered 20 times at once
    new = make_trigger()
    ledger.claim(new)
    ledger.mark_trigger_failed(new.trigger_id, message="503", attempts=3)

    # When 20 threads claim it concurrently
    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(lambda _: ledger.claim(new).outcome, range(20)))

    # Then exactly one takes it over and the rest are duplicates
    assert Counter(outcomes) == {ClaimOutcome.RETRY: 1, ClaimOutcome.DUPLICATE: 19}
    stored = ledger.get(new.trigger_id)
    assert stored is not None
    assert stored["deliveries"] == 21
    assert [step["status"] for step in stored["transitions"]].count("RECEIVED") == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"trigger_id": ""}, "trigger_id must be a non-empty string"),
        ({"trigger_id": "x" * 2049}, "trigger_id is 2049 bytes"),
        ({"source_key": ""}, "source_key must be a non-empty string"),
        ({"conf": ["not", "an", "object"]}, "conf must be a JSON object"),
        ({"source_ref": "bucket"}, "source_ref must be a JSON object"),
    ],
)
def test_malformed_trigger_is_refused_by_name(
    make_trigger: MakeTrigger, overrides: dict[str, Any], message: str
) -> None:
    # Given / When a trigger with a malformed field / Then the error names the field
    with pytest.raises(ValueError, match=message):
        make_trigger(**overrides)


def test_conf_that_is_not_json_is_refused_by_name(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given a conf holding a value JSON cannot represent
    new = make_trigger(conf={"when": object()})

    # When / Then claiming it fails with an error naming conf, and nothing is stored
    with pytest.raises(ValueError, match=r"NewTrigger\.conf is not JSON serialisable"):
        ledger.claim(new)
    assert ledger.get(new.trigger_id) is None
