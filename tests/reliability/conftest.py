"""The fault matrix on the local stack: one stack and harness for this folder, and the table.

`make test` runs the bounded subset (the unmarked tests). The big scenarios carry
``@pytest.mark.reliability`` and run only in the full matrix: ``make reliability``
(HYPOTHESIS_PROFILE=reliability) or ``pytest -m reliability``. Each scenario adds a row to the
table printed at the end of the run and written to .stack/reliability-table.md.

Package scope matters as for tests/e2e: the runner points this process's AWS endpoints at the
local stack while it runs.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.paths import STACK_DIR
from devstack.processes import LOOPBACK
from devstack.procfs import group_pids, listening_addresses
from devstack.reliability import drivers
from devstack.reliability.accounting import ScenarioRow
from devstack.reliability.harness import ReliabilityHarness, TimeCompression
from devstack.reliability.report import render_text, write_markdown
from devstack.stack import LocalStack, StackConfig

TABLE_PATH = STACK_DIR / "reliability-table.md"
AIRFLOW_MAJOR = 3
_ROWS = pytest.StashKey[list[ScenarioRow]]()
_AIRFLOW_RESTARTS = pytest.StashKey[Counter[str]]()
_FULL_MATRIX_PROFILE = "reliability"
_FOLDER = Path(__file__).resolve().parent


def full_matrix_requested(config: pytest.Config) -> bool:
    """`make reliability` (its hypothesis profile) or a marker expression selecting the matrix."""
    if os.environ.get("HYPOTHESIS_PROFILE") == _FULL_MATRIX_PROFILE:
        return True
    marker_expression = str(config.getoption("-m") or "")
    return "reliability" in marker_expression.replace("not reliability", "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if full_matrix_requested(config):
        return
    skip = pytest.mark.skip(
        reason="full fault matrix only: make reliability (or pytest -m reliability)"
    )
    for item in items:
        in_this_folder = item.path.is_relative_to(_FOLDER)
        if in_this_folder and item.get_closest_marker("reliability") is not None:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_ROWS] = []


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash.get(_ROWS, [])
    if not rows:
        return
    terminalreporter.write_sep("=", "fault matrix")
    terminalreporter.write(render_text(rows))
    restarts = config.stash.get(_AIRFLOW_RESTARTS, Counter())
    footnote = (
        "Airflow components restarted by the watchdog (SQLite's 'database is locked'): "
        + ", ".join(f"{name} x{count}" for name, count in sorted(restarts.items()))
        if restarts
        else "No Airflow component had to be restarted."
    )
    terminalreporter.write_line(footnote)
    write_markdown(rows, TABLE_PATH, footnote=footnote)
    terminalreporter.write_line(f"(also written to {TABLE_PATH})")


@pytest.fixture(scope="session")
def fault_matrix(request: pytest.FixtureRequest) -> list[ScenarioRow]:
    """The table's rows: each scenario appends its own."""
    return request.config.stash[_ROWS]


@pytest.fixture(scope="package")
def compression() -> TimeCompression:
    return TimeCompression()


@pytest.fixture(scope="package")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    conf_sink: Path,
    airflow_pool: Any,
    compression: TimeCompression,
) -> Iterator[LocalStack]:
    config = StackConfig(
        airflow_version=str(AIRFLOW_MAJOR),
        state_dir=tmp_path_factory.mktemp("reliability-stack"),
        conf_sink=conf_sink,
        extra_function_env=compression.function_environment(),
    )
    with LocalStack(
        config,
        progress=lambda message: print(f"[stack] {message}"),
        airflow=airflow_pool.get(AIRFLOW_MAJOR),
    ) as running:
        yield running
        servers = _servers_of(running)
    # Checked on this stack's own processes, not on port numbers: other test sessions on the
    # machine may bind a port the moment it is free.
    leftovers = {name: pgid for name, pgid in servers["processes"].items() if group_pids(pgid)}
    listening = listening_addresses([os.getpid()])
    held = [port for port in servers["ports"] if (LOOPBACK, port) in listening]
    assert not leftovers, f"stopping the stack left processes running: {leftovers}"
    assert not held, f"stopping the stack left the MWAA emulator listening on {held}"


@pytest.fixture(scope="package")
def harness(
    request: pytest.FixtureRequest,
    stack: LocalStack,
    tmp_path_factory: pytest.TempPathFactory,
    compression: TimeCompression,
) -> Iterator[ReliabilityHarness]:
    with ReliabilityHarness(
        stack, work_dir=tmp_path_factory.mktemp("reliability"), compression=compression
    ) as running:
        running.start_reconciling()
        yield running
        pids = running.live_instance_pids()
        if running.watchdog is not None:
            request.config.stash[_AIRFLOW_RESTARTS] = running.watchdog.restart_counts()
    alive = [pid for pid in pids if _is_alive(pid)]
    assert not alive, f"function instances outlived the harness: {alive}"


@pytest.fixture(scope="package")
def github_secret(stack: LocalStack) -> str:
    value = secrets.token_urlsafe(32)
    stack.secretsmanager.create_secret(Name=drivers.WEBHOOK_SECRET_NAME, SecretString=value)
    return value


@pytest.fixture
def unique() -> str:
    """A short value no other scenario of this session uses (keys, commits, times)."""
    return f"{time.time_ns():x}{secrets.token_hex(2)}"


def _servers_of(stack: LocalStack) -> dict[str, Any]:
    """The stack's own server processes (Airflow belongs to the session) and the ports the
    MWAA emulator serves in this process."""
    assert stack.moto is not None
    assert stack.dynamodb_local is not None
    assert stack.emulator is not None
    emulator = stack.emulator
    web_server = emulator.web_server_hostname(stack.config.mwaa_environment)
    return {
        "processes": {
            "moto": stack.moto.process.pid,
            "DynamoDB Local": stack.dynamodb_local.process.pid,
        },
        "ports": [
            int(emulator.control_plane_url.rsplit(":", 1)[1]),
            int(web_server.rsplit(":", 1)[1]),
        ],
    }


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
