"""boto3 clients and resources, created lazily on first use and reused across invocations.

Endpoints follow botocore's own variables (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_MWAA ...),
so the same code talks to AWS or to the local stack with no switch of its own.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from dagtrigger.settings import get_settings

# One retry layer for MWAA calls is ours (tenacity, inside a time budget); botocore's own
# retries would multiply it. Other services keep botocore's standard retry mode.
_STANDARD = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=10
)
_MWAA_SINGLE_ATTEMPT = {"retries": {"mode": "standard", "max_attempts": 1}, "read_timeout": 15}


@cache
def client(service: str) -> Any:
    """A boto3 client for ``service``; the MWAA one makes single attempts (retries are ours)."""
    if service == "mwaa":
        config = Config(
            **_MWAA_SINGLE_ATTEMPT,
            # MWAA prefixes hosts with "env."/"api."; an emulator on 127.0.0.1 cannot answer that.
            inject_host_prefix=get_settings().mwaa_inject_host_prefix,
        )
        return boto3.client("mwaa", config=config)
    return boto3.client(service, config=_STANDARD)


@cache
def dynamodb_table(name: str) -> Any:
    return boto3.resource("dynamodb", config=_STANDARD).Table(name)


def reset_clients() -> None:
    """Forget cached clients (tests that change endpoints or credentials call this)."""
    client.cache_clear()
    dynamodb_table.cache_clear()
