"""Why a webhook delivery was refused, and what is wrong with its configured secrets."""

from __future__ import annotations

from enum import StrEnum

from dagtrigger.errors import DagTriggerError


class SignatureFailure(StrEnum):
    """Reason codes for logs and metrics. The HTTP answer is a bare 401 whatever the reason."""

    MISSING_HEADER = "missing_header"
    BAD_FORMAT = "bad_format"
    TIMESTAMP_OUT_OF_TOLERANCE = "timestamp_out_of_tolerance"
    MISMATCH = "mismatch"


class SignatureError(DagTriggerError):
    """The delivery is not authentic (or cannot be shown to be).

    ``reason`` is the code to log and count; ``detail`` names the header at fault. Neither ever
    holds a secret, an expected signature or a header's value, so both are safe to log, but
    neither belongs in the HTTP response: telling a forger what failed helps the forger.
    """

    def __init__(self, reason: SignatureFailure, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class WebhookSecretError(DagTriggerError):
    """The configured secrets are unusable (missing, empty, malformed): a server-side fault.

    Messages name the secret (by its Secrets Manager name or its position), never its value.
    """
