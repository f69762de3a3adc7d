"""The local stack for the end-to-end tests: the session's Airflow 3 (tests/conftest.py), and
DynamoDB Local, moto, the MWAA emulator and the Lambda runner, started once for this folder.

Package scope matters: the runner points this process's AWS endpoints (and requests' CA
bundle) at the local stack while it runs, so it must be gone before any other folder's tests.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import dagtrigger_cli.target
from dagtrigger_cli.main import app
from devstack.stack import LocalStack, StackConfig

#: the Airflow version key the stack runs (devstack.airflow_install.AIRFLOW_RELEASES)
E2E_AIRFLOW_ENV = "DAGTRIGGER_E2E_AIRFLOW"
#: the secret devstack/demo/routes.yaml names for its github-push webhook route
GITHUB_PUSH_SECRET_NAME = "dagtrigger/webhooks/github-push"


@pytest.fixture(scope="package")
def stack(
    tmp_path_factory: pytest.TempPathFactory, conf_sink: Path, airflow_pool: Any
) -> Iterator[LocalStack]:
    config = StackConfig(
        state_dir=tmp_path_factory.mktemp("stack"),
        conf_sink=conf_sink,
        # `make test` runs these on the newest Airflow 3; DAGTRIGGER_E2E_AIRFLOW=2.11 runs them
        # on MWAA's Airflow 2 (the contract suite covers every version in `make test`).
        airflow_version=os.environ.get(E2E_AIRFLOW_ENV, "3"),
    )
    with LocalStack(
        config,
        progress=lambda message: print(f"[stack] {message}"),
        airflow=airflow_pool.get(config.airflow_version),
    ) as running:
        yield running


@pytest.fixture(scope="package")
def github_push_secret(stack: LocalStack) -> str:
    """The github-push webhook's signing secret, stored in (moto's) Secrets Manager."""
    value = secrets.token_urlsafe(32)
    stack.secretsmanager.create_secret(Name=GITHUB_PUSH_SECRET_NAME, SecretString=value)
    return value


@pytest.fixture
def dagtrigger(stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs `dagtrigger ARGS...` against the stack, found from an `up.json` as `make up` writes."""
    state_file = tmp_path / "up.json"
    state = {"pid": os.getpgid(0), "ready": True, "resources": stack.resources()}
    state_file.write_text(json.dumps(state))
    target = dagtrigger_cli.target.local_stack(state_file)
    monkeypatch.setattr(dagtrigger_cli.target, "resolve", lambda options: target)
    runner = CliRunner()

    def run(*arguments: str) -> Any:
        result = runner.invoke(app, list(arguments))
        print(f"$ dagtrigger {' '.join(arguments)}\n{result.stdout}{result.stderr}")
        assert "Traceback" not in result.output
        return result

    return run
