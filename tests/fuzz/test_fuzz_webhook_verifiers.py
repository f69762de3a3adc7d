"""Fuzz: the webhook signature verifiers (``dagtrigger.sources.webhooks.verify``).

For each scheme (Standard Webhooks, GitHub, and the generic HMAC under random configurations),
with hypothesis-generated bodies, headers, secrets and times:

* a delivery verifies if and only if it was signed with the route's secret over exactly the
  material delivered (body; signed timestamp and id where the scheme signs them), whatever
  unsigned headers come with it; deliveries are signed here by an oracle written from each
  scheme's specification with ``hmac``, not by the package's own signers;
* any single-byte change to the body, or single-character change to the signature or the
  signed timestamp, is refused;
* an authentic delivery is refused as stale exactly when its signed timestamp is outside the
  window; a forged one is never told so;
* arbitrary garbage headers, alone or beside a valid signature, never raise anything but
  ``SignatureError`` (the API's bare 401): no exception that would become a 500.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dagtrigger.sources.webhooks import (
    HmacSchemeConfig,
    SignatureError,
    SignatureScheme,
    StaleTimestampError,
    VerifiedDelivery,
    verify,
)

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
NOW_SECONDS = int(NOW.timestamp())
WINDOW = 300
FUZZ = settings(deadline=None)

STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
GITHUB_HEADERS = ("x-hub-signature-256", "x-github-delivery")

# Secrets are text from Secrets Manager (valid UTF-8). HMAC pads a short key with zero bytes, so
# "k" and "k\0" are one key: secrets leave NUL out so that two different secrets are two keys.
text_secrets = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=64
).filter(lambda secret: secret == secret.strip())
standard_keys = st.binary(min_size=1, max_size=64).filter(lambda key: not key.endswith(b"\x00"))
bodies = st.binary(max_size=1024)
# What the signing module admits as an id: visible ASCII, no comma (API Gateway's joiner).
message_ids = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=","),
    min_size=1,
    max_size=64,
)
offsets_inside = st.integers(min_value=-WINDOW, max_value=WINDOW)
header_names = st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True)
# Any code point, lone surrogates too: a JSON event can escape one into a header's value.
garbage_values = st.text(alphabet=st.characters(), max_size=120)


def spellings(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """The names as sent in any of three cases: two spellings of one name are joined."""
    return st.sampled_from([form for name in names for form in (name, name.upper(), name.title())])


def unsigned_headers(reserved: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    """Extra headers a sender or a replayer may add: they must never matter."""
    return st.dictionaries(
        header_names.filter(lambda name: name not in reserved), garbage_values, max_size=5
    )


# --- oracles: each scheme's signature, computed from its specification ---------------------


def standard_secret(key: bytes) -> str:
    return "whsec_" + base64.b64encode(key).decode()


def standard_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(key, content, "sha256")).decode()


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.digest(secret.encode(), body, "sha256").hex()


def hmac_signature(
    config: HmacSchemeConfig, secret: str, body: bytes, timestamp: str | None
) -> str:
    content = body if timestamp is None else f"{timestamp}.".encode() + body
    digest = hmac.digest(secret.encode(), content, config.algorithm)
    encoded = digest.hex() if config.encoding == "hex" else base64.b64encode(digest).decode()
    return config.prefix + encoded


hmac_configs = st.builds(
    HmacSchemeConfig,
    header=st.sampled_from(["x-signature", "X-Hook-Sig", "signature"]),
    algorithm=st.sampled_from(["sha256", "sha512", "sha1"]),
    encoding=st.sampled_from(["hex", "base64"]),
    prefix=st.sampled_from(["", "sha256=", "v1=", "t1:"]),
    timestamp_header=st.sampled_from([None, "x-timestamp"]),
    tolerance_seconds=st.integers(min_value=WINDOW, max_value=3600),
    delivery_id_header=st.sampled_from([None, "x-request-id"]),
)


# --- one signed delivery per scheme --------------------------------------------------------


@dataclass(frozen=True)
class Material:
    """What a signature covers: the body, and the timestamp and id where the scheme signs them."""

    body: bytes
    timestamp: str | None = None
    msg_id: str | None = None


def standard_headers(key: bytes, material: Material) -> dict[str, str]:
    assert material.msg_id is not None
    assert material.timestamp is not None
    return {
        "webhook-id": material.msg_id,
        "webhook-timestamp": material.timestamp,
        "webhook-signature": standard_signature(
            key, material.msg_id, material.timestamp, material.body
        ),
    }


def verify_standard(body: bytes, headers: dict[str, str], key: bytes) -> VerifiedDelivery:
    return verify(
        SignatureScheme.STANDARD_WEBHOOKS,
        body=body,
        headers=headers,
        secrets=[standard_secret(key)],
        now=NOW,
        replay_window_seconds=WINDOW,
    )


def verify_github(body: bytes, headers: dict[str, str], secret: str) -> VerifiedDelivery:
    return verify(SignatureScheme.GITHUB, body=body, headers=headers, secrets=[secret], now=NOW)


def hmac_headers(config: HmacSchemeConfig, secret: str, material: Material) -> dict[str, str]:
    headers = {config.header: hmac_signature(config, secret, material.body, material.timestamp)}
    if config.timestamp_header is not None:
        assert material.timestamp is not None
        headers[config.timestamp_header] = material.timestamp
    return headers


def verify_hmac(
    config: HmacSchemeConfig, body: bytes, headers: dict[str, str], secret: str
) -> VerifiedDelivery:
    return verify(
        SignatureScheme.HMAC,
        body=body,
        headers=headers,
        secrets=[secret],
        now=NOW,
        hmac_config=config,
        replay_window_seconds=WINDOW,
    )


def outcome(check: Any) -> VerifiedDelivery | SignatureError:
    """The verifier's answer: a verified delivery or its refusal (anything else propagates)."""
    try:
        return check()
    except SignatureError as refused:
        return refused


@st.composite
def timestamps_inside(draw: st.DrawFn) -> str:
    return str(NOW_SECONDS + draw(offsets_inside))


@st.composite
def same_or_other(draw: st.DrawFn, signed: Any, other: st.SearchStrategy[Any]) -> Any:
    return signed if draw(st.booleans()) else draw(other)


@st.composite
def one_byte_changed(draw: st.DrawFn, original: bytes) -> bytes:
    index = draw(st.integers(min_value=0, max_value=len(original) - 1))
    byte = draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != original[index]))
    return original[:index] + bytes([byte]) + original[index + 1 :]


@st.composite
def one_character_changed(draw: st.DrawFn, original: str) -> str:
    index = draw(st.integers(min_value=0, max_value=len(original) - 1))
    character = draw(st.characters().filter(lambda c: c != original[index]))
    return original[:index] + character + original[index + 1 :]


# --- verifies iff signed with the route's secret over exactly the material delivered --------


@FUZZ
@given(
    data=st.data(),
    route_key=standard_keys,
    signed=st.builds(Material, body=bodies, timestamp=timestamps_inside(), msg_id=message_ids),
    extra=unsigned_headers(STANDARD_HEADERS),
)
def test_standard_webhooks_verifies_iff_signed_with_the_routes_key_over_the_material(
    data: st.DataObject, route_key: bytes, signed: Material, extra: dict[str, str]
) -> None:
    signer_key = data.draw(same_or_other(route_key, standard_keys))
    delivered = Material(
        body=data.draw(same_or_other(signed.body, bodies)),
        timestamp=data.draw(same_or_other(signed.timestamp, timestamps_inside())),
        msg_id=data.draw(same_or_other(signed.msg_id, message_ids)),
    )
    headers = {
        **extra,
        **standard_headers(signer_key, signed),
        "webhook-id": str(delivered.msg_id),
        "webhook-timestamp": str(delivered.timestamp),
    }

    result = outcome(lambda: verify_standard(delivered.body, headers, route_key))

    authentic = signer_key == route_key and delivered == signed
    assert isinstance(result, VerifiedDelivery) is authentic
    assert not isinstance(result, StaleTimestampError)


@FUZZ
@given(
    data=st.data(),
    route_secret=text_secrets,
    signed_body=bodies,
    delivery_id=st.one_of(st.none(), message_ids),
    extra=unsigned_headers(GITHUB_HEADERS),
)
def test_github_verifies_iff_signed_with_the_routes_secret_over_the_body(
    data: st.DataObject,
    route_secret: str,
    signed_body: bytes,
    delivery_id: str | None,
    extra: dict[str, str],
) -> None:
    signer_secret = data.draw(same_or_other(route_secret, text_secrets))
    body = data.draw(same_or_other(signed_body, bodies))
    headers = {**extra, "x-hub-signature-256": github_signature(signer_secret, signed_body)}
    if delivery_id is not None:
        headers["x-github-delivery"] = delivery_id

    result = outcome(lambda: verify_github(body, headers, route_secret))

    authentic = signer_secret == route_secret and body == signed_body
    assert isinstance(result, VerifiedDelivery) is authentic


@FUZZ
@given(
    data=st.data(),
    config=hmac_configs,
    route_secret=text_secrets,
    signed_body=bodies,
    delivery_id=st.one_of(st.none(), message_ids),
    extra=unsigned_headers(("x-signature", "x-hook-sig", "signature", "x-timestamp")),
)
def test_generic_hmac_verifies_iff_signed_with_the_routes_secret_over_the_material(
    data: st.DataObject,
    config: HmacSchemeConfig,
    route_secret: str,
    signed_body: bytes,
    delivery_id: str | None,
    extra: dict[str, str],
) -> None:
    stamped = config.timestamp_header is not None
    signed = Material(signed_body, data.draw(timestamps_inside()) if stamped else None)
    signer_secret = data.draw(same_or_other(route_secret, text_secrets))
    delivered = Material(
        body=data.draw(same_or_other(signed.body, bodies)),
        timestamp=data.draw(same_or_other(signed.timestamp, timestamps_inside()))
        if stamped
        else None,
    )
    headers = {**extra, **hmac_headers(config, signer_secret, signed)}
    if config.timestamp_header is not None:
        headers[config.timestamp_header] = str(delivered.timestamp)
    if config.delivery_id_header is not None and delivery_id is not None:
        headers[config.delivery_id_header] = delivery_id

    result = outcome(lambda: verify_hmac(config, delivered.body, headers, route_secret))

    authentic = signer_secret == route_secret and delivered == signed
    assert isinstance(result, VerifiedDelivery) is authentic
    assert not isinstance(result, StaleTimestampError)


# --- any single change to what is signed is refused -----------------------------------------


@FUZZ
@given(
    data=st.data(),
    key=standard_keys,
    signed=st.builds(
        Material, body=bodies.filter(bool), timestamp=timestamps_inside(), msg_id=message_ids
    ),
    part=st.sampled_from(["body", "webhook-signature", "webhook-timestamp", "webhook-id"]),
)
def test_standard_webhooks_any_single_change_is_refused(
    data: st.DataObject, key: bytes, signed: Material, part: str
) -> None:
    headers = standard_headers(key, signed)
    body = signed.body
    if part == "body":
        body = data.draw(one_byte_changed(body))
    else:
        headers[part] = data.draw(one_character_changed(headers[part]))
    # Identical repeats of one value collapse, as API Gateway's joining requires: not a change.
    assume(headers[part].strip(" \t,") != signed.msg_id if part == "webhook-id" else True)

    with pytest.raises(SignatureError):
        verify_standard(body, headers, key)


@FUZZ
@given(
    data=st.data(),
    secret=text_secrets,
    body=bodies.filter(bool),
    part=st.sampled_from(["body", "x-hub-signature-256"]),
)
def test_github_any_single_change_is_refused(
    data: st.DataObject, secret: str, body: bytes, part: str
) -> None:
    headers = {"x-hub-signature-256": github_signature(secret, body)}
    if part == "body":
        body = data.draw(one_byte_changed(body))
    else:
        headers[part] = data.draw(one_character_changed(headers[part]))

    with pytest.raises(SignatureError):
        verify_github(body, headers, secret)


@FUZZ
@given(
    data=st.data(),
    config=hmac_configs,
    secret=text_secrets,
    body=bodies.filter(bool),
    part=st.sampled_from(["body", "signature", "timestamp"]),
)
def test_generic_hmac_any_single_change_is_refused(
    data: st.DataObject, config: HmacSchemeConfig, secret: str, body: bytes, part: str
) -> None:
    timestamp = data.draw(timestamps_inside()) if config.timestamp_header else None
    headers = hmac_headers(config, secret, Material(body, timestamp))
    if part == "body":
        body = data.draw(one_byte_changed(body))
    elif part == "signature":
        headers[config.header] = data.draw(one_character_changed(headers[config.header]))
    elif config.timestamp_header is not None:
        changed = data.draw(one_character_changed(headers[config.timestamp_header]))
        headers[config.timestamp_header] = changed
    else:
        body = data.draw(one_byte_changed(body))  # no timestamp signed: change the body instead

    with pytest.raises(SignatureError):
        verify_hmac(config, body, headers, secret)


# --- the replay window: authentic deliveries only, both directions --------------------------


@FUZZ
@given(
    key=standard_keys,
    body=bodies,
    msg_id=message_ids,
    signed_at=st.integers(min_value=1, max_value=10**19 - 1),
)
def test_standard_webhooks_authentic_delivery_is_stale_iff_outside_the_window(
    key: bytes, body: bytes, msg_id: str, signed_at: int
) -> None:
    headers = standard_headers(key, Material(body, str(signed_at), msg_id))

    result = outcome(lambda: verify_standard(body, headers, key))

    inside = abs(signed_at - NOW_SECONDS) <= WINDOW
    assert isinstance(result, VerifiedDelivery if inside else StaleTimestampError)


@FUZZ
@given(
    config=hmac_configs.filter(lambda config: config.timestamp_header is not None),
    secret=text_secrets,
    body=bodies,
    signed_at=st.integers(min_value=1, max_value=10**19 - 1),
)
def test_generic_hmac_authentic_delivery_is_stale_iff_outside_the_window(
    config: HmacSchemeConfig, secret: str, body: bytes, signed_at: int
) -> None:
    headers = hmac_headers(config, secret, Material(body, str(signed_at)))

    result = outcome(lambda: verify_hmac(config, body, headers, secret))

    # The route's tolerance is never narrower than WINDOW here, so the window decides.
    inside = abs(signed_at - NOW_SECONDS) <= WINDOW
    assert isinstance(result, VerifiedDelivery if inside else StaleTimestampError)


# --- garbage never raises anything but the refusal ------------------------------------------


def garbage_headers(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    """Headers with the scheme's own names (in any case, so some are joined) and others."""
    own = spellings(names)
    return st.dictionaries(st.one_of(own, header_names), garbage_values, max_size=8)


@FUZZ
@given(headers=garbage_headers(STANDARD_HEADERS), body=bodies, key=standard_keys)
def test_standard_webhooks_garbage_headers_are_only_ever_refused(
    headers: dict[str, str], body: bytes, key: bytes
) -> None:
    with pytest.raises(SignatureError):
        verify_standard(body, headers, key)


@FUZZ
@given(headers=garbage_headers(GITHUB_HEADERS), body=bodies, secret=text_secrets)
def test_github_garbage_headers_are_only_ever_refused(
    headers: dict[str, str], body: bytes, secret: str
) -> None:
    with pytest.raises(SignatureError):
        verify_github(body, headers, secret)


@FUZZ
@given(
    config=hmac_configs,
    headers=garbage_headers(("x-signature", "signature", "x-timestamp", "x-request-id")),
    body=bodies,
    secret=text_secrets,
)
def test_generic_hmac_garbage_headers_are_only_ever_refused(
    config: HmacSchemeConfig, headers: dict[str, str], body: bytes, secret: str
) -> None:
    with pytest.raises(SignatureError):
        verify_hmac(config, body, headers, secret)


@FUZZ
@given(
    data=st.data(),
    scheme=st.sampled_from(["standard-webhooks", "github", "hmac"]),
    body=bodies,
    garbage=garbage_values,
)
def test_one_garbage_header_beside_a_valid_signature_is_verified_or_refused_nothing_else(
    data: st.DataObject, scheme: str, body: bytes, garbage: str
) -> None:
    # Given a correctly signed delivery, one of whose headers (signed or not) becomes garbage
    if scheme == "standard-webhooks":
        key = data.draw(standard_keys)
        headers = standard_headers(key, Material(body, str(NOW_SECONDS), "msg_1"))
        names: tuple[str, ...] = STANDARD_HEADERS

        def check() -> VerifiedDelivery:
            return verify_standard(body, headers, key)

    elif scheme == "github":
        secret = data.draw(text_secrets)
        headers = {"x-hub-signature-256": github_signature(secret, body)}
        names = GITHUB_HEADERS

        def check() -> VerifiedDelivery:
            return verify_github(body, headers, secret)

    else:
        config = data.draw(hmac_configs)
        secret = data.draw(text_secrets)
        timestamp = str(NOW_SECONDS) if config.timestamp_header else None
        headers = hmac_headers(config, secret, Material(body, timestamp))
        names = tuple(
            name
            for name in (config.header, config.timestamp_header, config.delivery_id_header)
            if name is not None
        )

        def check() -> VerifiedDelivery:
            return verify_hmac(config, body, headers, secret)

    name = data.draw(spellings(names))
    headers[name] = garbage

    # Then the verifier answers with a delivery or a SignatureError, never another exception
    assert isinstance(outcome(check), VerifiedDelivery | SignatureError)
