"""The schedule path: one EventBridge Scheduler fire becomes at most one DAG run.

The Scheduler invokes the schedules function (asynchronously) with the schedule's Input, its
``<aws.scheduler.*>`` keywords filled in (see ``dagtrigger.sources.schedules.parse``). The
trigger id comes from the schedule ARN and the *scheduled* time, never the execution id, which
changes on every retry: a retried or doubled fire finds the first one's record.

Outcomes: a bad input, an unknown route or a conf that does not render is recorded as REJECTED
and the function returns normally (the Scheduler retrying it would not help); a paused route is
IGNORED; a trigger whose transient failures outlast the budget is recorded as TRIGGER_FAILED and
``TriggerFailedError`` propagates, so Lambda's asynchronous retries (then the function's failure
destination) take over, and the retry finds the record and tries again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from dagtrigger import ids
from dagtrigger.clock import iso_utc
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import RejectedError
from dagtrigger.ledger import NewTrigger, SourceType, TriggerStatus
from dagtrigger.observability import logger, record_lateness
from dagtrigger.sources.schedules.parse import CONTEXT_ATTRIBUTES, ScheduleInput, schedule_arn_parts
from dagtrigger.sources.schedules.plan import (
    INVALID_INPUT,
    fire_identity,
    fire_trigger_identity,
    plan_fire,
)
from dagtrigger.trigger.execute import (
    TriggerDisposition,
    TriggerOutcome,
    execute_trigger,
    record_without_trigger,
)
from dagtrigger.trigger.verdict import RouteVerdict, Verdict
from dagtrigger.validation import (
    FieldProblem,
    field_problems,
    format_location,
    short_repr,
)

#: what a field should look like, instead of pydantic's regular expression
_EXPECTED_FORMS = {
    "schedule_arn": "not a schedule ARN (arn:aws:scheduler:REGION:ACCOUNT:schedule/GROUP/NAME)",
    "route": "a route name is lower-case letters, digits, '_' and '-', "
    "not starting with '_' or '-'",
    "environment": "an environment alias is lower-case letters, digits, '_' and '-', "
    "not starting with '_' or '-'",
    "dag_id": "a DAG id is at most 250 ASCII letters, digits, '_', '.' and '-', "
    "not starting with '.' or '-'",
}
#: error types whose message does not already show the value at fault
_SHOWS_VALUE = frozenset(
    {
        "string_pattern_mismatch",
        "int_parsing",
        "datetime_parsing",
        "datetime_from_date_parsing",
        "timezone_aware",
        "greater_than_equal",
        "string_too_long",
        "string_too_short",
        "string_type",
    }
)
_INPUT_KEYS = ", ".join(ScheduleInput.model_fields)


@dataclass(frozen=True)
class ScheduledTriggerResult:
    """What became of one fire (the function returns ``as_response()``)."""

    trigger_id: str
    disposition: TriggerDisposition
    status: str | None
    dag_run_id: str | None
    scheduled_time: str | None
    lateness_seconds: float | None
    reason: str | None = None

    def as_response(self) -> dict[str, Any]:
        response = {
            "trigger_id": self.trigger_id,
            "disposition": str(self.disposition),
            "status": self.status,
            "dag_run_id": self.dag_run_id,
            "scheduled_time": self.scheduled_time,
            "lateness_seconds": self.lateness_seconds,
        }
        if self.reason:
            response["reason"] = self.reason
        return response


class InvalidScheduleInputError(RejectedError):
    """The event is not a schedule input this function understands; says which field and why."""

    def __init__(self, message: str, *, event: Any) -> None:
        super().__init__(INVALID_INPUT, message)
        self.event = event


def handle_scheduled_trigger(event: Any, deps: Dependencies) -> ScheduledTriggerResult:
    """Start the DAG run one fire asks for, at most once per schedule and scheduled time.

    Raises only when the invocation should be retried (``TriggerFailedError``, a ledger or
    routes-file failure); every permanent problem is recorded and returned.
    """
    try:
        fire = parse_schedule_input(event)
    except InvalidScheduleInputError as invalid:
        return _result(_record_invalid_input(invalid, deps))
    logger.append_keys(
        schedule_arn=fire.schedule_arn,
        scheduled_time=iso_utc(fire.scheduled_time),
        execution_id=fire.execution_id,
        attempt=fire.attempt,
    )
    outcome = _trigger_fire(fire, deps)
    result = _result(outcome)
    if outcome.disposition in {TriggerDisposition.TRIGGERED, TriggerDisposition.ALREADY_TRIGGERED}:
        _publish_lateness(result.lateness_seconds)
    return result


def parse_schedule_input(event: Any) -> ScheduleInput:
    """Validate the event against the schedule input contract, or say what is wrong and where."""
    document = event
    if isinstance(event, str | bytes):
        try:
            document = json.loads(event)
        except ValueError as exc:
            raise InvalidScheduleInputError(
                f"the schedule input is not JSON: {exc}", event=event
            ) from None
    if not isinstance(document, dict):
        raise InvalidScheduleInputError(
            f"the schedule input must be a JSON object, not {type(document).__name__}",
            event=event,
        )
    try:
        return ScheduleInput.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(_describe(problem) for problem in field_problems(exc))
        raise InvalidScheduleInputError(
            f"invalid schedule input: {problems}", event=document
        ) from None


def lateness_seconds(record: Mapping[str, Any]) -> float | None:
    """Seconds from a record's scheduled time to when it was triggered (else first recorded)."""
    scheduled = _parse_time(record.get("scheduled_time"))
    acted = _parse_time(record.get("triggered_at")) or _parse_time(record.get("created_at"))
    if scheduled is None or acted is None:
        return None
    return round((acted - scheduled).total_seconds(), 3)


# ------------------------------------------------------------------------------- valid fires


def _trigger_fire(fire: ScheduleInput, deps: Dependencies) -> TriggerOutcome:
    routes = deps.routes.get()  # a broken routes file raises: the retry may find it fixed
    plan = plan_fire(fire, routes, conf_max_bytes=deps.settings.conf_max_bytes)
    verdict, new = plan.verdict, _new_trigger(fire, plan.verdict)
    if verdict.verdict is not Verdict.TRIGGER or plan.environment is None:
        return record_without_trigger(
            new,
            deps,
            status=verdict.recorded_status,
            code=str(verdict.code),
            message=verdict.reason,
        )
    return execute_trigger(new, plan.environment, deps)


def _new_trigger(fire: ScheduleInput, verdict: RouteVerdict) -> NewTrigger:
    identity, trigger_id = fire_trigger_identity(fire)
    return NewTrigger(
        trigger_id=trigger_id,
        source_type=SourceType.SCHEDULE,
        source_key=fire.schedule_arn,
        source_identity=identity,
        source_ref=_source_ref(fire),
        route=fire.route,
        environment=verdict.environment,
        dag_id=verdict.dag_id,
        dag_run_id=verdict.dag_run_id,
        asset_uri=verdict.asset,
        conf=verdict.conf,
        scheduled_time=fire.scheduled_time,
    )


def _source_ref(fire: ScheduleInput) -> dict[str, Any]:
    return {
        "schedule_arn": fire.schedule_arn,
        "schedule_group": fire.schedule_group,
        "schedule_name": fire.schedule_name,
        "scheduled_time": iso_utc(fire.scheduled_time),
        "execution_id": fire.execution_id,
        "attempt": fire.attempt,
        "target": fire.target_label,
    }


# ----------------------------------------------------------------------------- invalid input


def _record_invalid_input(invalid: InvalidScheduleInputError, deps: Dependencies) -> TriggerOutcome:
    """REJECTED, keyed by the schedule and time the event names when those are readable."""
    event = invalid.event if isinstance(invalid.event, dict) else {}
    schedule_arn = _readable_arn(event.get("schedule_arn"))
    scheduled_time = _parse_time(event.get("scheduled_time"))
    if schedule_arn and scheduled_time:
        identity = fire_identity(schedule_arn, scheduled_time)
    else:
        identity = f"schedule-input#sha256={_digest_without_retry_fields(invalid.event)}"
    new = NewTrigger(
        trigger_id=ids.trigger_id(identity, ""),  # "": valid fires always name a target
        source_type=SourceType.SCHEDULE,
        source_key=schedule_arn or f"schedule-input:{identity[-16:]}",
        source_identity=identity,
        source_ref={"input_prefix": _text_of(invalid.event)[:512]},
        scheduled_time=scheduled_time,
    )
    return record_without_trigger(
        new, deps, status=TriggerStatus.REJECTED, code=invalid.code, message=invalid.message
    )


def _readable_arn(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        schedule_arn_parts(value)
    except ValueError:
        return None
    return value


def _digest_without_retry_fields(event: Any) -> str:
    """The same fire retried differs only in execution id and attempt: leave those out."""
    if isinstance(event, dict):
        event = {
            key: value for key, value in event.items() if key not in ("execution_id", "attempt")
        }
    return hashlib.sha256(_text_of(event).encode("utf-8", "surrogatepass")).hexdigest()


def _text_of(event: Any) -> str:
    if isinstance(event, str):
        return event
    if isinstance(event, bytes):
        return event.decode("utf-8", "replace")
    try:
        return json.dumps(event, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(event)


def _describe(problem: FieldProblem) -> str:
    """``field: message``, with the form a field takes, or the value it got, where it helps."""
    where = format_location(problem.location, top_level="input")
    if problem.type == "extra_forbidden":
        return f"{where}: unknown key (expected some of: {_INPUT_KEYS})"
    message = problem.message
    if problem.type == "string_pattern_mismatch" and where in _EXPECTED_FORMS:
        message = _EXPECTED_FORMS[where]
    if problem.type == "missing" and where in CONTEXT_ATTRIBUTES:
        message += f" (put {CONTEXT_ATTRIBUTES[where]} in the schedule's Input)"
    if problem.type in _SHOWS_VALUE and isinstance(problem.input, str | int | float | bool):
        message += f" (got {short_repr(problem.input)})"
    return f"{where}: {message}"


# ---------------------------------------------------------------------------------- results


def _result(outcome: TriggerOutcome) -> ScheduledTriggerResult:
    record = outcome.record
    return ScheduledTriggerResult(
        trigger_id=outcome.trigger_id,
        disposition=outcome.disposition,
        status=record.get("status"),
        dag_run_id=record.get("dag_run_id"),
        scheduled_time=record.get("scheduled_time"),
        lateness_seconds=lateness_seconds(record),
        reason=record.get("reason"),
    )


def _publish_lateness(seconds: float | None) -> None:
    if seconds is None:
        return
    record_lateness(seconds)
    logger.info("scheduled fire triggered", extra={"lateness_seconds": seconds})


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else None
