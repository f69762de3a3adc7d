"""Signed-webhook verification: Standard Webhooks, GitHub and a configurable generic HMAC.

Pure functions of (body, headers, secrets, now): no I/O except ``load_webhook_secrets``.
"""

from dagtrigger.webhooks.errors import SignatureError, SignatureFailure, WebhookSecretError
from dagtrigger.webhooks.generic_hmac import sign_generic_hmac
from dagtrigger.webhooks.github import sign_github
from dagtrigger.webhooks.models import HmacSchemeConfig, SignatureScheme, VerifiedDelivery
from dagtrigger.webhooks.secret_store import load_webhook_secrets, parse_webhook_secrets
from dagtrigger.webhooks.standard import sign_standard_webhooks
from dagtrigger.webhooks.verify import verify

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
