"""One local stack per session: Airflow 3, DynamoDB Local, moto, the MWAA emulator, the runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import LocalStack, StackConfig


@pytest.fixture(scope="session")
def conf_sink(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conf-sink")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, conf_sink: Path) -> Iterator[LocalStack]:
    config = StackConfig(state_dir=tmp_path_factory.mktemp("stack"), conf_sink=conf_sink)
    with LocalStack(config, progress=lambda message: print(f"[stack] {message}")) as running:
        yield running
