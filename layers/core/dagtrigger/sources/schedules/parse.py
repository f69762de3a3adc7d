"""The contract between a schedule's target ``Input`` and the schedules function, in one place.

A schedule names what to start (a ``schedules:`` route, or an environment alias and a DAG id)
and an optional ``conf``; EventBridge Scheduler adds its context attributes, replacing each
``<aws.scheduler.*>`` keyword in the Input when it invokes the function::

    {"route": "nightly-sales", "conf": {"region": "eu"},
     "scheduled_time": "<aws.scheduler.scheduled-time>",
     "schedule_arn": "<aws.scheduler.schedule-arn>",
     "execution_id": "<aws.scheduler.execution-id>",
     "attempt": "<aws.scheduler.attempt-number>"}

``build_target_input`` writes that Input (for ``create_schedule`` and the template's example),
``ScheduleInput`` reads what the function receives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from dagtrigger.conf import check_conf, compact_json
from dagtrigger.errors import RejectedError
from dagtrigger.ids import SCHEDULE_ARN_PATTERN, DagId, Name

#: EventBridge Scheduler's context attributes, by the Input key that carries each
CONTEXT_ATTRIBUTES: Final[Mapping[str, str]] = {
    "scheduled_time": "<aws.scheduler.scheduled-time>",
    "schedule_arn": "<aws.scheduler.schedule-arn>",
    "execution_id": "<aws.scheduler.execution-id>",
    "attempt": "<aws.scheduler.attempt-number>",
}
_PLACEHOLDER_PREFIX = "<aws.scheduler."

_SCHEDULE_ARN = re.compile(SCHEDULE_ARN_PATTERN)
#: the conf a schedule may carry, as compact JSON (the function caps the merged conf again)
MAX_SCHEDULE_CONF_BYTES = 32 * 1024

RouteName = Name


class ScheduleTarget(BaseModel):
    """What a schedule starts: a route, or an environment and a DAG directly, plus a conf."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: RouteName | None = Field(default=None, description="a route of the schedules: list")
    environment: RouteName | None = Field(
        default=None, description="environment alias (with dag_id, instead of route)"
    )
    dag_id: DagId | None = Field(default=None, description="DAG id (with environment)")
    conf: dict[str, Any] = Field(
        default_factory=dict,
        description="conf for the run: merged over the route's rendered conf, and available "
        "to its templates as `conf`",
    )

    @field_validator("conf")
    @classmethod
    def _conf_is_small_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            return check_conf(value, max_bytes=MAX_SCHEDULE_CONF_BYTES)
        except RejectedError as rejected:
            raise ValueError(
                f"must be a JSON object of at most {MAX_SCHEDULE_CONF_BYTES} bytes: {rejected}"
            ) from None

    @model_validator(mode="after")
    def _one_target(self) -> ScheduleTarget:
        direct = self.environment is not None or self.dag_id is not None
        if self.route is not None and direct:
            raise ValueError("give either route, or environment and dag_id, not both")
        if self.route is None and not (self.environment and self.dag_id):
            raise ValueError("give a route, or both environment and dag_id")
        return self

    @property
    def target_label(self) -> str:
        """The route's name, or ``environment/dag_id`` for a direct target."""
        return self.route if self.route is not None else f"{self.environment}/{self.dag_id}"


class ScheduleInput(ScheduleTarget):
    """The event the schedules function receives: the Input with context attributes filled in."""

    scheduled_time: AwareDatetime = Field(description="<aws.scheduler.scheduled-time>")
    schedule_arn: str = Field(
        pattern=SCHEDULE_ARN_PATTERN, description="<aws.scheduler.schedule-arn>"
    )
    execution_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="<aws.scheduler.execution-id>"
    )
    attempt: int | None = Field(default=None, ge=1, description="<aws.scheduler.attempt-number>")

    @field_validator("scheduled_time", "schedule_arn", "execution_id", "attempt", mode="before")
    @classmethod
    def _placeholder_was_replaced(cls, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(_PLACEHOLDER_PREFIX):
            raise ValueError(
                f"still holds the keyword {value}: EventBridge Scheduler replaces it only in a "
                "schedule's target Input, so this event did not come from a schedule"
            )
        return value

    @property
    def schedule_group(self) -> str:
        return schedule_arn_parts(self.schedule_arn)[0]

    @property
    def schedule_name(self) -> str:
        return schedule_arn_parts(self.schedule_arn)[1]


def schedule_arn_parts(schedule_arn: str) -> tuple[str, str]:
    """``(group, name)`` of a schedule ARN; ``ValueError`` if it is not one."""
    match = _SCHEDULE_ARN.match(schedule_arn)
    if match is None:
        raise ValueError(f"{schedule_arn!r} is not an EventBridge Scheduler schedule ARN")
    return match.group("group"), match.group("name")


def build_target_input(target: ScheduleTarget) -> str:
    """The target ``Input`` of a schedule that starts ``target`` (JSON text with the keywords)."""
    document: dict[str, Any] = {}
    if target.route is not None:
        document["route"] = target.route
    else:
        document["environment"] = target.environment
        document["dag_id"] = target.dag_id
    if target.conf:
        document["conf"] = target.conf
    document.update(CONTEXT_ATTRIBUTES)
    return compact_json(document)


def read_target_input(text: str | None) -> ScheduleTarget | None:
    """The target an Input written by ``build_target_input`` names; None for any other Input."""
    if not text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or any(
        document.get(key) != keyword for key, keyword in CONTEXT_ATTRIBUTES.items()
    ):
        return None
    fields = {key: value for key, value in document.items() if key not in CONTEXT_ATTRIBUTES}
    try:
        return ScheduleTarget.model_validate(fields)
    except ValueError:
        return None
