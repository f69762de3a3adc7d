"""Where the scheme's refusals sit among the package's errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dagtrigger.errors import DagTriggerError, RequestError, UnauthenticatedError
from dagtrigger.sources.webhooks import (
    SignatureError,
    SignatureFailure,
    SignatureScheme,
    WebhookSecretError,
    verify,
)

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def test_an_unauthentic_delivery_is_the_domains_unauthenticated_refusal() -> None:
    # Given a GitHub delivery without its signature header
    with pytest.raises(UnauthenticatedError) as caught:
        verify(SignatureScheme.GITHUB, body=b"{}", headers={}, secrets=["s"], now=NOW)

    # Then the refusal is a SignatureError that keeps its reason, detail and message
    refusal = caught.value
    assert isinstance(refusal, SignatureError)
    assert refusal.reason is SignatureFailure.MISSING_HEADER
    assert refusal.detail == "the x-hub-signature-256 header is missing"
    assert str(refusal) == "missing_header: the x-hub-signature-256 header is missing"


def test_signature_error_carries_no_code_or_details_for_the_http_answer() -> None:
    # The reason is for logs only: nothing in the refusal is meant to reach the sender
    refusal = SignatureError(SignatureFailure.MISMATCH, "no x-sig entry matches")
    assert refusal.message == "mismatch: no x-sig entry matches"
    assert (refusal.code, refusal.location, refusal.details) == (None, None, {})


def test_unusable_secrets_are_a_server_side_fault_not_a_refusal_of_the_request() -> None:
    assert issubclass(WebhookSecretError, DagTriggerError)
    assert not issubclass(WebhookSecretError, RequestError)
