"""Start DAG runs over the API, and replay triggers that failed or were rejected.

Both go through ``execute_trigger`` (claim, trigger with retries, record), so an API trigger
has exactly the history and idempotency of any other. What is API-specific is answering:
an accepted trigger is a 202, a rejected one the problem that says why, and a trigger that ran
out of retries a 503 with ``Retry-After``; a retry with the same ``Idempotency-Key`` gets the
same answer, read back from the record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dagtrigger import ids
from dagtrigger.api.context import ApiDependencies
from dagtrigger.api.idempotency import (
    ensure_same_request,
    fingerprint,
    trigger_id_for,
)
from dagtrigger.api.models import DagRunRequest, Links, TriggerAccepted, trigger_link
from dagtrigger.api.problems import (
    ApiProblem,
    ProblemCode,
    unavailable,
    validation_problem,
)
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import TriggerFailedError
from dagtrigger.ledger import NewTrigger, SourceType, TriggerStatus
from dagtrigger.routes.model import RoutesFile
from dagtrigger.transports.base import EnvironmentRef
from dagtrigger.trigger.execute import TriggerDisposition, TriggerOutcome, execute_trigger

DEFAULT_ENVIRONMENT_ALIAS = "default"
REPLAYABLE = frozenset({TriggerStatus.TRIGGER_FAILED, TriggerStatus.REJECTED})
#: seconds a client waits before asking again about a request another call is still running
IN_PROGRESS_RETRY_AFTER = 2

#: reject codes whose cause is the caller's input, and the problem each one is answered with
_CLIENT_REJECTIONS: dict[str, ProblemCode] = {
    "dag_not_found": ProblemCode.NOT_FOUND,
    "conf_too_large": ProblemCode.PAYLOAD_TOO_LARGE,
    "conf_not_object": ProblemCode.VALIDATION_ERROR,
    "conf_not_json": ProblemCode.VALIDATION_ERROR,
    "conf_rejected": ProblemCode.VALIDATION_ERROR,
    "bad_request": ProblemCode.VALIDATION_ERROR,
    "template_error": ProblemCode.VALIDATION_ERROR,
}


@dataclass(frozen=True)
class Accepted:
    """A 202 answer; ``replayed`` is true when it repeats the answer to an earlier request."""

    body: TriggerAccepted
    replayed: bool


# ---------------------------------------------------------------------------------------------
# POST /v1/dags/{dag_id}/runs
# ---------------------------------------------------------------------------------------------


def trigger_dag_run(
    dag_id: str,
    request: DagRunRequest,
    *,
    caller: str,
    idempotency_key: str | None,
    deps: ApiDependencies,
) -> Accepted:
    """Start ``dag_id`` with ``request.conf``; the same key and request answer the same."""
    core = deps.core
    routes = core.routes.get()
    environment = resolve_environment(routes, request.environment)
    ensure_conf_size(request.conf, core.settings.conf_max_bytes)
    request_fingerprint = fingerprint("dag_run", dag_id, request.model_dump(mode="json"))
    trigger_id, identity = trigger_id_for("api", caller, idempotency_key)
    existing = core.ledger.get(trigger_id) if idempotency_key is not None else None
    if existing is not None:
        ensure_same_request(existing, request_fingerprint)
    readable = idempotency_key or "request"
    new = NewTrigger(
        trigger_id=trigger_id,
        source_type=SourceType.API,
        source_key=f"api:{caller}",
        source_identity=identity,
        source_ref={
            "caller": caller,
            "idempotency_key": idempotency_key,
            "logical_date": request.logical_date and request.logical_date.isoformat(),
        },
        route=None,
        environment=environment.alias,
        dag_id=dag_id,
        dag_run_id=kept_run_id(existing, "api", readable, core.clock(), trigger_id),
        conf=request.conf,
        event_time=core.clock(),
        request_fingerprint=request_fingerprint,
        note=request.note,
    )
    outcome = _run(new, environment, core, logical_date=request.logical_date, deps=deps)
    if outcome.disposition is TriggerDisposition.DUPLICATE:
        ensure_same_request(outcome.record, request_fingerprint)
    return answer_for(outcome.record, replayed=outcome.disposition is TriggerDisposition.DUPLICATE)


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
        raise validation_problem(
            f"unknown environment {alias!r} (defined: {known})",
            loc=["body", "environment"],
            error_type="environment_unknown",
        )
    return routes.environment_ref(alias)


def ensure_conf_size(conf: dict[str, Any], max_bytes: int) -> None:
    """413 when the conf's compact JSON is over ``max_bytes`` UTF-8 bytes."""
    try:
        text = json.dumps(conf, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        # Python's JSON parser admits NaN and Infinity; JSON (and Airflow) do not.
        raise validation_problem(
            "conf holds NaN or Infinity, which JSON does not allow",
            loc=["body", "conf"],
            error_type="conf_not_json",
        ) from None
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise ApiProblem(
            ProblemCode.PAYLOAD_TOO_LARGE,
            f"conf is {size} bytes of JSON, over the limit of {max_bytes} bytes",
        )


# ---------------------------------------------------------------------------------------------
# POST /v1/triggers/{id}/replay
# ---------------------------------------------------------------------------------------------


def replay_trigger(
    trigger_id: str, *, caller: str, idempotency_key: str | None, deps: ApiDependencies
) -> Accepted:
    """Start a new trigger, linked by ``replay_of``, with the original's DAG, environment, conf."""
    core = deps.core
    original = core.ledger.get(trigger_id)
    if original is None:
        raise ApiProblem(ProblemCode.NOT_FOUND, f"no trigger with id {trigger_id!r}")
    conf = _replayable_conf(original)
    routes = core.routes.get()
    alias = str(original["environment"])
    if alias not in routes.environments:
        raise ApiProblem(
            ProblemCode.CONFLICT,
            f"trigger {trigger_id!r} ran on environment {alias!r}, which the routes file no "
            "longer defines",
        )
    environment = routes.environment_ref(alias)
    request_fingerprint = fingerprint("replay", trigger_id)
    new_id, identity = trigger_id_for(f"replay:{trigger_id}", caller, idempotency_key)
    existing = core.ledger.get(new_id) if idempotency_key is not None else None
    if existing is not None:
        ensure_same_request(existing, request_fingerprint)
    new = NewTrigger(
        trigger_id=new_id,
        source_type=SourceType(original["source_type"]),
        source_key=str(original["source_key"]),  # history by source shows the replay too
        source_identity=identity,
        source_ref={
            "replay_of": trigger_id,
            "requested_by": caller,
            "idempotency_key": idempotency_key,
            "original": original.get("source_ref") or {},
        },
        route=original.get("route"),
        environment=alias,
        dag_id=str(original["dag_id"]),
        dag_run_id=kept_run_id(existing, "replay", str(original["dag_id"]), core.clock(), new_id),
        conf=conf,
        event_time=core.clock(),
        replay_of=trigger_id,
        request_fingerprint=request_fingerprint,
        note=f"replay of {trigger_id}",
    )
    outcome = _run(new, environment, core, logical_date=None, deps=deps)
    return answer_for(outcome.record, replayed=outcome.disposition is TriggerDisposition.DUPLICATE)


def _replayable_conf(original: dict[str, Any]) -> dict[str, Any]:
    trigger_id = original.get("trigger_id")
    status = original.get("status")
    if status not in REPLAYABLE:
        raise ApiProblem(
            ProblemCode.CONFLICT,
            f"trigger {trigger_id!r} is {status}; only TRIGGER_FAILED or REJECTED triggers "
            "can be replayed",
        )
    if not original.get("dag_id") or not original.get("environment"):
        raise ApiProblem(
            ProblemCode.CONFLICT,
            f"trigger {trigger_id!r} was recorded without a DAG ({original.get('reason')}); "
            "there is nothing to replay",
        )
    conf = original.get("conf")
    if not isinstance(conf, dict):
        why = (
            "its conf was too large to keep"
            if original.get("conf_truncated")
            else "it was recorded without a conf"
        )
        raise ApiProblem(ProblemCode.CONFLICT, f"trigger {trigger_id!r} cannot be replayed: {why}")
    return conf


# ---------------------------------------------------------------------------------------------
# Shared
# ---------------------------------------------------------------------------------------------


def answer_for(record: dict[str, Any], *, replayed: bool) -> Accepted:
    """The answer a record stands for: 202, or the problem its status means."""
    status = TriggerStatus(record["status"])
    trigger_id = str(record["trigger_id"])
    if status is TriggerStatus.REJECTED:
        raise rejection_problem(record)
    if status is TriggerStatus.TRIGGER_FAILED:
        raise unavailable(
            f"Airflow did not accept trigger {trigger_id!r} in time "
            f"({record.get('last_error', 'no error recorded')}); retry with the same "
            "Idempotency-Key",
            retry_after_seconds=IN_PROGRESS_RETRY_AFTER,
        )
    if status is TriggerStatus.RECEIVED:
        raise ApiProblem(
            ProblemCode.CONFLICT,
            f"trigger {trigger_id!r} is still being processed by an earlier request; retry later",
            headers={"Retry-After": str(IN_PROGRESS_RETRY_AFTER)},
            extensions={"trigger_id": trigger_id},
        )
    return Accepted(
        body=TriggerAccepted(
            trigger_id=trigger_id,
            dag_run_id=record.get("dag_run_id"),
            status=status,
            environment=record.get("environment"),
            dag_id=record.get("dag_id"),
            replay_of=record.get("replay_of"),
            links=Links(self_=trigger_link(trigger_id)),
        ),
        replayed=replayed,
    )


def rejection_problem(record: dict[str, Any]) -> ApiProblem:
    """A REJECTED record as a problem: 404 for an unknown DAG, 413/422 for a bad conf ..."""
    code = str(record.get("reject_code") or "")
    trigger_id = record.get("trigger_id")
    extensions = {"trigger_id": trigger_id, "reject_code": code}
    reason = str(record.get("reason") or "rejected")
    problem_code = _CLIENT_REJECTIONS.get(code)
    if problem_code is None:
        return ApiProblem(
            ProblemCode.INTERNAL,
            f"Airflow refused trigger {trigger_id!r} for a reason of ours ({code}); "
            "see the trigger record",
            extensions=extensions,
        )
    return ApiProblem(problem_code, reason, extensions=extensions)


def kept_run_id(
    existing: dict[str, Any] | None, kind: str, readable: str, now: datetime, trigger_id: str
) -> str:
    """A retry of a recorded trigger keeps its run id: Airflow then refuses a second run."""
    if existing is not None and existing.get("dag_run_id"):
        return str(existing["dag_run_id"])
    return ids.dag_run_id(kind, readable, now, trigger_id)


def _run(
    new: NewTrigger,
    environment: EnvironmentRef,
    core: Dependencies,
    *,
    logical_date: datetime | None,
    deps: ApiDependencies,
) -> TriggerOutcome:
    try:
        return execute_trigger(new, environment, core, logical_date=logical_date)
    except TriggerFailedError as failed:
        raise unavailable(
            f"Airflow did not accept the trigger in time ({failed.message}); the trigger "
            f"{new.trigger_id!r} is recorded as TRIGGER_FAILED: retry later with the same "
            "Idempotency-Key, or replay it",
            retry_after_seconds=deps.settings.retry_after_seconds,
        ) from failed
