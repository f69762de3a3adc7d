"""Webhook secrets read from Secrets Manager (moto, in process) through Powertools."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from moto import mock_aws

from dagtrigger.sources.webhooks import (
    WebhookSecretError,
    load_webhook_secrets,
    parse_webhook_secrets,
)

SECRET_NAME = "dagtrigger/webhooks/github"


@pytest.fixture
def secretsmanager() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def provider(secretsmanager: Any) -> SecretsProvider:
    return SecretsProvider(boto3_client=secretsmanager)


def store(client: Any, value: str | bytes, name: str = SECRET_NAME) -> None:
    kind = "SecretBinary" if isinstance(value, bytes) else "SecretString"
    client.create_secret(Name=name, **{kind: value})


@pytest.mark.parametrize(
    ("stored", "secrets"),
    [
        ("It's a Secret to Everybody", ["It's a Secret to Everybody"]),
        ('{"secret": "s3cr3t"}', ["s3cr3t"]),
        ('{"secrets": ["new", "old"]}', ["new", "old"]),
        ('  {"secrets": ["whsec_bmV3"]}\n', ["whsec_bmV3"]),
        (b"binary-held text", ["binary-held text"]),
    ],
    ids=["plain", "json-one", "json-rotation", "json-with-whitespace", "secret-binary"],
)
def test_stored_secret_forms_load_as_a_list(
    secretsmanager: Any, provider: SecretsProvider, stored: str | bytes, secrets: list[str]
) -> None:
    # Given a secret stored in one of the accepted forms
    store(secretsmanager, stored)

    # When it is loaded
    # Then every secret it holds comes back, in order
    assert load_webhook_secrets(SECRET_NAME, provider=provider) == secrets


def test_loaded_secrets_are_cached_for_max_age(
    secretsmanager: Any, provider: SecretsProvider
) -> None:
    # Given a loaded secret, then rotated in Secrets Manager
    store(secretsmanager, "first")
    assert load_webhook_secrets(SECRET_NAME, provider=provider) == ["first"]
    secretsmanager.put_secret_value(SecretId=SECRET_NAME, SecretString="second")

    # When it is loaded again within max_age
    # Then the cached value is served
    assert load_webhook_secrets(SECRET_NAME, provider=provider) == ["first"]


def test_secrets_loaded_with_no_max_age_see_a_rotation_at_once(
    secretsmanager: Any, provider: SecretsProvider
) -> None:
    store(secretsmanager, "first")
    assert load_webhook_secrets(SECRET_NAME, max_age=0, provider=provider) == ["first"]
    secretsmanager.put_secret_value(SecretId=SECRET_NAME, SecretString="second")

    assert load_webhook_secrets(SECRET_NAME, max_age=0, provider=provider) == ["second"]


def test_default_provider_is_powertools_shared_one(
    secretsmanager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Powertools' shared Secrets Manager provider (the one get_secret uses), on the mock
    shared = SecretsProvider(boto3_client=secretsmanager)
    monkeypatch.setitem(DEFAULT_PROVIDERS, "secrets", shared)
    store(secretsmanager, '{"secret": "through get_secret"}')

    # When secrets are loaded with no provider given
    secrets = load_webhook_secrets(SECRET_NAME)

    # Then they came through the shared provider, which now caches them
    assert secrets == ["through get_secret"]
    assert shared.store


def test_missing_secret_is_a_webhook_secret_error_naming_it(provider: SecretsProvider) -> None:
    with pytest.raises(WebhookSecretError, match=SECRET_NAME):
        load_webhook_secrets(SECRET_NAME, provider=provider)


@pytest.mark.parametrize(
    ("stored", "complaint"),
    [
        ("", "is empty"),
        ("s3cr3t-value\n", "leading or trailing whitespace"),
        ('{"secret": "s3cr3t-value",}', "not valid JSON"),
        ('{"secret": ""}', "is empty"),
        ('{"secrets": []}', 'exactly one key, "secret"'),
        ('{"secrets": ["s3cr3t-value", 7]}', 'exactly one key, "secret"'),
        ('{"secret": "s3cr3t-value", "secrets": ["s3cr3t-value"]}', 'exactly one key, "secret"'),
        ('{"password": "s3cr3t-value"}', 'exactly one key, "secret"'),
        ('{"secrets": ["ok", " s3cr3t-value"]}', "secret 2 of 2"),
        (b"\xff\xfes3cr3t-value", "binary, not text"),
    ],
    ids=[
        "empty",
        "trailing-newline",
        "bad-json",
        "empty-in-json",
        "empty-list",
        "non-string-member",
        "both-keys",
        "unknown-key",
        "whitespace-in-list",
        "not-utf8",
    ],
)
def test_malformed_stored_value_is_explained_without_quoting_it(
    stored: str | bytes, complaint: str
) -> None:
    # Given a malformed stored value
    # When it is parsed
    with pytest.raises(WebhookSecretError) as caught:
        parse_webhook_secrets(stored, source=SECRET_NAME)

    # Then the error says what is wrong and where, and never shows the value
    message = str(caught.value)
    assert complaint in message
    assert SECRET_NAME in message
    assert "s3cr3t" not in message


def test_binary_secret_loaded_from_secrets_manager_is_checked_too(
    secretsmanager: Any, provider: SecretsProvider
) -> None:
    store(secretsmanager, b"\xff\xfe")
    with pytest.raises(WebhookSecretError, match="binary, not text"):
        load_webhook_secrets(SECRET_NAME, provider=provider)


def test_json_document_form_matches_what_json_dumps_writes() -> None:
    stored = json.dumps({"secrets": ["whsec_bmV3", "whsec_b2xk"]}, indent=2)
    assert parse_webhook_secrets(stored, source=SECRET_NAME) == ["whsec_bmV3", "whsec_b2xk"]
