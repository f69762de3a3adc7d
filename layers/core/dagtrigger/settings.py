"""The one settings model, read from environment variables and validated once per cold start."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from dagtrigger.errors import SettingsError
from dagtrigger.ids import ARN_PATTERN, SCHEDULE_NAME_PATTERN
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
    record_ignored: bool = Field(default=True, description="record unrouted objects as IGNORED")
    ignored_ttl_days: int = Field(default=7, ge=1, le=3650)
    history_ttl_days: int = Field(default=90, ge=1, le=3650)
    conf_max_bytes: int = Field(default=32 * 1024, ge=2, le=256 * 1024)
    trigger_budget_seconds: float = Field(
        default=20.0, gt=0, le=600, description="time allowed for retries of one trigger"
    )
    rest_api_max_tps: float = Field(
        default=5.0, gt=0, le=100, description="InvokeRestApi/REST calls per second per instance"
    )
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
    webhook_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=10 * 1024 * 1024,
        description="largest webhook body accepted (HTTP APIs cap payloads at 10 MB)",
    )
    retry_after_seconds: int = Field(
        default=30, ge=1, le=3600, description="Retry-After sent with 503 while Airflow is down"
    )


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
