"""The Standard Webhooks scheme (https://www.standardwebhooks.com)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from dagtrigger.sources.webhooks import (
    SignatureError,
    SignatureFailure,
    SignatureScheme,
    StaleTimestampError,
    VerifiedDelivery,
    WebhookSecretError,
    replay_key,
    sign_standard_webhooks,
    verify,
)
from dagtrigger.sources.webhooks.standard import parse_signature_list, symmetric_signatures

# The reference library's published vector: test_sign_function and
# test_invalid_signature_raises_error in github.com/standard-webhooks/standard-webhooks,
# libraries/python/tests/test_webhooks.py.
LIBRARY_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LIBRARY_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
LIBRARY_TIMESTAMP = 1614265330
LIBRARY_PAYLOAD = b'{"test": 2432232314}'
LIBRARY_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
LIBRARY_WRONG_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
LIBRARY_NOW = datetime.fromtimestamp(LIBRARY_TIMESTAMP, tz=UTC)
# The example webhook-signature header of the specification (spec/standard-webhooks.md).
SPEC_SIGNATURE_HEADER = (
    "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= "
    "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
)
NEW_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


def library_headers(signature: str = LIBRARY_SIGNATURE) -> dict[str, str]:
    return {
        "webhook-id": LIBRARY_MSG_ID,
        "webhook-timestamp": str(LIBRARY_TIMESTAMP),
        "webhook-signature": signature,
    }


def library_headers_with(header: str, value: str) -> dict[str, str]:
    """The library's example delivery with one header's value replaced."""
    return {**library_headers(), header: value}


def verify_standard(
    headers: dict[str, str],
    *,
    body: bytes = LIBRARY_PAYLOAD,
    secrets: list[str] | None = None,
    now: datetime = LIBRARY_NOW,
    replay_window_seconds: int = 300,
) -> VerifiedDelivery:
    return verify(
        SignatureScheme.STANDARD_WEBHOOKS,
        body=body,
        headers=headers,
        secrets=secrets if secrets is not None else [LIBRARY_SECRET],
        now=now,
        replay_window_seconds=replay_window_seconds,
    )


def failure_of(
    headers: dict[str, str], *, body: bytes = LIBRARY_PAYLOAD, secrets: list[str] | None = None
) -> SignatureFailure:
    with pytest.raises(SignatureError) as caught:
        verify_standard(headers, body=body, secrets=secrets)
    return caught.value.reason


def test_reference_librarys_published_vector_verifies() -> None:
    # Given the library's signed example, received at its signing time
    # When it is verified
    delivery = verify_standard(library_headers())

    # Then the delivery is authentic, identified by webhook-id, at the signed time, and known
    # by its signed id and body
    assert delivery == VerifiedDelivery(
        delivery_id=LIBRARY_MSG_ID,
        timestamp=LIBRARY_NOW,
        scheme=SignatureScheme.STANDARD_WEBHOOKS,
        replay_key=replay_key(("webhook-id", LIBRARY_MSG_ID.encode()), ("body", LIBRARY_PAYLOAD)),
    )


def test_reference_librarys_wrong_signature_is_a_mismatch() -> None:
    assert failure_of(library_headers(LIBRARY_WRONG_SIGNATURE)) is SignatureFailure.MISMATCH


def test_signer_reproduces_the_reference_librarys_vector() -> None:
    headers = sign_standard_webhooks(
        LIBRARY_PAYLOAD,
        secrets=[LIBRARY_SECRET],
        msg_id=LIBRARY_MSG_ID,
        timestamp=LIBRARY_TIMESTAMP,
    )
    assert headers == library_headers()


def test_secret_without_the_whsec_prefix_is_accepted_as_the_library_does() -> None:
    unprefixed = LIBRARY_SECRET.removeprefix("whsec_")
    assert verify_standard(library_headers(), secrets=[unprefixed]).delivery_id == LIBRARY_MSG_ID


def test_signature_made_by_the_reference_library_verifies() -> None:
    # Given a delivery signed by the reference library itself
    body = '{"type": "contact.created", "data": {"id": "1f81eb52"}}'
    signed_at = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    signature = Webhook(NEW_SECRET).sign("msg_1", signed_at, body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(signed_at.timestamp())),
        "webhook-signature": signature,
    }

    # When it is verified a minute later
    delivery = verify_standard(
        headers, body=body.encode(), secrets=[NEW_SECRET], now=signed_at + timedelta(minutes=1)
    )

    # Then it is authentic
    assert delivery.timestamp == signed_at


def test_multiple_signatures_from_the_librarys_tests_verify_on_the_valid_one() -> None:
    # test_multi_sig_payload_is_valid: bogus v1, an unknown v2, the valid one, bogus v1
    bogus = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    header = f"v1,{bogus} v2,{bogus} {LIBRARY_SIGNATURE} v1,{bogus}"
    assert verify_standard(library_headers(header)).delivery_id == LIBRARY_MSG_ID


def test_specifications_example_header_yields_its_v1_signature_and_skips_v1a() -> None:
    # Given the spec's example: one symmetric (v1) and one asymmetric (v1a) signature
    pairs = parse_signature_list(SPEC_SIGNATURE_HEADER)

    assert [version for version, _ in pairs] == ["v1", "v1a"]
    assert symmetric_signatures(SPEC_SIGNATURE_HEADER) == [
        b"K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
    ]


@pytest.mark.parametrize("joiner", [",", ", "])
def test_repeated_signature_header_joined_by_api_gateway_verifies(joiner: str) -> None:
    # Given two webhook-signature headers (the second with two entries), comma-joined
    other = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    header = joiner.join([other, f"{other} {LIBRARY_SIGNATURE}"])

    # When / Then: the valid entry is found, though entries themselves contain commas
    assert verify_standard(library_headers(header)).delivery_id == LIBRARY_MSG_ID


def test_repeated_identical_id_and_timestamp_headers_collapse() -> None:
    headers = library_headers()
    headers["webhook-id"] = f"{LIBRARY_MSG_ID}, {LIBRARY_MSG_ID}"
    headers["webhook-timestamp"] = f"{LIBRARY_TIMESTAMP},{LIBRARY_TIMESTAMP}"
    assert verify_standard(headers).delivery_id == LIBRARY_MSG_ID


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp"])
def test_repeated_id_or_timestamp_with_different_values_is_a_bad_format(header: str) -> None:
    headers = library_headers()
    headers[header] = f"{headers[header]},{headers[header]}0"
    assert failure_of(headers) is SignatureFailure.BAD_FORMAT


@pytest.mark.parametrize(
    ("signing_secrets", "accepted_secrets"),
    [
        ([NEW_SECRET], [NEW_SECRET, OLD_SECRET]),
        ([OLD_SECRET], [NEW_SECRET, OLD_SECRET]),
        ([NEW_SECRET, OLD_SECRET], [OLD_SECRET]),
        ([OLD_SECRET, NEW_SECRET], [NEW_SECRET]),
    ],
    ids=["new-key", "old-key", "both-keys-receiver-old", "both-keys-receiver-new"],
)
def test_key_rotation_any_accepted_secret_matches_any_signature(
    signing_secrets: list[str], accepted_secrets: list[str]
) -> None:
    # Given a sender signing with one or both keys, and a receiver accepting one or both
    headers = sign_standard_webhooks(
        b"{}", secrets=signing_secrets, msg_id="msg_rot", timestamp=LIBRARY_TIMESTAMP
    )

    # When / Then
    assert verify_standard(headers, body=b"{}", secrets=accepted_secrets).delivery_id == "msg_rot"


def test_secret_matching_no_signature_is_a_mismatch() -> None:
    headers = sign_standard_webhooks(
        b"{}", secrets=[NEW_SECRET], msg_id="msg_rot", timestamp=LIBRARY_TIMESTAMP
    )
    assert failure_of(headers, body=b"{}", secrets=[OLD_SECRET]) is SignatureFailure.MISMATCH


def test_binary_payload_verifies_because_the_raw_bytes_are_signed() -> None:
    body = bytes(range(256))
    headers = sign_standard_webhooks(
        body, secrets=[NEW_SECRET], msg_id="msg_bin", timestamp=LIBRARY_TIMESTAMP
    )
    assert verify_standard(headers, body=body, secrets=[NEW_SECRET]).delivery_id == "msg_bin"


@pytest.mark.parametrize(
    "skew",
    [timedelta(minutes=5), -timedelta(minutes=5)],
    ids=["five-minutes-old", "five-minutes-ahead"],
)
def test_timestamp_at_the_edge_of_tolerance_is_accepted(skew: timedelta) -> None:
    assert verify_standard(library_headers(), now=LIBRARY_NOW + skew).timestamp == LIBRARY_NOW


@pytest.mark.parametrize(
    ("skew", "direction"),
    [
        (timedelta(minutes=5, seconds=1), "behind"),
        (-timedelta(minutes=5, seconds=1), "ahead of"),
        (timedelta(days=400), "behind"),
    ],
    ids=["replayed-too-late", "from-the-future", "a-year-old"],
)
def test_timestamp_outside_tolerance_is_rejected_both_ways(skew: timedelta, direction: str) -> None:
    # Given a correctly signed delivery received too late, or stamped too far ahead
    with pytest.raises(SignatureError) as caught:
        verify_standard(library_headers(), now=LIBRARY_NOW + skew)

    # Then it is refused for its timestamp, and the log says which way the clock is off
    assert caught.value.reason is SignatureFailure.TIMESTAMP_OUT_OF_TOLERANCE
    assert direction in caught.value.detail
    assert isinstance(caught.value, StaleTimestampError)
    assert caught.value.header == "webhook-timestamp"


@pytest.mark.parametrize(
    ("window", "age", "accepted"),
    [(600, 599, True), (600, 601, False), (60, 61, False), (86_400, 86_400, True)],
    ids=["ten-minutes-inside", "ten-minutes-outside", "one-minute-outside", "a-day-inside"],
)
def test_the_callers_replay_window_bounds_the_timestamp(
    window: int, age: int, accepted: bool
) -> None:
    now = LIBRARY_NOW + timedelta(seconds=age)
    if accepted:
        delivery = verify_standard(library_headers(), now=now, replay_window_seconds=window)
        assert delivery.timestamp == LIBRARY_NOW
    else:
        with pytest.raises(StaleTimestampError) as caught:
            verify_standard(library_headers(), now=now, replay_window_seconds=window)
        assert caught.value.window_seconds == window
        assert f"replay window of {window} s" in caught.value.detail


def test_a_stale_timestamp_under_a_wrong_signature_is_a_plain_mismatch() -> None:
    # Given the library's example with a wrong signature, received a day late
    with pytest.raises(SignatureError) as caught:
        verify_standard(
            library_headers(LIBRARY_WRONG_SIGNATURE), now=LIBRARY_NOW + timedelta(days=1)
        )

    # Then it is refused as unauthentic, not as stale: a forger learns nothing about the window
    assert caught.value.reason is SignatureFailure.MISMATCH
    assert not isinstance(caught.value, StaleTimestampError)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_reported_by_name(missing: str) -> None:
    headers = library_headers()
    del headers[missing]

    with pytest.raises(SignatureError) as caught:
        verify_standard(headers)

    assert caught.value.reason is SignatureFailure.MISSING_HEADER
    assert missing in caught.value.detail


def test_blank_header_counts_as_missing() -> None:
    headers = library_headers_with("webhook-signature", "  ")
    assert failure_of(headers) is SignatureFailure.MISSING_HEADER


@pytest.mark.parametrize(
    "timestamp",
    ["hello", "1614265330.0", "+1614265330", "01614265330", "0x603811f2", "1e9", "١٦١٤٢٦٥٣٣٠"],
)
def test_timestamp_that_is_not_plain_integer_seconds_is_a_bad_format(timestamp: str) -> None:
    headers = library_headers_with("webhook-timestamp", timestamp)
    assert failure_of(headers) is SignatureFailure.BAD_FORMAT


@pytest.mark.parametrize(
    "header",
    [
        "v1",
        "v1,",
        "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1 g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
        "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        SPEC_SIGNATURE_HEADER.split(" ")[1],
    ],
    ids=[
        "version-only",
        "empty-signature",
        "no-version",
        "space-for-comma",
        "unpadded",
        "url-safe-alphabet",
        "double-comma",
        "upper-case-version",
        "only-asymmetric",
    ],
)
def test_malformed_signature_list_is_a_bad_format(header: str) -> None:
    assert failure_of(library_headers(header)) is SignatureFailure.BAD_FORMAT


@pytest.mark.parametrize("msg_id", ["msg 1", "msg\t1", "ms\u00e9g", "m" * 257])
def test_id_that_is_not_visible_ascii_is_a_bad_format(msg_id: str) -> None:
    headers = library_headers_with("webhook-id", msg_id)
    assert failure_of(headers) is SignatureFailure.BAD_FORMAT


@pytest.mark.parametrize(
    "secret",
    ["whsec_not base64!", "whsec_", "whsec_A", ""],
    ids=["not-base64", "empty", "truncated", "blank"],
)
def test_unusable_secret_is_a_server_side_error_naming_its_position(secret: str) -> None:
    # Given a route whose second secret is unusable
    # When any delivery arrives
    with pytest.raises(WebhookSecretError) as caught:
        verify_standard(library_headers(), secrets=[LIBRARY_SECRET, secret])

    # Then the configuration is at fault (not the sender), and the message says which secret
    assert "secret 2 of 2" in str(caught.value)


def test_error_for_an_unusable_secret_does_not_quote_it() -> None:
    with pytest.raises(WebhookSecretError) as caught:
        verify_standard(library_headers(), secrets=["whsec_s3cr3t-value"])
    assert "s3cr3t" not in str(caught.value)
