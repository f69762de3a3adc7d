"""What is stored of conf and other possibly large values: bounded, never near 400 KB."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from dagtrigger.ledger import NewTrigger, TriggerLedger

from .conftest import FakeClock

MakeTrigger = Callable[..., NewTrigger]


def test_conf_is_stored_as_compact_json_and_read_back_as_an_object(
    table: Any, ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given a conf with nested values and non-ASCII text
    conf = {"key": "ventes/été 2026.csv", "sizes": [1, 2.5], "nested": {"ok": True}}

    # When it is claimed
    ledger.claim(make_trigger(conf=conf))

    # Then the item holds compact JSON and the ledger hands back the object
    raw = table.get_item(Key={"pk": "trg-0001"})["Item"]
    assert raw["conf"] == json.dumps(conf, separators=(",", ":"), ensure_ascii=False)
    record = ledger.get("trg-0001")
    assert record is not None
    assert record["conf"] == conf
    assert "conf_truncated" not in record


def test_conf_over_the_limit_is_replaced_by_a_marker_and_digest(
    table: Any, clock: FakeClock, make_trigger: MakeTrigger
) -> None:
    # Given a ledger keeping conf up to 1 KB, and a 2 KB conf
    ledger = TriggerLedger(table, conf_max_bytes=1024, clock=clock)
    conf = {"payload": "z" * 2048}
    encoded = json.dumps(conf, separators=(",", ":")).encode()

    # When it is claimed
    claim = ledger.claim(make_trigger(conf=conf))

    # Then only the marker, the size and the digest are kept
    record = claim.record
    assert "conf" not in record
    assert record["conf_truncated"] is True
    assert record["conf_bytes"] == len(encoded)
    assert record["conf_sha256"] == hashlib.sha256(encoded).hexdigest()
    assert ledger.get("trg-0001") == record


def test_conf_exactly_at_the_limit_is_kept(table: Any, make_trigger: MakeTrigger) -> None:
    # Given a conf whose compact JSON is exactly the limit
    conf = {"p": "q" * 1000}
    limit = len(json.dumps(conf, separators=(",", ":")).encode())
    ledger = TriggerLedger(table, conf_max_bytes=limit)

    # When / Then it is stored whole
    assert ledger.claim(make_trigger(conf=conf)).record["conf"] == conf


def test_no_conf_stores_nothing_for_it(ledger: TriggerLedger, make_trigger: MakeTrigger) -> None:
    # Given / When a trigger without conf is claimed / Then no conf attribute exists
    record = ledger.claim(make_trigger(conf=None)).record
    assert "conf" not in record
    assert "conf_truncated" not in record


def test_large_source_facts_and_note_are_bounded(
    ledger: TriggerLedger, make_trigger: MakeTrigger
) -> None:
    # Given source facts and a note far larger than any real event carries
    huge_ref = {"headers": {f"h{n}": "v" * 100 for n in range(1000)}}
    new = make_trigger(source_ref=huge_ref, note="n" * 100_000)

    # When it is claimed
    record = ledger.claim(new).record

    # Then the source facts are replaced by a digest and the note is cut
    assert record["source_ref"]["truncated"] is True
    assert record["source_ref"]["bytes"] > 8192
    assert len(record["note"]) <= 2000
    assert len(json.dumps(record)) < 16 * 1024
