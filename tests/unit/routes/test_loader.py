"""RoutesLoader: the four locations, caching, and serving the last good routes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dagtrigger.errors import RoutesConfigError
from dagtrigger.observability import MetricName, metrics
from dagtrigger.routes import RoutesLoader, parse_location


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingFactory:
    """A client factory that counts the clients it hands out (each get() that reads makes one)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return boto3.client(self.service, region_name="us-east-1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def good_yaml(make_routes_yaml: Callable[..., str], make_route: Callable[..., Any]) -> str:
    return make_routes_yaml(make_route("first"))


@pytest.fixture
def other_yaml(make_routes_yaml: Callable[..., str], make_route: Callable[..., Any]) -> str:
    return make_routes_yaml(make_route("first"), make_route("second"))


def ssm_loader(text: str, clock: FakeClock, *, cache_seconds: int) -> tuple[Any, RoutesLoader]:
    """An SSM client holding ``text`` in parameter ``/r``, and a loader reading it."""
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/r", Value=text, Type="String")
    loader = RoutesLoader(
        "ssm:/r", cache_seconds=cache_seconds, ssm_client_factory=lambda: ssm, clock=clock
    )
    return ssm, loader


def route_names(loader: RoutesLoader) -> list[str]:
    return [route.name for route in loader.get().s3]


# --- locations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "kind", "target"),
    [
        ("bundled:routes.yaml", "bundled", "routes.yaml"),
        ("file:/etc/dagtrigger/routes.yaml", "file", "/etc/dagtrigger/routes.yaml"),
        ("ssm:/dagtrigger/routes", "ssm", "/dagtrigger/routes"),
        ("s3://config-bucket/dagtrigger/routes.yaml", "s3", "config-bucket/dagtrigger/routes.yaml"),
    ],
)
def test_locations_are_parsed(location: str, kind: str, target: str) -> None:
    parsed = parse_location(location)
    assert (parsed.kind, parsed.target, parsed.text) == (kind, target, location)


@pytest.mark.parametrize(
    ("location", "hint"),
    [
        ("bundled:../secrets.yaml", "takes a file name, not a path"),
        ("ssm:dagtrigger/routes", "leading '/'"),
        ("s3://bucket-only", "s3://BUCKET/KEY"),
        ("file:", "needs a path"),
        ("https://example.com/routes.yaml", "is not one of bundled:NAME"),
    ],
)
def test_a_bad_location_is_refused_when_the_loader_is_made(location: str, hint: str) -> None:
    with pytest.raises(RoutesConfigError, match=r"routes location") as caught:
        RoutesLoader(location, cache_seconds=60)
    assert hint in str(caught.value)


def test_bundled_reads_the_file_beside_the_package() -> None:
    # Given the example routes file shipped in layers/core
    loader = RoutesLoader("bundled:routes.yaml", cache_seconds=60)

    # Then it loads
    assert route_names(loader) == ["sales-csv"]


def test_file_reads_a_local_file(tmp_path: Path, good_yaml: str) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(good_yaml, encoding="utf-8")

    assert route_names(RoutesLoader(f"file:{path}", cache_seconds=60)) == ["first"]


def test_ssm_reads_a_secure_string_parameter(aws: None, good_yaml: str) -> None:
    # Given the routes in an encrypted SSM parameter
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/dagtrigger/routes", Value=good_yaml, Type="SecureString")

    # When the loader reads it
    loader = RoutesLoader(
        "ssm:/dagtrigger/routes", cache_seconds=60, ssm_client_factory=lambda: ssm
    )

    # Then the decrypted YAML is parsed
    assert route_names(loader) == ["first"]


def test_s3_reads_an_object(aws: None, good_yaml: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="config-bucket")
    s3.put_object(Bucket="config-bucket", Key="dagtrigger/routes.yaml", Body=good_yaml.encode())

    loader = RoutesLoader(
        "s3://config-bucket/dagtrigger/routes.yaml", cache_seconds=60, s3_client_factory=lambda: s3
    )

    assert route_names(loader) == ["first"]


# --- failing at first load ----------------------------------------------------------------------


def test_a_missing_parameter_fails_the_first_load_naming_the_location(aws: None) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    loader = RoutesLoader("ssm:/nope", cache_seconds=60, ssm_client_factory=lambda: ssm)

    with pytest.raises(
        RoutesConfigError, match=r"cannot read routes file ssm:/nope: ParameterNotFound"
    ):
        loader.get()


def test_a_missing_file_fails_the_first_load(tmp_path: Path) -> None:
    loader = RoutesLoader(f"file:{tmp_path}/absent.yaml", cache_seconds=60)

    with pytest.raises(
        RoutesConfigError, match=r"cannot read routes file file:.*FileNotFoundError"
    ):
        loader.get()


def test_an_invalid_file_fails_the_first_load_with_field_and_line(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("version: 1\nenvironments:\n  prod: {name: env, transport: smoke}\n")
    loader = RoutesLoader(f"file:{path}", cache_seconds=60)

    with pytest.raises(RoutesConfigError) as caught:
        loader.get()
    assert f"invalid routes file file:{path}" in str(caught.value)
    assert "environments.prod.transport (line 3)" in str(caught.value)


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\n")

    with pytest.raises(RoutesConfigError, match="is not UTF-8"):
        RoutesLoader(f"file:{path}", cache_seconds=60).get()


def test_a_file_with_a_character_yaml_refuses_is_reported(tmp_path: Path) -> None:
    # Given a routes file holding a control character (found by make reliability's fuzzing)
    path = tmp_path / "routes.yaml"
    path.write_text("\x1f")

    # Then the load fails as a routes problem that says what and where, not a YAML crash
    with pytest.raises(RoutesConfigError, match=r"unacceptable character #x001f.*position 0"):
        RoutesLoader(f"file:{path}", cache_seconds=60).get()


# --- caching and refresh ----------------------------------------------------------------------


def test_routes_are_read_once_per_cache_period(
    aws: None, clock: FakeClock, good_yaml: str, other_yaml: str
) -> None:
    # Given routes in SSM and a loader caching for 60 s
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/r", Value=good_yaml, Type="String"
    )
    factory = CountingFactory("ssm")
    loader = RoutesLoader("ssm:/r", cache_seconds=60, ssm_client_factory=factory, clock=clock)
    first = loader.get()

    # When the parameter changes and less than 60 s pass
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/r", Value=other_yaml, Type="String", Overwrite=True
    )
    clock.advance(59)

    # Then the cached routes are served without reading SSM again
    assert loader.get() is first
    assert factory.calls == 1

    # And once the period is over, the new routes are read
    clock.advance(1)
    assert route_names(loader) == ["first", "second"]
    assert factory.calls == 2


def test_unchanged_content_keeps_the_same_parsed_routes(
    aws: None, clock: FakeClock, good_yaml: str
) -> None:
    _, loader = ssm_loader(good_yaml, clock, cache_seconds=10)
    first = loader.get()

    clock.advance(11)

    assert loader.get() is first


def test_a_bad_refresh_keeps_the_last_good_routes_and_logs_an_error(
    aws: None,
    clock: FakeClock,
    good_yaml: str,
    other_yaml: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given good routes loaded from S3
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="cfg")
    s3.put_object(Bucket="cfg", Key="routes.yaml", Body=good_yaml.encode())
    factory = CountingFactory("s3")
    loader = RoutesLoader(
        "s3://cfg/routes.yaml", cache_seconds=30, s3_client_factory=factory, clock=clock
    )
    good = loader.get()

    # When someone uploads an invalid file and the cache expires
    s3.put_object(Bucket="cfg", Key="routes.yaml", Body=b"version: 1\nenvironments: [\n")
    clock.advance(31)
    with caplog.at_level(logging.WARNING, logger="dagtrigger"):
        served = loader.get()

    # Then the last good routes are still served, and an error says why
    assert served is good
    warnings = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in warnings] == [
        "routes refresh failed; serving the last good routes"
    ]
    assert "line 3" in warnings[0].__dict__["error"]

    # And the source is not read again until another period has passed
    reads_after_failure = factory.calls
    clock.advance(29)
    assert loader.get() is good
    assert factory.calls == reads_after_failure

    # And a fixed file is picked up at the next refresh
    s3.put_object(Bucket="cfg", Key="routes.yaml", Body=other_yaml.encode())
    clock.advance(1)
    assert route_names(loader) == ["first", "second"]


def test_a_vanished_source_keeps_the_last_good_routes(
    aws: None, clock: FakeClock, good_yaml: str
) -> None:
    ssm, loader = ssm_loader(good_yaml, clock, cache_seconds=5)
    good = loader.get()

    ssm.delete_parameter(Name="/r")
    clock.advance(6)

    assert loader.get() is good


def test_bundled_routes_are_never_re_read(clock: FakeClock) -> None:
    # Given the bundled file, part of the deployed layer
    loader = RoutesLoader("bundled:routes.yaml", cache_seconds=1, clock=clock)
    first = loader.get()

    # When far more than the cache period passes
    clock.advance(10_000)

    # Then the same routes are served
    assert loader.get() is first


def test_a_zero_cache_period_reads_on_every_get(
    tmp_path: Path, clock: FakeClock, good_yaml: str, other_yaml: str
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(good_yaml)
    loader = RoutesLoader(f"file:{path}", cache_seconds=0, clock=clock)
    assert route_names(loader) == ["first"]

    path.write_text(other_yaml)

    assert route_names(loader) == ["first", "second"]


def test_a_file_that_cannot_load_is_logged_at_error_with_its_fields_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a routes file with two mistakes
    path = tmp_path / "routes.yaml"
    path.write_text("version: 2\nenvironments: {}\n", encoding="utf-8")
    loader = RoutesLoader(f"file:{path}", cache_seconds=60)
    counted = len(metrics.metric_set.get(MetricName.ROUTES_INVALID, {}).get("Value", []))

    # When it is read
    with caplog.at_level(logging.ERROR, logger="dagtrigger"), pytest.raises(RoutesConfigError):
        loader.get()

    # Then the ERROR log says every field at fault with its line, and the alarm's metric counts it
    (error,) = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert "version (line 1)" in error.__dict__["error"]
    assert "environments (line 2)" in error.__dict__["error"]
    assert len(metrics.metric_set[MetricName.ROUTES_INVALID]["Value"]) == counted + 1


# --- the environments the stack may trigger ---------------------------------------------------


def test_the_loader_refuses_an_environment_the_stack_is_not_granted(
    tmp_path: Path, make_routes_yaml: Callable[..., str], make_route: Callable[..., Any]
) -> None:
    # Given a stack granted on two environments and a routes file naming a third
    path = tmp_path / "routes.yaml"
    path.write_text(
        make_routes_yaml(
            make_route("first"),
            environments={"prod": {"name": "someone-elses-env", "transport": "invoke_rest_api"}},
        ),
        encoding="utf-8",
    )
    loader = RoutesLoader(
        f"file:{path}", cache_seconds=60, allowed_environment_names=("sales", "finance")
    )

    # When the routes load, Then the file is refused, naming the environment and the grant
    with pytest.raises(RoutesConfigError) as caught:
        loader.get()
    assert "environments.prod.name (line 4)" in str(caught.value)
    assert "'someone-elses-env' is not one this stack may trigger" in str(caught.value)

    # And a file naming a granted environment loads
    path.write_text(
        make_routes_yaml(
            make_route("first"),
            environments={"prod": {"name": "finance", "transport": "invoke_rest_api"}},
        ),
        encoding="utf-8",
    )
    allowed = RoutesLoader(
        f"file:{path}", cache_seconds=60, allowed_environment_names=("sales", "finance")
    )
    assert route_names(allowed) == ["first"]
