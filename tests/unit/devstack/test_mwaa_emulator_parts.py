"""The MWAA emulator's pure parts: rate limit, tokens, faults, CLI allowlist, errors, TLS files."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from devstack.mwaa_emulator.cli_commands import UnsupportedCliCommand, parse_cli_command
from devstack.mwaa_emulator.errors import MwaaError, rest_api_error
from devstack.mwaa_emulator.faults import FaultInjector, FaultSpec
from devstack.mwaa_emulator.throttle import TokenBucket
from devstack.mwaa_emulator.tls import ensure_tls_files
from devstack.mwaa_emulator.tokens import TokenStore


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- token bucket ------------------------------------------------------------------------------


def test_token_bucket_allows_one_seconds_burst_then_refuses() -> None:
    # Given a bucket of 10 per second on a frozen clock
    bucket = TokenBucket(10, clock=FakeClock())
    # When 11 requests arrive at the same instant
    answers = [bucket.try_acquire() for _ in range(11)]
    # Then the first 10 pass and the 11th is refused
    assert answers == [True] * 10 + [False]


def test_token_bucket_refills_at_its_rate() -> None:
    # Given an empty bucket of 10 per second
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock)
    while bucket.try_acquire():
        pass
    # When a tenth of a second passes
    clock.now += 0.1
    # Then exactly one more request passes
    assert [bucket.try_acquire(), bucket.try_acquire()] == [True, False]


def test_token_bucket_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate_per_second must be positive"):
        TokenBucket(0, clock=FakeClock())


# -- tokens -----------------------------------------------------------------------------------


def test_token_is_valid_for_sixty_seconds_and_for_its_environment_only() -> None:
    # Given a token issued for "dev"
    clock = FakeClock()
    store = TokenStore(clock=clock)
    token = store.issue("dev")
    # Then it names "dev" just before 60 s and nothing from 60 s on
    clock.now += 59.9
    assert store.environment_of(token) == "dev"
    clock.now += 0.1
    assert store.environment_of(token) is None


def test_unknown_token_names_no_environment() -> None:
    store = TokenStore(clock=FakeClock())
    store.issue("dev")
    assert store.environment_of("not-a-token") is None


def test_tokens_are_distinct() -> None:
    store = TokenStore(clock=FakeClock())
    assert store.issue("dev") != store.issue("dev")


# -- faults -----------------------------------------------------------------------------------


def test_fail_next_fails_exactly_that_many_calls() -> None:
    # Given a fault that fails the next 2 calls
    faults = FaultInjector(clock=FakeClock())
    faults.set("InvokeRestApi", error="ThrottlingException", fail_next=2)
    # When 3 calls are decided
    errors = [faults.decide("InvokeRestApi").error for _ in range(3)]  # type: ignore[union-attr]
    # Then the first two fail with the error and the third passes
    assert errors == ["ThrottlingException", "ThrottlingException", None]


def test_seeded_error_rate_repeats_the_same_pattern() -> None:
    # Given two injectors with the same seed and a 50 % error rate
    patterns = []
    for _ in range(2):
        faults = FaultInjector(clock=FakeClock())
        faults.set("CreateCliToken", error=503, error_rate=0.5, seed=7)
        decisions = [faults.decide("CreateCliToken") for _ in range(40)]
        patterns.append([d.error for d in decisions if d is not None])
    # Then both fail the same calls, and some calls fail while others pass
    assert patterns[0] == patterns[1]
    assert set(patterns[0]) == {503, None}


def test_outage_window_follows_the_clock() -> None:
    # Given an outage from t=10 to t=20
    clock = FakeClock(now=5)
    faults = FaultInjector(clock=clock)
    faults.set("cli", error="InternalServerException", outage=(10.0, 20.0))
    observed = []
    for now in (5, 10, 19.9, 20):
        clock.now = now
        observed.append(faults.decide("cli").error)  # type: ignore[union-attr]
    # Then only calls inside the window fail
    assert observed == [None, "InternalServerException", "InternalServerException", None]


def test_latency_is_reported_even_without_error() -> None:
    faults = FaultInjector(clock=FakeClock())
    faults.set("GetEnvironment", latency_seconds=1.5)
    decision = faults.decide("GetEnvironment")
    assert decision is not None
    assert (decision.latency_seconds, decision.error) == (1.5, None)


def test_clear_removes_faults() -> None:
    faults = FaultInjector(clock=FakeClock())
    faults.set("GetEnvironment", outage=True)
    faults.clear("GetEnvironment")
    assert faults.decide("GetEnvironment") is None


def test_admin_json_outage_for_seconds_starts_now() -> None:
    # Given the clock at 100
    faults = FaultInjector(clock=FakeClock(now=100))
    # When the admin endpoint asks for a 30 s outage
    spec = faults.apply_json({"operation": "InvokeRestApi", "outage_for_seconds": 30})
    # Then the outage runs from 100 to 130
    assert spec.outage == (100.0, 130.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"operation": "Nope"}, "unknown operation 'Nope'"),
        ({"operation": "cli", "error": "BogusException"}, "unknown error 'BogusException'"),
        ({"operation": "cli", "error": 302}, "must be 4xx or 5xx"),
        ({"operation": "cli", "error_rate": 1.5}, "error_rate must be within 0..1"),
        ({"operation": "cli", "colour": "red"}, "unknown fault settings \\['colour'\\]"),
        ({"error": "ThrottlingException"}, "needs an 'operation'"),
    ],
)
def test_bad_fault_settings_are_refused_with_a_clear_message(
    settings: dict[str, object], message: str
) -> None:
    faults = FaultInjector(clock=FakeClock())
    with pytest.raises(ValueError, match=message):
        faults.apply_json(settings)


def test_numeric_string_error_becomes_an_http_status() -> None:
    assert FaultSpec(error="502").error == 502


# -- CLI commands -----------------------------------------------------------------------------


def test_cli_body_is_split_like_a_shell_line() -> None:
    command = parse_cli_command("""dags trigger ingest_sales -c '{"a": 1}' -r 'run 1'""")
    assert command.command == ("dags", "trigger")
    assert command.argv == ("dags", "trigger", "ingest_sales", "-c", '{"a": 1}', "-r", "run 1")


def test_cli_metacharacters_stay_arguments() -> None:
    # A shell would run a second command; MWAA's split keeps them as plain words.
    command = parse_cli_command("dags state x 2026-01-01; rm -rf /")
    assert command.argv[3:] == ("2026-01-01;", "rm", "-rf", "/")


@pytest.mark.parametrize(
    "body",
    ["version", "cheat-sheet", "dags list -o json", "dags list-runs -d x", "variables get k"],
)
def test_supported_commands_are_accepted(body: str) -> None:
    assert parse_cli_command(body).argv[0] == body.split()[0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("users create -u x", "'users create' is not supported"),
        ("db reset -y", "'db reset' is not supported"),
        ("connections list", "'connections list' is not supported"),
        ("airflow dags list", "'airflow dags' is not supported"),
        ("dags show x --save out.png", "option --save"),
        ("dags test x --save-dagrun=a", "option --save-dagrun"),
        ("", "holds no command"),
        ("dags trigger 'x", "cannot split"),
    ],
)
def test_unsupported_commands_are_refused(body: str, message: str) -> None:
    with pytest.raises(UnsupportedCliCommand, match=message):
        parse_cli_command(body)


# -- errors -----------------------------------------------------------------------------------


def test_airflow_4xx_becomes_rest_api_client_exception_with_empty_message() -> None:
    error = rest_api_error(404, {"detail": "DAG not found"})
    assert (error.shape, error.status) == ("RestApiClientException", 400)
    assert error.body() == {
        "RestApiStatusCode": 404,
        "RestApiResponse": {"detail": "DAG not found"},
    }


def test_airflow_5xx_becomes_rest_api_server_exception() -> None:
    assert rest_api_error(503, {}).shape == "RestApiServerException"


def test_access_denied_carries_its_message_under_capital_m() -> None:
    assert MwaaError("AccessDeniedException", "no").body() == {"Message": "no"}
    assert MwaaError("ValidationException", "bad").body() == {"message": "bad"}


def test_unknown_error_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown MWAA error shape"):
        MwaaError("TeapotException")


# -- TLS --------------------------------------------------------------------------------------


def test_tls_files_are_made_once_and_reused(tmp_path: Path) -> None:
    # Given certificate files made in a directory
    first = ensure_tls_files(tmp_path)
    made = first.certificate.read_bytes()
    # When they are asked for again
    second = ensure_tls_files(tmp_path)
    # Then the same certificate is reused, the key is private, and both load as a chain
    assert second.certificate.read_bytes() == made
    assert first.private_key.stat().st_mode & 0o077 == 0
    context = ssl.create_default_context(cafile=str(first.ca_bundle))
    assert context.cert_store_stats()["x509_ca"] == 1
    first.server_context()


def test_tls_files_close_to_expiry_are_made_again_for_loopback(tmp_path: Path) -> None:
    # Given TLS files whose certificate expires within the day
    files = ensure_tls_files(tmp_path)
    expiring = trustme.CA().issue_cert(
        "localhost", not_after=datetime.now(UTC) + timedelta(hours=1)
    )
    expiring.cert_chain_pems[0].write_to_path(files.certificate)
    # When they are asked for again
    renewed = ensure_tls_files(tmp_path)
    # Then a new certificate, for a month, names localhost and 127.0.0.1
    certificate = x509.load_pem_x509_certificate(renewed.certificate.read_bytes())
    assert certificate.not_valid_after_utc - datetime.now(UTC) > timedelta(days=29)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    context = ssl.create_default_context(cafile=str(renewed.ca_bundle))
    assert context.cert_store_stats()["x509_ca"] == 1
    renewed.server_context()
