"""The replay key: an authentic delivery is known by what its signature covers, nothing else.

The service turns the key into the trigger id, so whatever changes the key decides what counts
as a new delivery: unsigned headers (GitHub's and the generic scheme's delivery ids) and the
time of arrival must not; signed material must.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from dagtrigger.sources.webhooks import (
    HmacSchemeConfig,
    SignatureScheme,
    replay_key,
    sign_generic_hmac,
    sign_github,
    sign_standard_webhooks,
    verify,
)

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
NOW_SECONDS = int(NOW.timestamp())
BODY = b'{"ref": "refs/heads/main", "after": "6113728f"}'
TEXT_SECRET = "It's a Secret to Everybody"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
PLAIN = HmacSchemeConfig(header="x-sig", delivery_id_header="x-request-id")
STAMPED = HmacSchemeConfig(
    header="x-sig", timestamp_header="x-ts", delivery_id_header="x-request-id"
)


def github_key(body: bytes, delivery_id: str | None, *, now: datetime = NOW) -> str:
    headers = sign_github(body, secret=TEXT_SECRET, delivery_id=delivery_id)
    return verify("github", body=body, headers=headers, secrets=[TEXT_SECRET], now=now).replay_key


def hmac_key(
    config: HmacSchemeConfig,
    body: bytes,
    delivery_id: str | None,
    *,
    timestamp: int | None = None,
    now: datetime = NOW,
) -> str:
    headers = sign_generic_hmac(
        body, config=config, secret=TEXT_SECRET, timestamp=timestamp, delivery_id=delivery_id
    )
    return verify(
        SignatureScheme.HMAC,
        body=body,
        headers=headers,
        secrets=[TEXT_SECRET],
        now=now,
        hmac_config=config,
    ).replay_key


def standard_key(body: bytes, msg_id: str, timestamp: int) -> str:
    headers = sign_standard_webhooks(
        body, secrets=[STANDARD_SECRET], msg_id=msg_id, timestamp=timestamp
    )
    return verify(
        SignatureScheme.STANDARD_WEBHOOKS,
        body=body,
        headers=headers,
        secrets=[STANDARD_SECRET],
        now=NOW,
    ).replay_key


def test_github_key_ignores_the_unsigned_delivery_id_and_the_arrival_time() -> None:
    # Given one body, delivered with GitHub's id, a replayer's ids, no id, at other times
    keys = {
        github_key(BODY, "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        github_key(BODY, "forged-id-1"),
        github_key(BODY, None),
        github_key(BODY, None, now=NOW + timedelta(days=30)),
    }

    # Then every one is the same delivery
    assert len(keys) == 1


def test_github_key_changes_with_the_body() -> None:
    assert github_key(BODY, "d-1") != github_key(BODY + b" ", "d-1")


def test_plain_hmac_key_is_the_bodys_alone_whatever_its_request_id() -> None:
    assert hmac_key(PLAIN, BODY, "req-1") == hmac_key(PLAIN, BODY, "req-2")
    assert hmac_key(PLAIN, BODY, None) == replay_key(("body", BODY))
    assert hmac_key(PLAIN, BODY, "req-1") != hmac_key(PLAIN, b"{}", "req-1")


def test_stamped_hmac_key_covers_the_signed_timestamp_but_not_the_request_id() -> None:
    # Given one body signed at two times, and one signing sent with two request ids
    first = hmac_key(STAMPED, BODY, "req-1", timestamp=NOW_SECONDS)
    resent = hmac_key(STAMPED, BODY, "req-2", timestamp=NOW_SECONDS)
    later = hmac_key(STAMPED, BODY, "req-1", timestamp=NOW_SECONDS + 60)

    # Then only the signed timestamp tells two deliveries of one body apart
    assert first == resent
    assert first != later


def test_standard_webhooks_key_covers_the_signed_id_and_body_but_not_the_timestamp() -> None:
    # Given a message, its retry signed a minute later (the spec keeps the id), another message
    first = standard_key(BODY, "msg_1", NOW_SECONDS - 60)
    retry = standard_key(BODY, "msg_1", NOW_SECONDS)
    other_message = standard_key(BODY, "msg_2", NOW_SECONDS)
    other_body = standard_key(b"{}", "msg_1", NOW_SECONDS)

    # Then the retry is the same delivery; another id or body is another one
    assert first == retry
    assert len({first, other_message, other_body}) == 3


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ((("webhook-id", b"a.b"), ("body", b"c")), (("webhook-id", b"a"), ("body", b"b.c"))),
        ((("timestamp", b"1"), ("body", b"2")), (("timestamp", b"12"), ("body", b""))),
        ((("body", b"x"),), (("timestamp", b""), ("body", b"x"))),
        ((("body", b"x"),), (("bod", b"yx"),)),
    ],
    ids=["id-dot-body", "timestamp-body-split", "extra-empty-part", "name-value-split"],
)
def test_no_two_lists_of_parts_share_a_key(
    one: tuple[tuple[str, bytes], ...], other: tuple[tuple[str, bytes], ...]
) -> None:
    assert replay_key(*one) != replay_key(*other)


def test_key_is_hex_sha256() -> None:
    key = replay_key(("body", b"{}"))
    assert len(key) == 64
    assert set(key) <= set("0123456789abcdef")
