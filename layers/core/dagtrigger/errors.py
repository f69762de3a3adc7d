"""Every exception dagtrigger raises on purpose, in one place.

Three families:

* a trigger's fate: ``RejectedError`` (the event's own fault, recorded, never retried),
  ``TransientTriggerError`` (worth retrying) and ``TriggerFailedError`` (retries ran out);
* refusals of a request (``RequestError`` and its kinds: not found, conflict, invalid ...),
  raised by services; only the HTTP layer turns them into status codes;
* the ledger's own (a transition the state machine forbids, contention, a foreign cursor).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagtrigger.ledger.records import TriggerStatus


class DagTriggerError(Exception):
    """Base class for every error dagtrigger raises on purpose."""


class SettingsError(DagTriggerError):
    """An environment variable is missing or malformed (raised at cold start)."""


@dataclass(frozen=True)
class RoutesFileProblem:
    """One thing wrong with a routes file: the field (``s3[2].dag_id``; None for a problem of
    the YAML itself), its line (None when unknown) and what is wrong."""

    location: str | None
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.location or ""
        if self.line is not None:
            where = f"{where} (line {self.line})" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message


class RoutesConfigError(DagTriggerError):
    """The routes file is invalid. The message names the field and line at fault; ``problems``
    holds each one (empty when the file could not be read at all)."""

    def __init__(self, message: str, *, problems: Sequence[RoutesFileProblem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class RejectedError(DagTriggerError):
    """A permanent problem with one event: recorded as REJECTED, never retried.

    ``code`` is a short machine-readable reason (``conf_not_object``, ``dag_not_found`` ...),
    ``str(exc)`` the human explanation, keeping Airflow's own message where there is one.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        attempts: int = 1,
        trigger_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        #: Airflow's status when Airflow refused (not ours to answer with)
        self.http_status = http_status
        #: calls to Airflow made before the rejection (set by the retry loop)
        self.attempts = attempts
        #: the record that says so, when the rejection was recorded
        self.trigger_id = trigger_id


class TransientTriggerError(DagTriggerError):
    """A failure worth retrying: throttling, 5xx, timeouts, connection errors, a busy CLI."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class AccessRefusedError(DagTriggerError):
    """Airflow or MWAA refused our identity: a role without permission, an expired or rotated
    credential, a secret that no longer matches; or the routes name an MWAA environment that
    does not exist (``environment_not_found``). Not the event's fault, so never a rejection:
    the trigger fails at once (retrying inside the budget cannot help), the event is kept for
    its queue to deliver again, and a metric raises an alarm.

    ``code`` names the refusal (``mwaa_access_denied``, ``airflow_unauthorized`` ...).
    """

    def __init__(self, code: str, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


class TriggerFailedError(DagTriggerError):
    """The trigger did not start, but the event is not at fault: transient failures outlasted
    the retry budget, or our access was refused (``access_refused``). The record says
    TRIGGER_FAILED and the event's queue delivers it again later (then its DLQ)."""

    def __init__(self, message: str, *, attempts: int, access_refused: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = attempts
        self.access_refused = access_refused


# --- refusals of a request: services raise them, the HTTP layer alone picks the status ------


class RequestError(DagTriggerError):
    """A request that cannot be served as asked.

    ``location`` names the input at fault (``("body", "environment")``); ``code`` says why in
    a word; ``retry_in_seconds`` asks the caller to come back that soon (None: when the
    deployment's setting says, where a retry makes sense); ``details`` are facts the answer
    carries (a trigger id ...).
    """

    def __init__(
        self,
        message: str,
        *,
        location: tuple[str | int, ...] | None = None,
        code: str | None = None,
        retry_in_seconds: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.code = code
        self.retry_in_seconds = retry_in_seconds
        self.details = dict(details or {})


class NotFoundError(RequestError):
    """What the request names does not exist (a trigger, a schedule, a webhook)."""


class ConflictError(RequestError):
    """The request clashes with the current state (already exists, still in progress ...)."""


class InvalidRequestError(RequestError):
    """Well-formed input that does not fit (an unknown environment, a reused key ...)."""


class MalformedRequestError(RequestError):
    """Input that cannot be read at all (not JSON, a cursor we did not issue ...)."""


class PayloadTooLargeError(RequestError):
    """A body over its size limit."""


class UnauthenticatedError(RequestError):
    """The caller could not be authenticated; the answer never says why."""


class ThrottledError(RequestError):
    """A service we call is throttling or over a quota: try again later."""


class UnavailableError(RequestError):
    """Something the request needs is down, busy or not configured."""


# --- the history ledger (never raw botocore condition failures) ---------------------------


class LedgerError(DagTriggerError):
    """Base class for errors the ledger raises on purpose."""


class TriggerNotFoundError(LedgerError, NotFoundError):
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


class InvalidCursorError(LedgerError, MalformedRequestError, ValueError):
    """A pagination cursor that this ledger did not issue for this query."""
