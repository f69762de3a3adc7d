"""record_final(): triggers that end where they start, REJECTED or IGNORED."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dagtrigger.ledger import ClaimOutcome, NewTrigger, TriggerLedger, TriggerStatus

from .conftest import START, FakeClock

MakeTrigger = Callable[..., NewTrigger]
DAY = 86400


def test_ignored_records_expire_sooner_than_rejected_ones(
    table: Any, clock: FakeClock, make_trigger: MakeTrigger
) -> None:
    # Given a ledger keeping history 90 days and ignored objects 7
    ledger = TriggerLedger(table, history_ttl_days=90, ignored_ttl_days=7, clock=clock)

    # When one object matches no route and another is rejected
    ignored = ledger.record_final(
        make_trigger("trg-ignored", route=None, dag_id=None, environment=None, dag_run_id=None),
        status=TriggerStatus.IGNORED,
        code="no_route",
        message="no route matches s3://landing/tmp/x",
    )
    rejected = ledger.record_final(
        make_trigger("trg-rejected"),
        status=TriggerStatus.REJECTED,
        code="conf_too_large",
        message="rendered conf is 40000 bytes (limit 32768)",
    )

    # Then both are stored as final, the ignored one with the shorter TTL
    assert ignored.outcome is ClaimOutcome.NEW
    assert ignored.record["expires_at"] == int(START.timestamp()) + 7 * DAY
    assert rejected.record["expires_at"] == int(START.timestamp()) + 90 * DAY
    assert ignored.record["status"] == TriggerStatus.IGNORED
    assert ignored.record["reject_code"] == "no_route"
    assert "dag_key" not in ignored.record
    assert "lease_until" not in ignored.record
    stored = ledger.get("trg-rejected")
    assert stored is not None
    assert stored["status"] == TriggerStatus.REJECTED
    assert stored["reason"] == "rendered conf is 40000 bytes (limit 32768)"


def test_redelivered_final_record_is_a_duplicate(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given an ignored object
    new = make_trigger()
    ledger.record_final(new, status=TriggerStatus.IGNORED, code="no_route", message="none")

    # When its event is delivered again
    claim = ledger.record_final(new, status=TriggerStatus.IGNORED, code="no_route", message="none")

    # Then the record is found and counted, not rewritten
    assert claim.outcome is ClaimOutcome.DUPLICATE
    assert claim.record["deliveries"] == 2
    assert len(claim.record["transitions"]) == 1


def test_claim_after_a_final_record_is_a_duplicate(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given a rejected trigger
    new = make_trigger()
    ledger.record_final(new, status=TriggerStatus.REJECTED, code="bad", message="bad")

    # When the same trigger id is claimed
    claim = ledger.claim(new)

    # Then nobody owns it: rejections are final
    assert claim.outcome is ClaimOutcome.DUPLICATE
    assert claim.record["status"] == TriggerStatus.REJECTED


@pytest.mark.parametrize("status", [TriggerStatus.RECEIVED, TriggerStatus.SUCCESS])
def test_record_final_takes_only_final_statuses(
    ledger: TriggerLedger, make_trigger: MakeTrigger, status: TriggerStatus
) -> None:
    # Given / When a non-final status is passed / Then ValueError, nothing stored
    with pytest.raises(ValueError, match="REJECTED or IGNORED"):
        ledger.record_final(make_trigger(), status=status, code="x", message="y")
    assert ledger.get("trg-0001") is None
