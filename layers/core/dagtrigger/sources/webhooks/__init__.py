"""Signed-webhook verification: Standard Webhooks, GitHub and a configurable generic HMAC.

Pure functions of (body, headers, secrets, now): no I/O except ``load_webhook_secrets``.
"""

from dagtrigger.sources.webhooks.errors import SignatureError, SignatureFailure, WebhookSecretError
from dagtrigger.sources.webhooks.generic_hmac import sign_generic_hmac
from dagtrigger.sources.webhooks.github import sign_github
from dagtrigger.sources.webhooks.models import HmacSchemeConfig, SignatureScheme, VerifiedDelivery
from dagtrigger.sources.webhooks.secret_store import load_webhook_secrets, parse_webhook_secrets
from dagtrigger.sources.webhooks.standard import sign_standard_webhooks
from dagtrigger.sources.webhooks.verify import verify

__all__ = [
    "HmacSchemeConfig",
    "SignatureError",
    "SignatureFailure",
    "SignatureScheme",
    "VerifiedDelivery",
    "WebhookSecretError",
    "load_webhook_secrets",
    "parse_webhook_secrets",
    "sign_generic_hmac",
    "sign_github",
    "sign_standard_webhooks",
    "verify",
]
