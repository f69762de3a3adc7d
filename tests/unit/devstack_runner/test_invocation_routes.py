"""Routing a function's invocations elsewhere (e.g. to processes a test can kill), the variables
such a process needs to see what the function sees here, and the runner's own execution
environments: their limits, and that stopping the runner ends them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.runner import LambdaRunner, TemplateError
from devstack.runner.invoke import InvocationResult

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def runner() -> Iterator[LambdaRunner]:
    runner = LambdaRunner(
        FIXTURE_TEMPLATE,
        moto_endpoint=UNREACHABLE,
        dynamodb_endpoint=UNREACHABLE,
        extra_env={"EXTRA": "from-caller"},
    )
    yield runner
    runner.stop()  # the execution environments it started


def test_a_routed_function_is_invoked_through_its_route_until_the_route_is_removed(
    runner: LambdaRunner,
) -> None:
    # Given the api function routed to a recorder
    received: list[Any] = []

    def elsewhere(event: Any) -> InvocationResult:
        received.append(event)
        return InvocationResult("ApiFunction", "routed-1", {"statusCode": 204})

    runner.route_invocations("ApiFunction", elsewhere)

    # When it is invoked, the route runs it, not the runner
    routed = runner.invoke("ApiFunction", {"rawPath": "/items/1"})
    assert routed.request_id == "routed-1"
    assert received == [{"rawPath": "/items/1"}]
    assert runner.function_pids() == []

    # And once the route is removed, the runner runs the handler again, in an execution
    # environment of its own
    runner.route_invocations("ApiFunction", None)
    here = runner.invoke("ApiFunction", {"rawPath": "/items/2"})
    assert here.payload["statusCode"] == 200
    assert len(received) == 1
    assert len(runner.function_pids()) == 1


def test_the_runner_stops_the_execution_environments_it_started(runner: LambdaRunner) -> None:
    assert runner.invoke("ScheduledFunction", {"a": 1}).succeeded
    assert runner.invoke("ApiFunction", {"rawPath": "/items/1"}).succeeded
    pids = runner.function_pids()
    assert len(pids) == 2

    runner.stop()

    assert runner.function_pids() == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_each_functions_limit_is_its_reserved_concurrency_or_the_default(
    runner: LambdaRunner,
) -> None:
    # The fixture template reserves none: the default, whatever an SQS source's
    # MaximumConcurrency (that caps the source's pollers, not the function)
    assert runner.concurrency_limit("RecorderFunction") == 4
    assert runner.concurrency_limit("ApiFunction") == 4
    capped = LambdaRunner(
        FIXTURE_TEMPLATE,
        moto_endpoint=UNREACHABLE,
        dynamodb_endpoint=UNREACHABLE,
        default_concurrency=2,
    )
    assert capped.concurrency_limit("ApiFunction") == 2


def test_in_process_every_handler_runs_here_one_at_a_time() -> None:
    runner = LambdaRunner(
        FIXTURE_TEMPLATE,
        moto_endpoint=UNREACHABLE,
        dynamodb_endpoint=UNREACHABLE,
        in_process=True,
    )
    try:
        assert runner.invoke("ScheduledFunction", {"a": 1}).payload["received"] == {"a": 1}
        assert runner.function_pids() == []
        assert runner.concurrency_limit("RecorderFunction") == 1
    finally:
        runner.stop()


def test_routing_an_unknown_function_is_refused(runner: LambdaRunner) -> None:
    with pytest.raises(TemplateError, match="NoSuchFunction"):
        runner.route_invocations("NoSuchFunction", lambda event: InvocationResult("x", "y"))


def test_the_function_environment_holds_the_stacks_and_the_functions_variables(
    runner: LambdaRunner,
) -> None:
    variables = runner.function_environment("RecorderFunction")

    # The stack's shared variables: endpoints, dummy credentials, the caller's extras
    assert variables["AWS_ENDPOINT_URL_SQS"] == UNREACHABLE
    assert variables["AWS_ENDPOINT_URL_DYNAMODB"] == UNREACHABLE
    assert variables["AWS_ACCESS_KEY_ID"] == "testing"
    assert variables["EXTRA"] == "from-caller"
    # And the function's own: the template's (its value over the Globals') and Lambda's
    assert variables["SHARED"] == "from-function"
    assert (
        variables["AWS_LAMBDA_FUNCTION_NAME"]
        == runner.template.function("RecorderFunction").function_name
    )
