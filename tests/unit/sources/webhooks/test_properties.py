"""Properties over random deliveries: what is signed verifies, and any altered byte is refused.

A "mutation" replaces one byte of the body, or one character of a signed header value, by a
different one. Every scheme must refuse every such mutation of what it signs: the body and
the signature everywhere; the timestamp where one is signed (Standard Webhooks, timestamped
HMAC); the id where it is signed (Standard Webhooks only: GitHub and the generic scheme sign
the body alone, and their delivery id is an idempotency key, not evidence).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from dagtrigger.sources.webhooks import (
    HmacSchemeConfig,
    SignatureError,
    SignatureScheme,
    VerifiedDelivery,
    sign_generic_hmac,
    sign_github,
    sign_standard_webhooks,
    verify,
)

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
NOW_SECONDS = int(NOW.timestamp())
STAMPED_HMAC = HmacSchemeConfig(
    header="x-signature", encoding="base64", prefix="t1=", timestamp_header="x-timestamp"
)

# Deadlines off: other engineers' tests share two cores, and speed is not what is tested here.
PROPERTY = settings(deadline=None, max_examples=100)

bodies = st.binary(max_size=512)
text_secrets = st.text(min_size=1, max_size=64)
standard_secrets = st.binary(min_size=1, max_size=64).map(
    lambda key: "whsec_" + base64.b64encode(key).decode()
)
# Ids as the signing module admits them: visible ASCII, and no comma (API Gateway's joiner).
message_ids = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=","),
    min_size=1,
    max_size=64,
)
offsets = st.integers(min_value=-300, max_value=300)


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    index = draw(st.integers(min_value=0, max_value=len(original) - 1))
    replacement = draw(
        st.integers(min_value=0, max_value=255).filter(lambda b: b != original[index])
    )
    return original[:index] + bytes([replacement]) + original[index + 1 :]


@st.composite
def mutated_text(draw: st.DrawFn, original: str) -> str:
    index = draw(st.integers(min_value=0, max_value=len(original) - 1))
    replacement = draw(st.characters().filter(lambda c: c != original[index]))
    return original[:index] + replacement + original[index + 1 :]


def verify_standard(body: bytes, headers: dict[str, str], secret: str) -> VerifiedDelivery:
    return verify(
        SignatureScheme.STANDARD_WEBHOOKS, body=body, headers=headers, secrets=[secret], now=NOW
    )


def verify_github(body: bytes, headers: dict[str, str], secret: str) -> VerifiedDelivery:
    return verify(SignatureScheme.GITHUB, body=body, headers=headers, secrets=[secret], now=NOW)


def verify_stamped_hmac(body: bytes, headers: dict[str, str], secret: str) -> VerifiedDelivery:
    return verify(
        SignatureScheme.HMAC,
        body=body,
        headers=headers,
        secrets=[secret],
        now=NOW,
        hmac_config=STAMPED_HMAC,
    )


# Standard Webhooks ------------------------------------------------------------------------


@PROPERTY
@given(body=bodies, secret=standard_secrets, msg_id=message_ids, offset=offsets)
def test_standard_webhooks_signed_delivery_verifies(
    body: bytes, secret: str, msg_id: str, offset: int
) -> None:
    headers = sign_standard_webhooks(
        body, secrets=[secret], msg_id=msg_id, timestamp=NOW_SECONDS + offset
    )

    delivery = verify_standard(body, headers, secret)

    assert delivery.delivery_id == msg_id
    assert delivery.timestamp == NOW + timedelta(seconds=offset)


@PROPERTY
@given(
    body=st.text(max_size=256),
    key=st.binary(min_size=1, max_size=64),
    msg_id=message_ids,
    offset=offsets,
)
def test_standard_webhooks_signature_equals_the_reference_librarys(
    body: str, key: bytes, msg_id: str, offset: int
) -> None:
    # The reference library signs text payloads only, so the oracle runs on text bodies.
    secret = "whsec_" + base64.b64encode(key).decode()
    timestamp = NOW_SECONDS + offset
    ours = sign_standard_webhooks(
        body.encode(), secrets=[secret], msg_id=msg_id, timestamp=timestamp
    )
    theirs = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body)
    assert ours["webhook-signature"] == theirs


@PROPERTY
@given(
    data=st.data(),
    body=bodies.filter(bool),
    secret=standard_secrets,
    msg_id=message_ids,
    offset=offsets,
)
def test_standard_webhooks_any_body_mutation_is_refused(
    data: st.DataObject, body: bytes, secret: str, msg_id: str, offset: int
) -> None:
    headers = sign_standard_webhooks(
        body, secrets=[secret], msg_id=msg_id, timestamp=NOW_SECONDS + offset
    )
    with pytest.raises(SignatureError):
        verify_standard(data.draw(mutated_bytes(body)), headers, secret)


@PROPERTY
@given(
    data=st.data(),
    header=st.sampled_from(["webhook-signature", "webhook-timestamp", "webhook-id"]),
    body=bodies,
    secret=standard_secrets,
    msg_id=message_ids,
    offset=offsets,
)
def test_standard_webhooks_any_signature_timestamp_or_id_mutation_is_refused(
    data: st.DataObject, header: str, body: bytes, secret: str, msg_id: str, offset: int
) -> None:
    headers = sign_standard_webhooks(
        body, secrets=[secret], msg_id=msg_id, timestamp=NOW_SECONDS + offset
    )
    headers[header] = data.draw(mutated_text(headers[header]))
    with pytest.raises(SignatureError):
        verify_standard(body, headers, secret)


@PROPERTY
@given(
    body=bodies,
    secrets=st.lists(standard_secrets, min_size=1, max_size=4, unique=True),
    signer=st.integers(min_value=0, max_value=3),
    joiner=st.sampled_from([" ", ",", ", "]),
    msg_id=message_ids,
)
def test_standard_webhooks_rotation_any_accepted_secret_verifies_however_headers_are_joined(
    body: bytes, secrets: list[str], signer: int, joiner: str, msg_id: str
) -> None:
    # Given a sender signing with every key it has, its signatures spread over repeated
    # headers that API Gateway comma-joins (or one space-delimited header)
    headers = sign_standard_webhooks(body, secrets=secrets, msg_id=msg_id, timestamp=NOW_SECONDS)
    headers["webhook-signature"] = joiner.join(headers["webhook-signature"].split(" "))

    # When the receiver accepts any one of those keys
    accepted = secrets[signer % len(secrets)]

    # Then the delivery verifies
    assert verify_standard(body, headers, accepted).delivery_id == msg_id


# GitHub -----------------------------------------------------------------------------------


@PROPERTY
@given(body=bodies, secret=text_secrets)
def test_github_signed_delivery_verifies(body: bytes, secret: str) -> None:
    headers = sign_github(body, secret=secret, delivery_id="d-1")
    assert verify_github(body, headers, secret).delivery_id == "d-1"


@PROPERTY
@given(data=st.data(), body=bodies.filter(bool), secret=text_secrets)
def test_github_any_body_mutation_is_refused(data: st.DataObject, body: bytes, secret: str) -> None:
    headers = sign_github(body, secret=secret)
    with pytest.raises(SignatureError):
        verify_github(data.draw(mutated_bytes(body)), headers, secret)


@PROPERTY
@given(data=st.data(), body=bodies, secret=text_secrets)
def test_github_any_signature_mutation_is_refused(
    data: st.DataObject, body: bytes, secret: str
) -> None:
    headers = sign_github(body, secret=secret)
    headers["x-hub-signature-256"] = data.draw(mutated_text(headers["x-hub-signature-256"]))
    with pytest.raises(SignatureError):
        verify_github(body, headers, secret)


# Generic HMAC, timestamped ----------------------------------------------------------------


@PROPERTY
@given(body=bodies, secret=text_secrets, offset=offsets)
def test_stamped_hmac_signed_delivery_verifies(body: bytes, secret: str, offset: int) -> None:
    headers = sign_generic_hmac(
        body, config=STAMPED_HMAC, secret=secret, timestamp=NOW_SECONDS + offset
    )
    assert verify_stamped_hmac(body, headers, secret).timestamp == NOW + timedelta(seconds=offset)


@PROPERTY
@given(data=st.data(), body=bodies.filter(bool), secret=text_secrets, offset=offsets)
def test_stamped_hmac_any_body_mutation_is_refused(
    data: st.DataObject, body: bytes, secret: str, offset: int
) -> None:
    headers = sign_generic_hmac(
        body, config=STAMPED_HMAC, secret=secret, timestamp=NOW_SECONDS + offset
    )
    with pytest.raises(SignatureError):
        verify_stamped_hmac(data.draw(mutated_bytes(body)), headers, secret)


@PROPERTY
@given(
    data=st.data(),
    header=st.sampled_from(["x-signature", "x-timestamp"]),
    body=bodies,
    secret=text_secrets,
    offset=offsets,
)
def test_stamped_hmac_any_signature_or_timestamp_mutation_is_refused(
    data: st.DataObject, header: str, body: bytes, secret: str, offset: int
) -> None:
    headers = sign_generic_hmac(
        body, config=STAMPED_HMAC, secret=secret, timestamp=NOW_SECONDS + offset
    )
    headers[header] = data.draw(mutated_text(headers[header]))
    with pytest.raises(SignatureError):
        verify_stamped_hmac(body, headers, secret)


# Exhaustively, for one delivery per scheme -------------------------------------------------

REPLACEMENTS = [chr(code) for code in range(0x20, 0x7F)] + ["\t", "\x00", "\u00e9", "\u2028"]


def every_mutation(value: str) -> list[str]:
    return [
        value[:index] + replacement + value[index + 1 :]
        for index in range(len(value))
        for replacement in REPLACEMENTS
        if replacement != value[index]
    ]


@pytest.mark.parametrize("header", ["webhook-signature", "webhook-timestamp", "webhook-id"])
def test_standard_webhooks_every_single_character_mutation_is_refused(header: str) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    signed = sign_standard_webhooks(b"{}", secrets=[secret], msg_id="msg_1a", timestamp=NOW_SECONDS)
    accepted = [
        mutation
        for mutation in every_mutation(signed[header])
        if _verifies(lambda h: verify_standard(b"{}", h, secret), {**signed, header: mutation})
    ]
    assert accepted == []


@pytest.mark.parametrize(
    ("sign", "check", "headers_signed"),
    [
        (
            lambda: sign_github(b"{}", secret="s"),
            lambda h: verify_github(b"{}", h, "s"),
            ["x-hub-signature-256"],
        ),
        (
            lambda: sign_generic_hmac(
                b"{}", config=STAMPED_HMAC, secret="s", timestamp=NOW_SECONDS
            ),
            lambda h: verify_stamped_hmac(b"{}", h, "s"),
            ["x-signature", "x-timestamp"],
        ),
    ],
    ids=["github", "stamped-hmac"],
)
def test_github_and_hmac_every_single_character_mutation_is_refused(
    sign: Callable[[], dict[str, str]],
    check: Callable[[dict[str, str]], VerifiedDelivery],
    headers_signed: list[str],
) -> None:
    signed = sign()
    accepted = [
        (header, mutation)
        for header in headers_signed
        for mutation in every_mutation(signed[header])
        if _verifies(check, {**signed, header: mutation})
    ]
    assert accepted == []


def _verifies(check: Callable[[dict[str, str]], VerifiedDelivery], headers: dict[str, str]) -> bool:
    try:
        check(headers)
    except SignatureError:
        return False
    return True
