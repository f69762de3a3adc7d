"""ledger_from_settings(): the functions' ledger takes its limits from the validated settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dagtrigger.ledger import NewTrigger, ledger_from_settings
from dagtrigger.settings import Settings


def test_limits_come_from_settings(table: Any, make_trigger: Callable[..., NewTrigger]) -> None:
    # Given settings with a 3-day history and a 64-byte conf limit
    settings = Settings(table_name=table.name, history_ttl_days=3, conf_max_bytes=64)
    ledger = ledger_from_settings(settings, table=table)

    # When a trigger with a larger conf is claimed
    before = int(datetime.now(UTC).timestamp())
    record = ledger.claim(make_trigger(conf={"x": "y" * 100})).record
    after = int(datetime.now(UTC).timestamp())

    # Then both limits apply
    assert record["conf_truncated"] is True
    assert before + 3 * 86400 <= record["expires_at"] <= after + 3 * 86400
