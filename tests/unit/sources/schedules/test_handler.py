"""The schedules Lambda handler: a thin shell around handle_scheduled_trigger."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import TriggerFailedError
from dagtrigger.settings import get_settings

EVENTS = Path(__file__).resolve().parents[4] / "events" / "schedules"


@dataclass(frozen=True)
class FakeLambdaContext:
    function_name: str = "dagtrigger-schedules"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:111122223333:function:dagtrigger-schedules"
    )
    aws_request_id: str = "6f1c0c6e-4a1b-4a64-9f5c-0f6c2f0c1d2e"


@pytest.fixture
def handler_module(deps: Dependencies, table: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The handler module, importable because the environment names a table, using ``deps``."""
    monkeypatch.setenv("TABLE_NAME", table.name)
    get_settings.cache_clear()
    module = importlib.import_module("functions.schedules.app")
    monkeypatch.setattr(module, "get_dependencies", lambda: deps)
    return module


def event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def test_handler_returns_the_trigger_and_its_lateness(
    handler_module: ModuleType, transport: Any
) -> None:
    # When EventBridge Scheduler invokes the function with a fire
    response = handler_module.lambda_handler(event("route_fire.json"), FakeLambdaContext())

    # Then it answers with the trigger it recorded and how late the fire was
    assert response["disposition"] == "triggered"
    assert response["status"] == "TRIGGERED"
    assert response["trigger_id"].startswith("t-")
    assert response["dag_run_id"] == transport.calls[0].dag_run_id
    assert response["scheduled_time"] == "2026-11-21T01:00:00.000000Z"
    assert response["lateness_seconds"] == 6 * 3600


def test_handler_returns_normally_for_an_input_it_rejects(
    handler_module: ModuleType, transport: Any
) -> None:
    response = handler_module.lambda_handler(event("unsubstituted_input.json"), FakeLambdaContext())
    assert response["disposition"] == "rejected"
    assert "still holds the keyword" in response["reason"]
    assert transport.calls == []


def test_handler_raises_when_airflow_stays_down(
    handler_module: ModuleType, transport: Any, answers: Any
) -> None:
    # Given Airflow fails for longer than the trigger budget
    transport.answers.extend([answers.server_error] * 1000)

    # Then the invocation fails, so Lambda retries it and finally dead-letters it
    with pytest.raises(TriggerFailedError):
        handler_module.lambda_handler(event("route_fire.json"), FakeLambdaContext())
