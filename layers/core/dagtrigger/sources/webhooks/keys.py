"""The list of secrets a route accepts: several while a key is being rotated."""

from __future__ import annotations

from collections.abc import Sequence

from dagtrigger.sources.webhooks.errors import WebhookSecretError


def secret_list(secrets: Sequence[str]) -> list[str]:
    """``secrets`` checked: a non-empty sequence of non-empty strings.

    A bare string is refused: it is a sequence of one-character strings, and accepting it
    would turn one secret into a list of trivially forgeable one-letter keys.
    """
    if isinstance(secrets, str | bytes):
        raise TypeError("secrets must be a sequence of strings, not a single string")
    checked = list(secrets)
    if not checked:
        raise WebhookSecretError("no webhook secret is configured")
    for position, secret in enumerate(checked, 1):
        if not isinstance(secret, str) or not secret:
            raise WebhookSecretError(
                f"webhook secret {position} of {len(checked)} is empty or not a string"
            )
    return checked


def utf8_keys(secrets: Sequence[str]) -> list[bytes]:
    """HMAC keys for the schemes that use the secret's text as the key (GitHub, generic)."""
    return [secret.encode() for secret in secret_list(secrets)]
