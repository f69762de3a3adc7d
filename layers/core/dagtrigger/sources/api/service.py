"""DAG runs started by IAM-signed API calls, replays of failed triggers, and history reads.

Runs go through ``execute_trigger`` (claim, trigger with retries, record), so an API trigger has
exactly the history and idempotency of any other; a replay retries a failed trigger in place,
as a redelivery of its event would (``resume_trigger``). A caller's idempotency key names
one request of that caller: a retry with the same key and request gets the answer the record
stands for; the same key with another request is refused. Refusals are domain errors
(``dagtrigger.errors``): the HTTP layer picks their status codes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dagtrigger import ids
from dagtrigger.clock import UtcDatetime
from dagtrigger.conf import check_conf
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import (
    ConflictError,
    InvalidRequestError,
    InvalidTransitionError,
    LedgerContentionError,
    MalformedRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RejectedError,
    TriggerFailedError,
)
from dagtrigger.ledger import REPLAYABLE, NewTrigger, Page, SourceType, TriggerStatus
from dagtrigger.ledger.history import TriggerFilters, find_triggers
from dagtrigger.routes.model import RoutesFile
from dagtrigger.transports.base import EnvironmentRef
from dagtrigger.trigger.execute import (
    TriggerDisposition,
    TriggerOutcome,
    execute_trigger,
    rejection_of,
    resume_trigger,
)

DEFAULT_ENVIRONMENT_ALIAS = "default"
#: times a replay reads the record again after losing a conditional write to another writer
MAX_REPLAY_DECISIONS = 3
#: where a caller's idempotency key arrives
IDEMPOTENCY_KEY_INPUT = ("header", "Idempotency-Key")
#: seconds a caller waits before asking again about a request an earlier call is still running
IN_PROGRESS_RETRY_AFTER = 2


class DagRunRequest(BaseModel):
    """What a caller asks for when it starts a DAG run."""

    model_config = ConfigDict(extra="forbid")

    conf: dict[str, Any] = Field(description="the DAG run's conf: a JSON object")
    environment: ids.Name | None = Field(
        default=None,
        description="environment alias from the routes file; default: the alias 'default', "
        "else the first environment listed",
    )
    note: str | None = Field(
        default=None, max_length=1000, description="free text kept in the trigger record"
    )
    logical_date: UtcDatetime | None = Field(
        default=None, description="the run's logical date, with a time zone; default: Airflow's"
    )


@dataclass(frozen=True)
class Accepted:
    """An accepted trigger's record; ``replayed`` when it answers an earlier, identical request."""

    record: dict[str, Any]
    replayed: bool


def trigger_dag_run(
    dag_id: str,
    request: DagRunRequest,
    *,
    caller: str,
    idempotency_key: str | None,
    deps: Dependencies,
) -> Accepted:
    """Start ``dag_id`` with ``request.conf``; the same key and request answer the same."""
    key = checked_idempotency_key(idempotency_key)
    environment = resolve_environment(deps.routes.get(), request.environment)
    _check_request_conf(request.conf, deps.settings.conf_max_bytes)
    fingerprint = ids.request_fingerprint("dag_run", dag_id, request.model_dump(mode="json"))
    trigger_id, identity = ids.request_trigger_id("api", caller, key)
    existing = _earlier_request(trigger_id, key, fingerprint, deps)
    new = NewTrigger(
        trigger_id=trigger_id,
        source_type=SourceType.API,
        source_key=f"api:{caller}",
        source_identity=identity,
        source_ref={
            "caller": caller,
            "idempotency_key": key,
            "logical_date": request.logical_date and request.logical_date.isoformat(),
        },
        route=None,
        environment=environment.alias,
        dag_id=dag_id,
        dag_run_id=_kept_run_id(existing, "api", key or "request", deps.clock(), trigger_id),
        conf=request.conf,
        event_time=deps.clock(),
        request_fingerprint=fingerprint,
        note=request.note,
        logical_date=request.logical_date,
    )
    outcome = _execute(new, environment, deps)
    if outcome.disposition is TriggerDisposition.DUPLICATE:
        _ensure_same_request(outcome.record, fingerprint)
    return accepted(outcome)


def replay_trigger(
    trigger_id: str, *, caller: str, idempotency_key: str | None, deps: Dependencies
) -> Accepted:
    """Retry a TRIGGER_FAILED or REJECTED trigger in place: its record, DAG run id and conf.

    A replay never starts a second run. The ledger's conditional write makes it the trigger's
    one owner (a redelivery of the original event racing it finds the claim taken, and the other
    way round), and the recorded run id makes Airflow refuse a second run if an earlier attempt
    did start one (Airflow accepted, the answer was lost). A trigger in any other status is
    skipped (``ConflictError``, its ``trigger_status`` in the details). A retry with the
    Idempotency-Key of an earlier replay gets the answer the record stands for; a replay that
    failed again is replayed again.
    """
    key = checked_idempotency_key(idempotency_key)
    record = get_trigger(trigger_id, deps)
    for _ in range(MAX_REPLAY_DECISIONS):
        status = TriggerStatus(record["status"])
        earlier = key is not None and _replayed_with(record, caller, key)
        if status not in REPLAYABLE or (earlier and status is TriggerStatus.REJECTED):
            if earlier:
                return accepted(TriggerOutcome(trigger_id, TriggerDisposition.DUPLICATE, record))
            raise _replay_skipped(record)
        environment = _replay_environment(record, deps)
        try:
            reopened = deps.ledger.reopen_for_replay(
                record, replayed_by=caller, idempotency_key=key
            )
        except InvalidTransitionError as moved:
            record = moved.record  # a redelivery or another replay changed it first: decide again
            continue
        try:
            outcome = resume_trigger(reopened, environment, deps, replayed_by=caller)
        except TriggerFailedError as failed:
            raise _failed_in_time(failed, trigger_id) from failed
        return accepted(outcome)
    raise LedgerContentionError(trigger_id, MAX_REPLAY_DECISIONS)


def get_trigger(trigger_id: str, deps: Dependencies) -> dict[str, Any]:
    record = deps.ledger.get(trigger_id)
    if record is None:
        raise NotFoundError(f"no trigger with id {trigger_id!r}")
    return record


def list_triggers(
    filters: TriggerFilters, *, limit: int, cursor: str | None, deps: Dependencies
) -> Page:
    """One page of triggers, newest first; a DAG without an environment is the default one's."""
    if filters.dag_id is not None and filters.environment is None:
        default = resolve_environment(deps.routes.get(), None).alias
        filters = replace(filters, environment=default)
    return find_triggers(deps.ledger, filters, limit=limit, cursor=cursor, now=deps.clock())


def object_history(
    bucket: str, key: str, *, limit: int, cursor: str | None, deps: Dependencies
) -> Page:
    """Every trigger of ``s3://bucket/key`` (replays included), newest first."""
    filters = TriggerFilters(source=f"s3://{bucket}/{key}")
    return list_triggers(filters, limit=limit, cursor=cursor, deps=deps)


def resolve_environment(routes: RoutesFile, alias: str | None) -> EnvironmentRef:
    """The named environment, else the alias ``default``, else the first one listed."""
    if alias is None:
        chosen = (
            DEFAULT_ENVIRONMENT_ALIAS
            if DEFAULT_ENVIRONMENT_ALIAS in routes.environments
            else next(iter(routes.environments))
        )
        return routes.environment_ref(chosen)
    if alias not in routes.environments:
        known = ", ".join(sorted(routes.environments))
        raise InvalidRequestError(
            f"unknown environment {alias!r} (defined: {known})",
            location=("body", "environment"),
            code="environment_unknown",
        )
    return routes.environment_ref(alias)


def checked_idempotency_key(key: str | None) -> str | None:
    """The key, if it is 1 to 255 visible ASCII characters (no spaces, no control characters)."""
    if key is None or ids.is_idempotency_key(key):
        return key
    raise InvalidRequestError(
        f"the {IDEMPOTENCY_KEY_INPUT[1]} header must be 1 to 255 visible ASCII characters",
        location=IDEMPOTENCY_KEY_INPUT,
        code="idempotency_key_invalid",
    )


def accepted(outcome: TriggerOutcome) -> Accepted:
    """The outcome as an acceptance, or the refusal its record's status means."""
    record = outcome.record
    status = TriggerStatus(record["status"])
    trigger_id = str(record["trigger_id"])
    if status is TriggerStatus.REJECTED:
        raise rejection_of(record)
    if status is TriggerStatus.TRIGGER_FAILED:
        raise TriggerFailedError(
            f"Airflow did not accept trigger {trigger_id!r} in time "
            f"({record.get('last_error', 'no error recorded')}); retry with the same "
            "Idempotency-Key",
            attempts=int(record.get("attempts") or 0),
        )
    if status is TriggerStatus.RECEIVED:
        raise ConflictError(
            f"trigger {trigger_id!r} is still being processed by an earlier request; retry later",
            retry_in_seconds=IN_PROGRESS_RETRY_AFTER,
            details={"trigger_id": trigger_id},
        )
    return Accepted(record, replayed=outcome.disposition is TriggerDisposition.DUPLICATE)


def _check_request_conf(conf: dict[str, Any], max_bytes: int) -> None:
    try:
        check_conf(conf, max_bytes=max_bytes)
    except RejectedError as refused:
        if refused.code == "conf_too_large":
            raise PayloadTooLargeError(refused.message) from None
        if refused.code == "conf_not_unicode":
            raise MalformedRequestError(refused.message) from None
        raise InvalidRequestError(
            refused.message, location=("body", "conf"), code=refused.code
        ) from None


def _earlier_request(
    trigger_id: str, key: str | None, fingerprint: str, deps: Dependencies
) -> dict[str, Any] | None:
    """The record an earlier request with this key left, if it asked for the same thing."""
    existing = deps.ledger.get(trigger_id) if key is not None else None
    if existing is not None:
        _ensure_same_request(existing, fingerprint)
    return existing


def _ensure_same_request(record: dict[str, Any], fingerprint: str) -> None:
    if record.get("request_fingerprint") != fingerprint:
        raise InvalidRequestError(
            "idempotency key reused with a different request: this Idempotency-Key already "
            "names another request; send a new key for a new request",
            code="idempotency_key_reused",
            details={"trigger_id": record.get("trigger_id")},
        )


def _kept_run_id(
    existing: dict[str, Any] | None, kind: str, readable: str, now: datetime, trigger_id: str
) -> str:
    recorded = existing.get("dag_run_id") if existing is not None else None
    return ids.run_id_for_retry(recorded, kind, readable, now, trigger_id)


def _replayed_with(record: dict[str, Any], caller: str, key: str) -> bool:
    """True when ``caller`` replayed ``record`` with ``key`` before (its transitions say so)."""
    return any(
        transition.get("replayed_by") == caller and transition.get("idempotency_key") == key
        for transition in record.get("transitions") or ()
    )


def _replay_skipped(record: dict[str, Any]) -> ConflictError:
    trigger_id, status = record.get("trigger_id"), record.get("status")
    why = (
        "a delivery or another replay is starting its run right now"
        if status == TriggerStatus.RECEIVED
        else "a replay never starts a second run; only TRIGGER_FAILED or REJECTED triggers "
        "are replayed"
    )
    return ConflictError(
        f"skipped: trigger {trigger_id!r} is already {status}: {why}",
        details={"trigger_id": trigger_id, "trigger_status": status},
    )


def _replay_environment(record: dict[str, Any], deps: Dependencies) -> EnvironmentRef:
    """Where the replay starts the recorded run; ``ConflictError`` when it cannot be replayed."""
    trigger_id = record.get("trigger_id")
    target = record.get("asset_uri") or (record.get("dag_id") and record.get("dag_run_id"))
    if not target or not record.get("environment"):
        raise ConflictError(
            f"trigger {trigger_id!r} was recorded without a DAG ({record.get('reason')}); "
            "there is nothing to replay"
        )
    if not isinstance(record.get("conf"), dict):
        why = (
            "its conf was too large to keep"
            if record.get("conf_truncated")
            else "it was recorded without a conf"
        )
        raise ConflictError(f"trigger {trigger_id!r} cannot be replayed: {why}")
    routes = deps.routes.get()
    alias = str(record["environment"])
    if alias not in routes.environments:
        raise ConflictError(
            f"trigger {trigger_id!r} ran on environment {alias!r}, which the routes file no "
            "longer defines"
        )
    return routes.environment_ref(alias)


def _execute(new: NewTrigger, environment: EnvironmentRef, deps: Dependencies) -> TriggerOutcome:
    try:
        return execute_trigger(new, environment, deps)
    except TriggerFailedError as failed:
        raise _failed_in_time(failed, new.trigger_id) from failed


def _failed_in_time(failed: TriggerFailedError, trigger_id: str) -> TriggerFailedError:
    return TriggerFailedError(
        f"Airflow did not accept the trigger in time ({failed.message}); the trigger "
        f"{trigger_id!r} is recorded as TRIGGER_FAILED: retry later with the same "
        "Idempotency-Key, or replay it",
        attempts=failed.attempts,
    )
