"""Signed webhooks: Standard Webhooks, GitHub and a configurable generic HMAC.

``service`` receives one delivery (verify, record, trigger). ``verify`` is the signature check's
entry point; ``standard``, ``github`` and ``generic_hmac`` hold one scheme each, ``signing`` what
they share, ``secrets`` the loading of secrets from Secrets Manager. The signature checks are
pure functions of (body, headers, secrets, now, replay window); each names an authentic
delivery by its replay key, a hash of what the signature covers, which the service turns into
the trigger id so that a replayed delivery finds its record instead of starting a run.
"""

from dagtrigger.sources.webhooks.generic_hmac import sign_generic_hmac
from dagtrigger.sources.webhooks.github import sign_github
from dagtrigger.sources.webhooks.secrets import load_webhook_secrets, parse_webhook_secrets
from dagtrigger.sources.webhooks.signing import (
    DeliveryIdentity,
    HmacSchemeConfig,
    SignatureError,
    SignatureFailure,
    SignatureScheme,
    StaleTimestampError,
    VerifiedDelivery,
    WebhookSecretError,
    replay_key,
)
from dagtrigger.sources.webhooks.standard import sign_standard_webhooks
from dagtrigger.sources.webhooks.verify import delivery_identity, verify

__all__ = [
    "DeliveryIdentity",
    "HmacSchemeConfig",
    "SignatureError",
    "SignatureFailure",
    "SignatureScheme",
    "StaleTimestampError",
    "VerifiedDelivery",
    "WebhookSecretError",
    "delivery_identity",
    "load_webhook_secrets",
    "parse_webhook_secrets",
    "replay_key",
    "sign_generic_hmac",
    "sign_github",
    "sign_standard_webhooks",
    "verify",
]
