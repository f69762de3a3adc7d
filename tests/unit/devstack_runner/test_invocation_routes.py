"""Routing a function's invocations elsewhere (e.g. to processes a test can kill), and the
variables such a process needs to see what the function sees here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.runner import LambdaRunner, TemplateError
from devstack.runner.invoke import InvocationResult

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def runner() -> LambdaRunner:
    return LambdaRunner(
        FIXTURE_TEMPLATE,
        moto_endpoint=UNREACHABLE,
        dynamodb_endpoint=UNREACHABLE,
        extra_env={"EXTRA": "from-caller"},
    )


def test_a_routed_function_is_invoked_through_its_route_until_the_route_is_removed(
    runner: LambdaRunner,
) -> None:
    # Given the api function routed to a recorder
    received: list[Any] = []

    def elsewhere(event: Any) -> InvocationResult:
        received.append(event)
        return InvocationResult("ApiFunction", "routed-1", {"statusCode": 204})

    runner.route_invocations("ApiFunction", elsewhere)

    # When it is invoked, the route runs it, not this process
    routed = runner.invoke("ApiFunction", {"rawPath": "/items/1"})
    assert routed.request_id == "routed-1"
    assert received == [{"rawPath": "/items/1"}]

    # And once the route is removed, this process runs the handler again
    runner.route_invocations("ApiFunction", None)
    here = runner.invoke("ApiFunction", {"rawPath": "/items/2"})
    assert here.payload["statusCode"] == 200
    assert len(received) == 1


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
