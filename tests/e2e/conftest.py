"""The local stack for the end-to-end tests: the session's Airflow 3 (tests/conftest.py), and
DynamoDB Local, moto, the MWAA emulator and the Lambda runner, started once for this folder.

Package scope matters: the runner points this process's AWS endpoints (and requests' CA
bundle) at the local stack while it runs, so it must be gone before any other folder's tests.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import LocalStack, StackConfig

#: the secret devstack/demo/routes.yaml names for its github-push webhook route
GITHUB_PUSH_SECRET_NAME = "dagtrigger/webhooks/github-push"


@pytest.fixture(scope="package")
def stack(
    tmp_path_factory: pytest.TempPathFactory, conf_sink: Path, airflow_pool: Any
) -> Iterator[LocalStack]:
    config = StackConfig(state_dir=tmp_path_factory.mktemp("stack"), conf_sink=conf_sink)
    with LocalStack(
        config,
        progress=lambda message: print(f"[stack] {message}"),
        airflow=airflow_pool.get(config.airflow_major),
    ) as running:
        yield running


@pytest.fixture(scope="package")
def github_push_secret(stack: LocalStack) -> str:
    """The github-push webhook's signing secret, stored in (moto's) Secrets Manager."""
    value = secrets.token_urlsafe(32)
    stack.secretsmanager.create_secret(Name=GITHUB_PUSH_SECRET_NAME, SecretString=value)
    return value
