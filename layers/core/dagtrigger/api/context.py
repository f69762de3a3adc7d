"""What the HTTP API needs beyond the core dependencies: its own settings and clients.

``ApiSettings`` holds the variables only the api function reads (the lead merges them into
``dagtrigger.settings`` later; the names stay the same). Tests build ``ApiDependencies``
themselves with moto-backed clients and a recording transport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import BaseProvider
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from dagtrigger import aws
from dagtrigger.dependencies import Dependencies, get_dependencies
from dagtrigger.errors import SettingsError

ARN_PATTERN = r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+$"
SCHEDULE_GROUP_PATTERN = r"^[0-9a-zA-Z-_.]{1,64}$"


class ApiSettings(BaseSettings):
    """Environment variables of the api function (names are the upper-cased field names)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    schedule_group_name: str | None = Field(
        default=None,
        pattern=SCHEDULE_GROUP_PATTERN,
        description="EventBridge Scheduler group the stack owns; schedules are managed only there",
    )
    schedule_target_arn: str | None = Field(
        default=None,
        pattern=ARN_PATTERN,
        description="the schedules function every schedule invokes",
    )
    scheduler_role_arn: str | None = Field(
        default=None,
        pattern=ARN_PATTERN,
        description="role EventBridge Scheduler assumes to invoke it",
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


def load_api_settings() -> ApiSettings:
    """The validated API settings; a malformed variable fails here, by name."""
    try:
        return ApiSettings()
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        ]
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None


@dataclass(frozen=True)
class ApiDependencies:
    core: Dependencies
    settings: ApiSettings
    scheduler_client: Callable[[], Any]
    #: None: Powertools' shared (cached) Secrets Manager provider
    secrets_provider: BaseProvider | None = None


@cache
def get_api_dependencies() -> ApiDependencies:
    return ApiDependencies(
        core=get_dependencies(),
        settings=load_api_settings(),
        scheduler_client=lambda: aws.client("scheduler"),
    )
