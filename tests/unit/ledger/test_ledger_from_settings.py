"""ledger_from_settings(): the functions' ledger takes its limits from the validated settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from dagtrigger.dependencies import ledger_from_settings
from dagtrigger.ledger import NewTrigger
from dagtrigger.ledger.encoding import to_timestamp
from dagtrigger.settings import Settings


def test_limits_come_from_settings(table: Any, make_trigger: Callable[..., NewTrigger]) -> None:
    # Given settings with a 3-day history, a 64-byte conf limit and a 30-second lease
    settings = Settings(
        table_name=table.name, history_ttl_days=3, conf_max_bytes=64, trigger_lease_seconds=30
    )
    ledger = ledger_from_settings(settings, table=table)

    # When a trigger with a larger conf is claimed
    started = datetime.now(UTC)
    record = ledger.claim(make_trigger(conf={"x": "y" * 100})).record
    finished = datetime.now(UTC)
    before, after = int(started.timestamp()), int(finished.timestamp())

    # Then all three limits apply
    assert record["conf_truncated"] is True
    assert before + 3 * 86400 <= record["expires_at"] <= after + 3 * 86400
    lease = timedelta(seconds=30)
    assert to_timestamp(started + lease) <= record["lease_until"] <= to_timestamp(finished + lease)
