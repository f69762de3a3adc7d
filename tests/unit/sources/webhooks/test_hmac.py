"""The generic HMAC scheme, configured per route."""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from dagtrigger.sources.webhooks import (
    HmacSchemeConfig,
    SignatureError,
    SignatureFailure,
    SignatureScheme,
    StaleTimestampError,
    VerifiedDelivery,
    replay_key,
    sign_generic_hmac,
    verify,
)

# RFC 2202 and RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
RFC_KEY = "Jefe"
RFC_DATA = b"what do ya want for nothing?"
RFC_HMAC_HEX = {
    "sha1": "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
    "sha256": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    "sha512": (
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
    ),
}
GITHUB_DOCS_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
NOW_SECONDS = int(NOW.timestamp())
SECRET = "in-house shared secret"
PLAIN = HmacSchemeConfig(header="x-sig")
STAMPED = HmacSchemeConfig(
    header="X-Signature",
    prefix="v1=",
    timestamp_header="X-Signature-Timestamp",
    tolerance_seconds=60,
    delivery_id_header="X-Request-Id",
)


def verify_hmac(
    config: HmacSchemeConfig,
    headers: dict[str, str],
    *,
    body: bytes = b"{}",
    secrets: list[str] | None = None,
    replay_window_seconds: int = 300,
) -> VerifiedDelivery:
    return verify(
        SignatureScheme.HMAC,
        body=body,
        headers=headers,
        secrets=secrets if secrets is not None else [SECRET],
        now=NOW,
        hmac_config=config,
        replay_window_seconds=replay_window_seconds,
    )


def failure_of(
    config: HmacSchemeConfig,
    headers: dict[str, str],
    *,
    body: bytes = b"{}",
    replay_window_seconds: int = 300,
) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify_hmac(config, headers, body=body, replay_window_seconds=replay_window_seconds)
    return caught.value


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_rfc_vectors_verify_for_every_algorithm_and_encoding(algorithm: str, encoding: str) -> None:
    # Given the RFC's HMAC, written the way the route says its sender writes it
    config = HmacSchemeConfig(header="x-sig", algorithm=algorithm, encoding=encoding)  # type: ignore[arg-type]
    digest = bytes.fromhex(RFC_HMAC_HEX[algorithm])
    signature = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()

    # When the RFC's data arrives with it
    delivery = verify_hmac(config, {"x-sig": signature}, body=RFC_DATA, secrets=[RFC_KEY])

    # Then it verifies, with no timestamp and no delivery id configured, known by its body
    assert delivery == VerifiedDelivery(
        delivery_id=None,
        timestamp=None,
        scheme=SignatureScheme.HMAC,
        replay_key=replay_key(("body", RFC_DATA)),
    )


def test_githubs_published_example_verifies_through_a_prefixed_generic_scheme() -> None:
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    config = HmacSchemeConfig(header="x-hub-signature-256", prefix="sha256=")
    delivery = verify_hmac(
        config,
        {"x-hub-signature-256": GITHUB_DOCS_SIGNATURE},
        body=b"Hello, World!",
        secrets=["It's a Secret to Everybody"],
    )
    assert delivery.scheme is SignatureScheme.HMAC


def test_signer_signs_timestamp_dot_body_when_a_timestamp_header_is_configured() -> None:
    headers = sign_generic_hmac(b"{}", config=STAMPED, secret=SECRET, timestamp=NOW_SECONDS)

    independent = hmac.new(SECRET.encode(), f"{NOW_SECONDS}.{{}}".encode(), "sha256").hexdigest()
    assert headers == {
        "x-signature": "v1=" + independent,
        "x-signature-timestamp": str(NOW_SECONDS),
    }


def test_timestamped_delivery_verifies_with_its_time_and_delivery_id() -> None:
    # Given a Stripe/Slack-style delivery stamped 30 s ago, with a request id
    headers = sign_generic_hmac(
        b"{}", config=STAMPED, secret=SECRET, timestamp=NOW_SECONDS - 30, delivery_id="req-1"
    )

    # When it is verified
    delivery = verify_hmac(STAMPED, headers)

    # Then its time and id come back, and it is known by its signed timestamp and body
    assert delivery == VerifiedDelivery(
        delivery_id="req-1",
        timestamp=NOW - timedelta(seconds=30),
        scheme=SignatureScheme.HMAC,
        replay_key=replay_key(("timestamp", str(NOW_SECONDS - 30).encode()), ("body", b"{}")),
    )


@pytest.mark.parametrize("age", [61, -61, 86_400])
def test_timestamp_outside_the_routes_tolerance_is_rejected_both_ways(age: int) -> None:
    headers = sign_generic_hmac(b"{}", config=STAMPED, secret=SECRET, timestamp=NOW_SECONDS - age)
    assert failure_of(STAMPED, headers).reason is SignatureFailure.TIMESTAMP_OUT_OF_TOLERANCE


@pytest.mark.parametrize(
    ("tolerance", "window", "age", "refused"),
    [
        (60, 300, 61, True),
        (600, 300, 301, True),
        (600, 900, 599, False),
        (600, 900, 601, True),
    ],
    ids=["route-narrower", "window-narrower", "inside-both", "outside-the-route"],
)
def test_the_smaller_of_the_routes_tolerance_and_the_replay_window_applies(
    tolerance: int, window: int, age: int, refused: bool
) -> None:
    # Given a route with its own tolerance, and a deployment's replay window
    config = HmacSchemeConfig(header="x-sig", timestamp_header="x-ts", tolerance_seconds=tolerance)
    headers = sign_generic_hmac(b"{}", config=config, secret=SECRET, timestamp=NOW_SECONDS - age)

    # When / Then: the delivery is refused exactly when it is older than the smaller of the two
    if refused:
        error = failure_of(config, headers, replay_window_seconds=window)
        assert isinstance(error, StaleTimestampError)
        assert error.window_seconds == min(tolerance, window)
        assert error.header == "x-ts"
    else:
        assert verify_hmac(config, headers, replay_window_seconds=window).timestamp is not None


def test_a_stale_timestamp_under_a_wrong_signature_is_a_plain_mismatch() -> None:
    # Given a delivery an hour old, signed with a secret the route does not accept
    headers = sign_generic_hmac(b"{}", config=STAMPED, secret="guess", timestamp=NOW_SECONDS - 3600)

    # Then it is refused as unauthentic, not as stale: a forger learns nothing about the window
    error = failure_of(STAMPED, headers)
    assert error.reason is SignatureFailure.MISMATCH
    assert not isinstance(error, StaleTimestampError)


def test_timestamp_moved_within_tolerance_is_a_mismatch_because_it_is_signed() -> None:
    headers = sign_generic_hmac(b"{}", config=STAMPED, secret=SECRET, timestamp=NOW_SECONDS)
    headers["x-signature-timestamp"] = str(NOW_SECONDS - 1)
    assert failure_of(STAMPED, headers).reason is SignatureFailure.MISMATCH


@pytest.mark.parametrize("missing", ["x-signature", "x-signature-timestamp"])
def test_missing_signature_or_timestamp_header_is_reported_by_name(missing: str) -> None:
    headers = sign_generic_hmac(b"{}", config=STAMPED, secret=SECRET, timestamp=NOW_SECONDS)
    del headers[missing]

    error = failure_of(STAMPED, headers)

    assert error.reason is SignatureFailure.MISSING_HEADER
    assert missing in error.detail.lower()


def test_delivery_without_its_optional_id_header_verifies_with_no_id() -> None:
    headers = sign_generic_hmac(b"{}", config=STAMPED, secret=SECRET, timestamp=NOW_SECONDS)
    assert verify_hmac(STAMPED, headers).delivery_id is None


@pytest.mark.parametrize(
    ("config", "signature"),
    [
        (STAMPED, "v2=" + "0" * 64),
        (STAMPED, "0" * 64),
        (PLAIN, "A" * 64),
        (PLAIN, "0" * 63),
        (HmacSchemeConfig(header="x-sig", encoding="base64"), "0" * 64),
        (HmacSchemeConfig(header="x-sig", encoding="base64"), "A" * 44),
        (HmacSchemeConfig(header="x-sig", encoding="base64", algorithm="sha512"), "A" * 87 + "="),
    ],
    ids=[
        "wrong-prefix",
        "no-prefix",
        "upper-case-hex",
        "short-hex",
        "hex-for-base64",
        "base64-unpadded",
        "base64-short-padding",
    ],
)
def test_signature_of_the_wrong_shape_is_a_bad_format(
    config: HmacSchemeConfig, signature: str
) -> None:
    headers = {config.header: signature, "x-signature-timestamp": str(NOW_SECONDS)}
    assert failure_of(config, headers).reason is SignatureFailure.BAD_FORMAT


@pytest.mark.parametrize("joiner", [",", ", "])
def test_repeated_signature_header_joined_by_api_gateway_verifies_if_one_matches(
    joiner: str,
) -> None:
    current = sign_generic_hmac(b"{}", config=PLAIN, secret=SECRET)["x-sig"]
    stale = sign_generic_hmac(b"{}", config=PLAIN, secret="old")["x-sig"]
    assert (
        verify_hmac(PLAIN, {"x-sig": joiner.join([stale, current])}).scheme is SignatureScheme.HMAC
    )


@pytest.mark.parametrize("signing_secret", ["new", "old"])
def test_during_rotation_old_and_new_secrets_both_verify(signing_secret: str) -> None:
    headers = sign_generic_hmac(b"{}", config=PLAIN, secret=signing_secret)
    assert verify_hmac(PLAIN, headers, secrets=["new", "old"]).scheme is SignatureScheme.HMAC


def test_signature_from_an_unknown_secret_is_a_mismatch() -> None:
    headers = sign_generic_hmac(b"{}", config=PLAIN, secret="retired")
    assert failure_of(PLAIN, headers).reason is SignatureFailure.MISMATCH


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"header": ""}, "header must be an HTTP header name"),
        ({"header": "x sig"}, "header must be an HTTP header name"),
        ({"timestamp_header": "x:ts"}, "timestamp_header must be an HTTP header name"),
        ({"delivery_id_header": "x\nid"}, "delivery_id_header must be an HTTP header name"),
        ({"algorithm": "md5"}, "algorithm must be one of"),
        ({"encoding": "base32"}, "encoding must be one of"),
        ({"prefix": "sha256=, "}, "prefix must be printable ASCII"),
        ({"tolerance_seconds": 0}, "tolerance_seconds must be between"),
        ({"tolerance_seconds": 86_401}, "tolerance_seconds must be between"),
        ({"tolerance_seconds": True}, "tolerance_seconds must be an integer"),
    ],
)
def test_invalid_route_configuration_says_which_field_is_wrong(
    fields: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        HmacSchemeConfig(**{"header": "x-sig", **fields})  # type: ignore[arg-type]
