"""Webhook secrets from AWS Secrets Manager, through Powertools' cached parameters utility.

A secret's value is either the secret itself (a plain string) or a JSON object:
``{"secret": "..."}``, or ``{"secrets": ["new", "old"]}`` while a key is being rotated.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters import BaseProvider, GetParameterError

from dagtrigger.sources.webhooks.signing import WebhookSecretError

DEFAULT_MAX_AGE_SECONDS = 300


def load_webhook_secrets(
    secret_name: str,
    *,
    max_age: int = DEFAULT_MAX_AGE_SECONDS,
    provider: BaseProvider | None = None,
) -> list[str]:
    """The secrets stored under ``secret_name``, cached for ``max_age`` seconds.

    ``provider`` defaults to Powertools' shared SecretsProvider (``get_secret``); tests pass
    one built on their own client.
    """
    try:
        if provider is None:
            value: Any = parameters.get_secret(secret_name, max_age=max_age)
        else:
            value = provider.get(secret_name, max_age=max_age)
    except GetParameterError as exc:
        raise WebhookSecretError(f"cannot read webhook secret {secret_name!r}: {exc}") from exc
    return parse_webhook_secrets(value, source=secret_name)


def parse_webhook_secrets(value: str | bytes, *, source: str) -> list[str]:
    """The secrets in one stored value. Errors name ``source``, never the value."""
    text = _as_text(value, source=source)
    is_json = text.lstrip().startswith("{")
    secrets = _secrets_from_json(text, source=source) if is_json else [text]
    for position, secret in enumerate(secrets, 1):
        _check_secret(secret, source=f"{source} (secret {position} of {len(secrets)})")
    return secrets


def _as_text(value: object, *, source: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookSecretError(f"webhook secret {source!r} is binary, not text") from None
    if not isinstance(value, str):
        raise WebhookSecretError(f"webhook secret {source!r} is not text")
    return value


def _secrets_from_json(text: str, *, source: str) -> list[str]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # The message would quote the value; say only where the JSON broke.
        raise WebhookSecretError(
            f"webhook secret {source!r} starts with '{{' but is not valid JSON "
            f"(line {exc.lineno}, column {exc.colno})"
        ) from None
    shape = 'a JSON object with exactly one key, "secret" (a string) or "secrets" (a list)'
    if not isinstance(document, dict) or len(document) != 1:
        raise WebhookSecretError(f"webhook secret {source!r} must be {shape}")
    if "secret" in document and isinstance(document["secret"], str):
        return [document["secret"]]
    secrets = document.get("secrets")
    if isinstance(secrets, list) and secrets and all(isinstance(item, str) for item in secrets):
        return list(secrets)
    raise WebhookSecretError(f"webhook secret {source!r} must be {shape} of strings")


def _check_secret(secret: str, *, source: str) -> None:
    if not secret:
        raise WebhookSecretError(f"webhook secret {source!r} is empty")
    if secret != secret.strip():
        # Usually a newline from `--secret-string file://...`; it would make every delivery fail.
        raise WebhookSecretError(
            f"webhook secret {source!r} has leading or trailing whitespace; store it without"
        )
