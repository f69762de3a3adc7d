"""The environment the local stack gives every function."""

from __future__ import annotations

from devstack.runner.provision import endpoint_variable, stack_environment


def test_endpoint_variables_are_botocores_names() -> None:
    assert endpoint_variable("events") == "AWS_ENDPOINT_URL_EVENTBRIDGE"
    assert endpoint_variable("secretsmanager") == "AWS_ENDPOINT_URL_SECRETS_MANAGER"
    assert endpoint_variable("mwaa") == "AWS_ENDPOINT_URL_MWAA"


def test_the_stack_environment_points_every_service_at_the_local_stack() -> None:
    variables = stack_environment(
        moto_endpoint="http://127.0.0.1:5001",
        dynamodb_endpoint="http://127.0.0.1:8001",
        region="us-east-1",
        extra_env={
            "MWAA_INJECT_HOST_PREFIX": "false",
            "AWS_ENDPOINT_URL_MWAA": "http://127.0.0.1:9",
        },
    )
    for name in (
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_EVENTBRIDGE",
        "AWS_ENDPOINT_URL_SCHEDULER",
        "AWS_ENDPOINT_URL_SSM",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ):
        assert variables[name] == "http://127.0.0.1:5001", name
    assert variables["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:8001"
    assert variables["AWS_ENDPOINT_URL_MWAA"] == "http://127.0.0.1:9"
    assert variables["MWAA_INJECT_HOST_PREFIX"] == "false"
    assert variables["AWS_ACCESS_KEY_ID"] == "testing"
