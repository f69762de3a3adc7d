"""One local stack per session: Airflow 3, DynamoDB Local, moto, the MWAA emulator, the runner."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import LocalStack, StackConfig

#: the secret devstack/demo/routes.yaml names for its github-push webhook route
GITHUB_PUSH_SECRET_NAME = "dagtrigger/webhooks/github-push"


@pytest.fixture(scope="session")
def conf_sink(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conf-sink")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, conf_sink: Path) -> Iterator[LocalStack]:
    config = StackConfig(state_dir=tmp_path_factory.mktemp("stack"), conf_sink=conf_sink)
    with LocalStack(config, progress=lambda message: print(f"[stack] {message}")) as running:
        yield running


@pytest.fixture(scope="session")
def github_push_secret(stack: LocalStack) -> str:
    """The github-push webhook's signing secret, stored in (moto's) Secrets Manager."""
    value = secrets.token_urlsafe(32)
    stack.secretsmanager.create_secret(Name=GITHUB_PUSH_SECRET_NAME, SecretString=value)
    return value
