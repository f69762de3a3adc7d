"""What a caller asks for (``ScheduleSpec``) and gets back (``ScheduleInfo``, ``SchedulePage``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dagtrigger.clock import UtcDatetime
from dagtrigger.ids import ScheduleName
from dagtrigger.sources.schedules.expressions import parse_schedule_expression
from dagtrigger.sources.schedules.parse import ScheduleTarget
from dagtrigger.sources.schedules.timezones import validate_timezone

ScheduleState = Literal["ENABLED", "DISABLED"]


class RetryPolicy(BaseModel):
    """How long and how often the Scheduler retries delivering a fire to the function."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    maximum_retry_attempts: int = Field(
        default=10, ge=0, le=185, description="retries of a failed delivery (0-185)"
    )
    # A DAG run far past its time is usually worse than none.
    maximum_event_age_seconds: int = Field(
        default=3600, ge=60, le=86400, description="give up on a fire this old (60-86400 s)"
    )

    def to_api(self) -> dict[str, int]:
        return {
            "MaximumRetryAttempts": self.maximum_retry_attempts,
            "MaximumEventAgeInSeconds": self.maximum_event_age_seconds,
        }


class ScheduleSpec(ScheduleTarget):
    """A schedule to create or replace in the stack's schedule group."""

    name: ScheduleName = Field(description="1-64 of A-Z a-z 0-9 _ . -; unique in the group")
    expression: str = Field(
        description="rate(N unit), cron(minutes hours day-of-month month day-of-week year) "
        "or at(yyyy-mm-ddThh:mm:ss)"
    )
    timezone: str = Field(default="UTC", description="IANA time zone the expression is read in")
    flexible_window_minutes: int | None = Field(
        default=None, ge=1, le=1440, description="fire up to this many minutes late (None: on time)"
    )
    state: ScheduleState = "ENABLED"
    start_date: UtcDatetime | None = Field(default=None, description="no fire before this")
    end_date: UtcDatetime | None = Field(default=None, description="no fire after this")
    description: str | None = Field(default=None, max_length=512)
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    delete_after_completion: bool = Field(
        default=False, description="one-time (at) schedules only: delete it once it has fired"
    )

    @field_validator("expression")
    @classmethod
    def _expression_is_valid(cls, value: str) -> str:
        parse_schedule_expression(value)  # ScheduleExpressionError is a ValueError
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_is_iana(cls, value: str) -> str:
        return validate_timezone(value)  # TimezoneError is a ValueError

    @model_validator(mode="after")
    def _dates_and_options_agree(self) -> ScheduleSpec:
        if self.start_date and self.end_date and self.start_date >= self.end_date:
            raise ValueError(
                f"start_date ({self.start_date.isoformat()}) must be before end_date "
                f"({self.end_date.isoformat()})"
            )
        if self.delete_after_completion and not self.expression.startswith("at("):
            raise ValueError(
                "delete_after_completion is for one-time at(...) schedules; "
                f"{self.expression} never completes"
            )
        return self


class ScheduleReplacement(ScheduleSpec):
    """PUT /v1/schedules/{name}: the whole new schedule; ``name`` comes from the path."""

    name: ScheduleName | None = Field(  # type: ignore[assignment]
        default=None, description="optional; when given it must equal the name in the path"
    )


class ScheduleSummary(BaseModel):
    """One schedule as ``list_schedules`` returns it."""

    model_config = ConfigDict(frozen=True)

    name: str
    group: str
    arn: str
    state: str
    target_arn: str
    created_at: datetime | None = None
    modified_at: datetime | None = None


class ScheduleInfo(ScheduleSummary):
    """One schedule in full, as ``get_schedule`` (and create/update) return it.

    ``target`` is None when the schedule's Input was not written by dagtrigger (someone edited
    it by hand): ``managed`` says so, and ``to_spec`` refuses to turn it into a spec.
    """

    expression: str
    timezone: str
    flexible_window_minutes: int | None
    start_date: datetime | None = None
    end_date: datetime | None = None
    description: str | None = None
    target: ScheduleTarget | None
    retry_policy: RetryPolicy | None = None
    dead_letter_arn: str | None = None
    role_arn: str | None = None
    delete_after_completion: bool = False

    @property
    def managed(self) -> bool:
        return self.target is not None

    def to_spec(self) -> ScheduleSpec:
        """The spec that recreates this schedule (for read-modify-write updates)."""
        if self.target is None:
            raise ValueError(
                f"schedule {self.group}/{self.name} has a target Input dagtrigger did not write"
            )
        return ScheduleSpec(
            name=self.name,
            expression=self.expression,
            timezone=self.timezone,
            flexible_window_minutes=self.flexible_window_minutes,
            state="DISABLED" if self.state == "DISABLED" else "ENABLED",
            start_date=self.start_date,
            end_date=self.end_date,
            description=self.description,
            retry_policy=self.retry_policy or RetryPolicy(),
            delete_after_completion=self.delete_after_completion,
            **self.target.model_dump(),
        )


class SchedulePage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[ScheduleSummary]
    next_token: str | None = Field(default=None, description="pass back for the next page")
