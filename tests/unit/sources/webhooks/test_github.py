"""GitHub's X-Hub-Signature-256 scheme."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dagtrigger.sources.webhooks import (
    SignatureError,
    SignatureFailure,
    SignatureScheme,
    sign_github,
    verify,
)

# GitHub's published test values, "Testing the webhook payload validation" in
# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_PAYLOAD = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
DELIVERY_ID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def verify_github(
    headers: dict[str, str], *, body: bytes = GITHUB_PAYLOAD, secrets: list[str] | None = None
):
    return verify(
        SignatureScheme.GITHUB,
        body=body,
        headers=headers,
        secrets=secrets if secrets is not None else [GITHUB_SECRET],
        now=NOW,
    )


def test_githubs_published_example_verifies() -> None:
    # Given the delivery from GitHub's documentation
    headers = {"x-hub-signature-256": GITHUB_SIGNATURE, "x-github-delivery": DELIVERY_ID}

    # When it is verified
    delivery = verify_github(headers)

    # Then it is authentic, identified by its delivery id, with no timestamp (GitHub signs none)
    assert delivery.delivery_id == DELIVERY_ID
    assert delivery.timestamp is None
    assert delivery.scheme is SignatureScheme.GITHUB


def test_signer_reproduces_githubs_published_signature() -> None:
    assert sign_github(GITHUB_PAYLOAD, secret=GITHUB_SECRET) == {
        "x-hub-signature-256": GITHUB_SIGNATURE
    }


@pytest.mark.parametrize(
    ("body", "secret"),
    [
        (b"Hello, World?", GITHUB_SECRET),
        (GITHUB_PAYLOAD, "It's a Secret to Everybody!"),
        (GITHUB_PAYLOAD + b"\n", GITHUB_SECRET),
    ],
    ids=["changed-body", "other-secret", "trailing-newline"],
)
def test_changed_body_or_other_secret_is_a_mismatch(body: bytes, secret: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_github({"x-hub-signature-256": GITHUB_SIGNATURE}, body=body, secrets=[secret])
    assert caught.value.reason is SignatureFailure.MISMATCH


def test_header_names_match_whatever_their_case() -> None:
    delivery = verify_github({"X-Hub-Signature-256": GITHUB_SIGNATURE, "X-GitHub-Delivery": "d-1"})
    assert delivery.delivery_id == "d-1"


def test_missing_signature_header_is_reported_as_missing() -> None:
    # Given only the legacy SHA-1 header, which is not accepted
    headers = {"x-hub-signature": "sha1=0000000000000000000000000000000000000000"}

    with pytest.raises(SignatureError) as caught:
        verify_github(headers)

    assert caught.value.reason is SignatureFailure.MISSING_HEADER
    assert "x-hub-signature-256" in caught.value.detail


def test_delivery_without_delivery_id_verifies_with_no_id() -> None:
    assert verify_github({"x-hub-signature-256": GITHUB_SIGNATURE}).delivery_id is None


@pytest.mark.parametrize(
    "signature",
    [
        GITHUB_SIGNATURE.upper(),
        GITHUB_SIGNATURE.replace("sha256=", "sha1="),
        GITHUB_SIGNATURE.removeprefix("sha256="),
        GITHUB_SIGNATURE[:-1],
        GITHUB_SIGNATURE + "0",
        "sha256=" + "g" * 64,
        ",",
    ],
    ids=["upper-case", "sha1-prefix", "no-prefix", "short", "long", "not-hex", "only-comma"],
)
def test_malformed_signature_is_a_bad_format(signature: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_github({"x-hub-signature-256": signature})
    assert caught.value.reason is SignatureFailure.BAD_FORMAT


@pytest.mark.parametrize("joiner", [",", ", "])
def test_repeated_signature_header_joined_by_api_gateway_verifies_if_one_matches(
    joiner: str,
) -> None:
    # Given a repeated header, one stale and one current signature, joined as API Gateway does
    stale = sign_github(GITHUB_PAYLOAD, secret="an old secret")["x-hub-signature-256"]
    headers = {"x-hub-signature-256": joiner.join([stale, GITHUB_SIGNATURE])}

    # When / Then
    assert verify_github(headers).scheme is SignatureScheme.GITHUB


def test_repeated_signature_header_with_no_matching_value_is_a_mismatch() -> None:
    stale = sign_github(GITHUB_PAYLOAD, secret="an old secret")["x-hub-signature-256"]
    other = sign_github(GITHUB_PAYLOAD, secret="another secret")["x-hub-signature-256"]

    with pytest.raises(SignatureError) as caught:
        verify_github({"x-hub-signature-256": f"{stale}, {other}"})

    assert caught.value.reason is SignatureFailure.MISMATCH


@pytest.mark.parametrize("signing_secret", ["new secret", "old secret"])
def test_during_rotation_old_and_new_secrets_both_verify(signing_secret: str) -> None:
    # Given a route that accepts a new and an old secret
    headers = sign_github(b'{"zen": "Keep it simple."}', secret=signing_secret, delivery_id="d-2")

    # When a delivery signed with either arrives
    delivery = verify_github(
        headers, body=b'{"zen": "Keep it simple."}', secrets=["new secret", "old secret"]
    )

    # Then it verifies
    assert delivery.delivery_id == "d-2"


def test_repeated_delivery_id_header_with_identical_values_collapses() -> None:
    headers = {"x-hub-signature-256": GITHUB_SIGNATURE, "x-github-delivery": "d-3, d-3"}
    assert verify_github(headers).delivery_id == "d-3"


@pytest.mark.parametrize("delivery_id", ["d-3, d-4", "with space", "é" * 3, "x" * 257])
def test_ambiguous_or_malformed_delivery_id_is_a_bad_format(delivery_id: str) -> None:
    headers = {"x-hub-signature-256": GITHUB_SIGNATURE, "x-github-delivery": delivery_id}

    with pytest.raises(SignatureError) as caught:
        verify_github(headers)

    assert caught.value.reason is SignatureFailure.BAD_FORMAT
    assert "x-github-delivery" in caught.value.detail
