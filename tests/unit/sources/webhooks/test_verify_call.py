"""How verify must be called: mistakes by the caller fail loudly, never open the door."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dagtrigger.sources.webhooks import (
    HmacSchemeConfig,
    SignatureScheme,
    WebhookSecretError,
    sign_github,
    sign_standard_webhooks,
    verify,
)

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
HEADERS = sign_github(b"{}", secret="s")


def test_a_bare_string_of_secrets_is_refused_rather_than_split_into_letters() -> None:
    # Given a caller passing one secret where a list is expected; as a sequence of
    # one-letter secrets, a signature made with the key "s" would otherwise verify
    with pytest.raises(TypeError, match="not a single string"):
        verify(SignatureScheme.GITHUB, body=b"{}", headers=HEADERS, secrets="secret", now=NOW)


@pytest.mark.parametrize("secrets", [[], [""]], ids=["no-secret", "empty-secret"])
def test_no_usable_secret_is_a_server_side_error(secrets: list[str]) -> None:
    with pytest.raises(WebhookSecretError):
        verify(SignatureScheme.GITHUB, body=b"{}", headers=HEADERS, secrets=secrets, now=NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify("github", body=b"{}", headers=HEADERS, secrets=["s"], now=datetime(2026, 11, 21))


def test_text_body_is_refused_because_the_raw_bytes_are_signed() -> None:
    with pytest.raises(TypeError, match="raw bytes"):
        verify("github", body="{}", headers=HEADERS, secrets=["s"], now=NOW)  # type: ignore[arg-type]


def test_scheme_may_be_given_by_its_name() -> None:
    assert verify("github", body=b"{}", headers=HEADERS, secrets=["s"], now=NOW).scheme == "github"


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="'jwt' is not a valid SignatureScheme"):
        verify("jwt", body=b"{}", headers=HEADERS, secrets=["s"], now=NOW)


@pytest.mark.parametrize(
    ("scheme", "hmac_config"),
    [(SignatureScheme.HMAC, None), (SignatureScheme.GITHUB, HmacSchemeConfig(header="x-sig"))],
    ids=["hmac-without-config", "config-for-another-scheme"],
)
def test_hmac_config_goes_with_the_hmac_scheme_only(
    scheme: SignatureScheme, hmac_config: HmacSchemeConfig | None
) -> None:
    with pytest.raises(ValueError, match="hmac_config"):
        verify(scheme, body=b"{}", headers=HEADERS, secrets=["s"], now=NOW, hmac_config=hmac_config)


@pytest.mark.parametrize(
    ("window", "complaint"),
    [(0, "between 1 and 86400"), (86_401, "between 1 and 86400"), (True, "an integer")],
    ids=["zero", "over-a-day", "bool"],
)
def test_a_replay_window_out_of_range_is_refused(window: int, complaint: str) -> None:
    with pytest.raises(ValueError, match=f"replay_window_seconds must be {complaint}"):
        verify(
            "github",
            body=b"{}",
            headers=HEADERS,
            secrets=["s"],
            now=NOW,
            replay_window_seconds=window,
        )


def test_now_in_any_time_zone_is_the_same_instant() -> None:
    # Given a Standard Webhooks delivery stamped at NOW, and the clock read in UTC+05:30
    secret = "whsec_" + "a2V5" * 8
    headers = sign_standard_webhooks(
        b"{}", secrets=[secret], msg_id="msg_tz", timestamp=int(NOW.timestamp())
    )
    india = NOW.astimezone(timezone(timedelta(hours=5, minutes=30)))

    # When / Then: it is within tolerance, and its timestamp is reported in UTC
    delivery = verify("standard-webhooks", body=b"{}", headers=headers, secrets=[secret], now=india)
    assert delivery.timestamp == NOW
    assert delivery.timestamp.tzinfo is UTC


def test_header_names_differing_only_in_case_are_joined_like_repeated_headers() -> None:
    # Given a caller that kept two spellings of one repeated header apart
    stale = sign_github(b"{}", secret="old")["x-hub-signature-256"]
    headers = {"X-Hub-Signature-256": stale, **HEADERS}

    # When / Then: both values are considered, as API Gateway would have joined them
    delivery = verify("github", body=b"{}", headers=headers, secrets=["s"], now=NOW)
    assert delivery.scheme is SignatureScheme.GITHUB
