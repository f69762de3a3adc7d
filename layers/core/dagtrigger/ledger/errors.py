"""Domain errors of the history ledger (never raw botocore condition failures)."""

from __future__ import annotations

from typing import Any

from dagtrigger.errors import DagTriggerError
from dagtrigger.models import TriggerStatus


class LedgerError(DagTriggerError):
    """Base class for errors the ledger raises on purpose."""


class TriggerNotFoundError(LedgerError):
    def __init__(self, trigger_id: str) -> None:
        super().__init__(f"no trigger record with id {trigger_id!r}")
        self.trigger_id = trigger_id


class InvalidTransitionError(LedgerError):
    """A status change the state machine does not allow from the record's current status."""

    def __init__(
        self,
        trigger_id: str,
        *,
        current: TriggerStatus | str | None,
        requested: TriggerStatus,
        allowed_from: frozenset[TriggerStatus],
        record: dict[str, Any],
    ) -> None:
        allowed = ", ".join(sorted(allowed_from))
        super().__init__(
            f"trigger {trigger_id!r} cannot move from {current} to {requested} "
            f"(allowed only from: {allowed})"
        )
        self.trigger_id = trigger_id
        self.current = current
        self.requested = requested
        self.record = record


class LedgerContentionError(LedgerError):
    """Concurrent writers kept changing the record; the caller should retry the event later."""

    def __init__(self, trigger_id: str, attempts: int) -> None:
        super().__init__(
            f"trigger {trigger_id!r} changed under {attempts} consecutive conditional writes"
        )
        self.trigger_id = trigger_id


class InvalidCursorError(LedgerError, ValueError):
    """A pagination cursor that this ledger did not issue for this query."""
