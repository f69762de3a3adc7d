"""The trigger history ledger (DynamoDB): claims, status changes and history queries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dagtrigger.ledger.errors import (
    InvalidCursorError,
    InvalidTransitionError,
    LedgerContentionError,
    LedgerError,
    TriggerNotFoundError,
)
from dagtrigger.ledger.ledger import ALLOWED_FROM, TriggerLedger
from dagtrigger.ledger.records import Claim, ClaimOutcome, NewTrigger, Page, dag_key
from dagtrigger.ledger.timestamps import to_timestamp, utc_now

if TYPE_CHECKING:
    from dagtrigger.settings import Settings


def ledger_from_settings(settings: Settings | None = None, *, table: Any = None) -> TriggerLedger:
    """The ledger the Lambda functions use: table and limits from the validated settings."""
    from dagtrigger.aws import dynamodb_table
    from dagtrigger.settings import get_settings

    settings = settings or get_settings()
    return TriggerLedger(
        table if table is not None else dynamodb_table(settings.table_name),
        history_ttl_days=settings.history_ttl_days,
        ignored_ttl_days=settings.ignored_ttl_days,
        conf_max_bytes=settings.conf_max_bytes,
        lease_seconds=settings.trigger_lease_seconds,
    )


__all__ = [
    "ALLOWED_FROM",
    "Claim",
    "ClaimOutcome",
    "InvalidCursorError",
    "InvalidTransitionError",
    "LedgerContentionError",
    "LedgerError",
    "NewTrigger",
    "Page",
    "TriggerLedger",
    "TriggerNotFoundError",
    "dag_key",
    "ledger_from_settings",
    "to_timestamp",
    "utc_now",
]
