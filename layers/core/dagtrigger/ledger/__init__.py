"""The trigger history ledger (DynamoDB): claims, status changes and history queries."""

from dagtrigger.ledger.ledger import ALLOWED_FROM, REPLAYABLE, TriggerLedger
from dagtrigger.ledger.records import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    RUN_ENDINGS,
    Claim,
    ClaimOutcome,
    NewTrigger,
    Page,
    PendingEvent,
    SourceType,
    TriggerStatus,
    dag_key,
)

__all__ = [
    "ALLOWED_FROM",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "REPLAYABLE",
    "RUN_ENDINGS",
    "Claim",
    "ClaimOutcome",
    "NewTrigger",
    "Page",
    "PendingEvent",
    "SourceType",
    "TriggerLedger",
    "TriggerStatus",
    "dag_key",
]
