"""Loading handlers from their CodeUri and invoking them as Lambda does, in this process (the
runner's in-process mode; its execution environments are tested in test_pool)."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import pytest

from devstack.runner.invoke import Invoker, ProcessEnvironment, differing_variables, load_handler
from devstack.runner.template import LocalTemplate


def test_handlers_load_under_their_own_module_name(fixture_template: LocalTemplate) -> None:
    spec = fixture_template.function("ApiFunction")
    module, handler = load_handler(spec)
    assert module.__name__ == "_dagtrigger_local_ApiFunction"
    assert callable(handler)
    assert module.__name__ not in sys.modules


def test_an_invocation_sees_its_functions_variables_only_while_it_runs(
    fixture_template: LocalTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a variable already in the process and an invoker for the scheduled function
    monkeypatch.setenv("SHARED", "from-process")
    invoker = Invoker(
        fixture_template.functions, region="eu-west-1", environment=ProcessEnvironment()
    )
    spec = fixture_template.function("ScheduledFunction")
    seen: dict[str, str | None] = {}

    def spy(event: dict[str, str], context: object) -> dict[str, str]:
        seen.update(
            {
                name: os.environ.get(name)
                for name in ("SHARED", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION")
            }
        )
        return {"ok": "yes"}

    invoker._handlers[spec.logical_id] = spy  # the handler's module is tested elsewhere
    # When it is invoked
    result = invoker.invoke(spec.logical_id, {"a": 1})
    # Then the handler saw the function's variables, and the process got its own back
    assert result.succeeded
    assert result.payload == {"ok": "yes"}
    assert seen == {
        "SHARED": "from-globals",
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_REGION": "eu-west-1",
    }
    assert os.environ["SHARED"] == "from-process"
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


def test_the_context_carries_the_function_and_its_time_budget(
    fixture_template: LocalTemplate,
) -> None:
    invoker = Invoker(
        fixture_template.functions, region="us-east-1", environment=ProcessEnvironment()
    )
    result = invoker.invoke("ScheduledFunction", {"hello": "world"})
    assert result.succeeded
    assert result.payload["received"] == {"hello": "world"}
    assert 0 < result.payload["remaining_ms"] <= 5000


def test_a_raising_handler_gives_lambdas_error_document(fixture_template: LocalTemplate) -> None:
    invoker = Invoker(
        fixture_template.functions, region="us-east-1", environment=ProcessEnvironment()
    )
    result = invoker.invoke("ScheduledFunction", {"fail": True})
    assert not result.succeeded
    assert result.error is not None
    assert (result.error["errorType"], result.error["errorMessage"]) == (
        "ValueError",
        "scheduled run failed",
    )
    assert result.error["stackTrace"]


def test_an_answer_lambda_cannot_serialise_is_an_error(fixture_template: LocalTemplate) -> None:
    invoker = Invoker(
        fixture_template.functions, region="us-east-1", environment=ProcessEnvironment()
    )
    invoker._handlers["ApiFunction"] = lambda event, context: {"when": object()}
    result = invoker.invoke("ApiFunction", {})
    assert result.error is not None
    assert result.error["errorType"] == "TypeError"


def test_an_invocation_longer_than_the_timeout_is_reported_as_timed_out(
    fixture_template: LocalTemplate,
) -> None:
    spec = replace(fixture_template.function("ScheduledFunction"), timeout_seconds=0)
    invoker = Invoker({spec.logical_id: spec}, region="us-east-1", environment=ProcessEnvironment())
    result = invoker.invoke(spec.logical_id, {})
    assert result.error is not None
    assert result.error["errorMessage"] == "Task timed out after 0.00 seconds"


def test_a_missing_handler_attribute_is_reported(fixture_template: LocalTemplate) -> None:
    spec = replace(fixture_template.function("ApiFunction"), handler="api.nope")
    invoker = Invoker({spec.logical_id: spec}, region="us-east-1", environment=ProcessEnvironment())
    result = invoker.invoke(spec.logical_id, {})
    assert result.error is not None
    assert "has no function 'nope'" in result.error["errorMessage"]


def test_variables_that_differ_between_functions_are_named(fixture_template: LocalTemplate) -> None:
    assert differing_variables(fixture_template.functions) == {
        "SHARED": {
            "RecorderFunction": "from-function",
            "ApiFunction": "from-globals",
            "ScheduledFunction": "from-globals",
        }
    }


def test_the_layers_instance_state_is_dropped_when_another_function_runs(
    fixture_template: LocalTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the layer loaded, with its reset counted
    import dagtrigger.dependencies

    resets: list[str] = []
    monkeypatch.setattr(
        dagtrigger.dependencies, "reset_instance_state", lambda: resets.append("reset")
    )
    invoker = Invoker(
        fixture_template.functions, region="us-east-1", environment=ProcessEnvironment()
    )
    for logical_id in ("ApiFunction", "ScheduledFunction"):
        invoker._handlers[logical_id] = lambda event, context: {"ok": True}

    # When one function runs twice, then another, then the first again
    for logical_id in ("ApiFunction", "ApiFunction", "ScheduledFunction", "ApiFunction"):
        assert invoker.invoke(logical_id, {}).succeeded

    # Then the settings and clients one function built are never used by the other
    assert resets == ["reset", "reset"]
