"""The trigger history ledger (DynamoDB): claims, status changes and history queries."""

from dagtrigger.ledger.ledger import ALLOWED_FROM, TriggerLedger
from dagtrigger.ledger.records import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    Claim,
    ClaimOutcome,
    NewTrigger,
    Page,
    SourceType,
    TriggerStatus,
    dag_key,
)

__all__ = [
    "ALLOWED_FROM",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "Claim",
    "ClaimOutcome",
    "NewTrigger",
    "Page",
    "SourceType",
    "TriggerLedger",
    "TriggerStatus",
    "dag_key",
]
