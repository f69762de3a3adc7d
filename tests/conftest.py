"""Shared test set-up: no test may reach real AWS, whatever the machine's credentials say."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Property tests take their example count from a profile: a bounded run in `make test`, the
# full 10,000 examples per target in `make reliability` (HYPOTHESIS_PROFILE=reliability).
settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile(
    "reliability",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "dagtrigger-tests",
    "POWERTOOLS_SERVICE_NAME": "dagtrigger-tests",
}
for _name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_name, None)
os.environ.update(_FAKE_AWS)


@pytest.fixture(autouse=True)
def _fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _FAKE_AWS.items():
        monkeypatch.setenv(name, value)


# --- real Apache Airflow, started once per session for contract and end-to-end tests ---------

CONF_SINK_ENV = "DAGTRIGGER_CONF_SINK"
SAMPLE_DAGS = ("ingest_sales", "echo_conf", "load_export", "always_paused", "fails_in_a_task")


def airflow_versions_under_test() -> list[str]:
    """The Airflow version keys the contract suite runs against, from DAGTRIGGER_AIRFLOW_VERSIONS.

    Unset means every version devstack can install (devstack.airflow_install.AIRFLOW_RELEASES):
    the newest Airflow 3, MWAA's newest Airflow 3 and MWAA's newest Airflow 2. The Makefile sets
    it (`make test-contract AIRFLOW_VERSIONS=3.0`, `make test TEST_AIRFLOW_VERSIONS=3.0,2.11`).
    """
    from devstack.airflow_install import versions_from_env

    return versions_from_env()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses ``airflow_version`` (directly or through a fixture) runs per version."""
    if "airflow_version" in metafunc.fixturenames:
        versions = airflow_versions_under_test()
        metafunc.parametrize(
            "airflow_version",
            versions,
            indirect=True,
            scope="module",
            ids=[f"airflow{version}" for version in versions],
        )


@pytest.fixture(scope="module")
def airflow_version(request: pytest.FixtureRequest) -> str:
    """The Airflow version key under test ("3.3", "3.0", "2.11"): parametrized above."""
    return str(request.param)


class AirflowPool:
    """Airflow servers by version, each started on first use and stopped at session end.

    A version is a key of devstack.airflow_install.AIRFLOW_RELEASES ("3.3", "3.0", "2.11") or a
    bare major (3 or 2) for that major's default version; both name the same server.

    Starting Airflow costs 30-50 s on a 2-core machine, so every contract and end-to-end test
    shares these. The sample DAGs write the conf they received under ``conf_sink``.
    """

    def __init__(self, state_dir: Path, conf_sink: Path) -> None:
        self.state_dir = state_dir
        self.conf_sink = conf_sink
        self._servers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, version: str | int) -> Any:
        return self.get_many([version])[version]

    def get_many(self, versions: Iterable[str | int]) -> dict[Any, Any]:
        """The servers for ``versions`` (keyed as asked), starting the missing ones side by side."""
        from devstack.airflow_install import release

        wanted = {version: release(version).key for version in versions}
        with self._lock:
            missing = sorted({key for key in wanted.values() if key not in self._servers})
            if missing:
                with ThreadPoolExecutor(max_workers=len(missing)) as pool:
                    futures = {key: pool.submit(self._start, key) for key in missing}
                failures = [f.exception() for f in futures.values() if f.exception()]
                self._servers.update(
                    {key: f.result() for key, f in futures.items() if not f.exception()}
                )
                if failures:
                    raise failures[0]  # type: ignore[misc]
            return {version: self._servers[key] for version, key in wanted.items()}

    def _start(self, key: str) -> Any:
        from devstack.airflow import start_airflow, wait_for_dag

        server = start_airflow(
            key,
            state_dir=self.state_dir / f"airflow-{key}",
            extra_env={CONF_SINK_ENV: str(self.conf_sink)},
        )
        try:
            for dag_id in SAMPLE_DAGS:
                wait_for_dag(server, dag_id)
        except BaseException:
            server.stop()
            raise
        return server

    def stop_and_verify(self) -> list[str]:
        """Stop every server; return what was left running (processes or bound ports)."""
        from devstack.processes import port_is_free

        leftovers = []
        for key, server in self._servers.items():
            server.stop()
            if server.pids():
                leftovers.append(f"Airflow {key}: processes {server.pids()} still running")
            if not port_is_free(server.port):
                leftovers.append(f"Airflow {key}: port {server.port} still bound")
        self._servers.clear()
        return leftovers


@pytest.fixture(scope="session")
def conf_sink(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conf-sink")


@pytest.fixture(scope="session")
def airflow_pool(
    tmp_path_factory: pytest.TempPathFactory, conf_sink: Path
) -> Iterator[AirflowPool]:
    pool = AirflowPool(tmp_path_factory.mktemp("airflow"), conf_sink)
    yield pool
    leftovers = pool.stop_and_verify()
    assert not leftovers, "stopping Airflow left things behind: " + "; ".join(leftovers)
