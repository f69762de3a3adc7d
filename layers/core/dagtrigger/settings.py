"""The one settings model, read from environment variables and validated once per cold start."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dagtrigger.errors import SettingsError
from dagtrigger.ids import (
    ARN_PATTERN,
    EVENT_BUS_NAME_PATTERN,
    SCHEDULE_NAME_PATTERN,
    SNS_TOPIC_ARN_PATTERN,
    MwaaEnvironmentName,
)
from dagtrigger.validation import Location, field_problems, format_location


class Settings(BaseSettings):
    """Every environment variable dagtrigger reads. Names are the upper-cased field names."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    table_name: str = Field(
        min_length=3, max_length=255, description="DynamoDB trigger history table"
    )
    routes_location: str = Field(
        default="bundled:routes.yaml",
        description="bundled:NAME (file in the layer), file:PATH, ssm:/PARAMETER/NAME or s3://BUCKET/KEY",
    )
    routes_cache_seconds: int = Field(default=60, ge=0, le=3600)
    mwaa_environment_names: Annotated[tuple[MwaaEnvironmentName, ...], NoDecode] = Field(
        default=(),
        description="the environments the stack's IAM grants, comma separated (the template's "
        "MwaaEnvironmentNames): a routes file whose environment names another is refused when "
        "it loads; empty: no check (local tools and tests)",
    )
    set_manifest_location: str | None = Field(
        default=None,
        description="where the stack's IAM lets file sets write manifests (the template's "
        "SetManifestLocation; empty: nowhere): a route's set.manifest elsewhere is refused when "
        "the routes file loads; unset: no check (local tools and tests)",
    )
    record_ignored: bool = Field(
        default=True,
        description="record unrouted objects and S3 events other than Object Created as IGNORED",
    )
    ignored_ttl_days: int = Field(default=7, ge=1, le=3650)
    history_ttl_days: int = Field(default=90, ge=1, le=3650)
    conf_max_bytes: int = Field(default=32 * 1024, ge=2, le=256 * 1024)
    trigger_budget_seconds: float = Field(
        default=20.0, gt=0, le=600, description="time allowed for retries of one trigger"
    )
    rest_api_max_tps: float = Field(
        default=5.0, gt=0, le=100, description="InvokeRestApi/REST calls per second per instance"
    )
    mwaa_calls_per_second: int = Field(
        default=10,
        ge=1,
        le=100,
        description="calls a second to one environment from every function together (MWAA's "
        "InvokeRestApi allows about 10), counted in the table",
    )
    background_calls_per_second: int = Field(
        default=3,
        ge=1,
        le=100,
        description="the part of that second the reconciler may use, and only while triggers "
        "leave it free",
    )
    rate_budget_wait_seconds: float = Field(
        default=5.0, ge=0, le=60, description="longest wait of a trigger for a slot in the budget"
    )
    reconcile_interval_seconds: int = Field(
        default=60,
        ge=10,
        le=3600,
        description="how often the reconciler runs (its schedule in the template): old records "
        "are read every few passes, young ones every pass",
    )
    reconcile_horizon_hours: int = Field(
        default=72,
        ge=1,
        le=24 * 90,
        description="how long a run is followed; a record still open after it ends as UNKNOWN "
        "with the reason",
    )
    run_event_bus_name: str = Field(
        default="default",
        pattern=EVENT_BUS_NAME_PATTERN,
        description="EventBridge bus in this account and region that gets one 'DAG Run Finished' "
        "event per run that ends (SUCCESS, FAILED, UNKNOWN)",
    )
    run_failure_topic_arn: str | None = Field(
        default=None,
        pattern=SNS_TOPIC_ARN_PATTERN,
        description="SNS topic told of each FAILED or UNKNOWN run; empty: none",
    )
    retry_backoff_base_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="wait before an SQS message that failed is delivered again; doubles per "
        "receive (with jitter) up to retry_backoff_max_seconds",
    )
    retry_backoff_max_seconds: int = Field(default=900, ge=1, le=43_200)
    trigger_lease_seconds: int = Field(
        default=120,
        ge=10,
        le=3600,
        description="how long a claimed trigger is owned before a redelivery may take it over; "
        "at least the function timeout",
    )
    connect_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="seconds to open a connection to MWAA, Airflow or an AWS API: what a "
        "black-holed endpoint costs (botocore's own default is 60 s)",
    )
    read_timeout_seconds: float = Field(
        default=15.0, gt=0, le=120, description="seconds to wait for MWAA's or Airflow's answer"
    )
    cli_lock_seconds: int = Field(
        default=30, ge=1, le=900, description="lease on an environment's CLI while a command runs"
    )
    mwaa_inject_host_prefix: bool = Field(
        default=True, description="false only when AWS_ENDPOINT_URL_MWAA points at an emulator"
    )
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION")

    # --- the HTTP API (schedule management, webhooks, answers while Airflow is down) ---
    schedule_group_name: str | None = Field(
        default=None,
        pattern=SCHEDULE_NAME_PATTERN,
        description="EventBridge Scheduler group the stack owns; schedules are managed only there",
    )
    schedule_target_arn: str | None = Field(
        default=None,
        pattern=ARN_PATTERN,
        description="the schedules function every schedule invokes",
    )
    scheduler_role_arn: str | None = Field(
        default=None, pattern=ARN_PATTERN, description="role EventBridge Scheduler assumes"
    )
    schedule_dlq_arn: str | None = Field(
        default=None, pattern=ARN_PATTERN, description="SQS queue for fires that keep failing"
    )
    webhook_secret_max_age_seconds: int = Field(
        default=300, ge=0, le=3600, description="how long a webhook secret is cached"
    )
    webhook_replay_window_seconds: int = Field(
        default=300,
        ge=30,
        le=86400,
        description="how far a webhook's signed timestamp may be from now: a replay inside "
        "the window is a duplicate of the recorded delivery, one outside it is refused (a "
        "scheme without a signed timestamp dedupes for as long as the record is kept)",
    )
    webhook_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=10 * 1024 * 1024,
        description="largest webhook body accepted (HTTP APIs cap payloads at 10 MB)",
    )
    retry_after_seconds: int = Field(
        default=30, ge=1, le=3600, description="Retry-After sent with 503 while Airflow is down"
    )

    @field_validator("mwaa_environment_names", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # The template joins its CommaDelimitedList parameter with commas.
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("run_failure_topic_arn", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        # The template passes its optional parameters on as "" when they are not given.
        return None if value == "" else value

    @model_validator(mode="after")
    def _cli_requests_end_inside_their_lease(self) -> Settings:
        # A CLI request must give up (connect + read) at least 5 s before the lease that keeps
        # other commands off the environment ends; leave at least 1 s to read the answer.
        if self.cli_lock_seconds < self.connect_timeout_seconds + 6:
            raise ValueError(
                f"cli_lock_seconds ({self.cli_lock_seconds}) must be at least "
                f"connect_timeout_seconds ({self.connect_timeout_seconds:g}) + 6"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the validated settings; a missing or malformed variable fails here, by name."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"{_variable_name(problem.location)}: {problem.message}"
            for problem in field_problems(exc)
        ]
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None


def _variable_name(location: Location) -> str:
    """The environment variable a settings field is read from: ``TABLE_NAME``."""
    return format_location(location).upper() if location else "environment"
