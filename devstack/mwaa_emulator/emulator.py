"""MwaaEmulator: MWAA's control plane and each environment's web server, in front of real Airflow.

    with MwaaEmulator(state_dir) as emulator:
        emulator.add_environment("dev", airflow_server)
        mwaa = emulator.client()  # or boto3.client("mwaa", endpoint_url=control_plane_url)
        mwaa.invoke_rest_api(Name="dev", Path="/dags", Method="GET")

Everything runs in threads of the calling process and binds to 127.0.0.1 only.

Beyond per-operation faults (`faults`), two conditions that tests switch on and off: refused
credentials (`refuse_credentials`: expired, revoked, or denied by policy, per access key) and a
black hole (`black_hole`: every endpoint drops new connections and leaves requests unanswered).

`requests` records what it answered (control-plane calls and CLI commands, never a token), which
``GET /_emulator/requests`` and ``python -m devstack requests`` show.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from devstack.lifecycle import Service
from devstack.mwaa_emulator.backend import (
    REST_API_TIMEOUT_SECONDS,
    AirflowBackend,
    AirflowRestClient,
    CliRunner,
    run_airflow_cli,
)
from devstack.mwaa_emulator.control_plane import ControlPlane
from devstack.mwaa_emulator.credentials import CredentialPolicy, CredentialState
from devstack.mwaa_emulator.environments import Environment, EnvironmentRegistry
from devstack.mwaa_emulator.errors import validation_error
from devstack.mwaa_emulator.faults import FaultInjector
from devstack.mwaa_emulator.http_base import LoopbackHttpServer
from devstack.mwaa_emulator.request_log import RequestLog
from devstack.mwaa_emulator.throttle import TokenBucket
from devstack.mwaa_emulator.tls import ensure_tls_files, tls_files_in
from devstack.mwaa_emulator.tokens import TokenStore
from devstack.mwaa_emulator.web_server import WebServer

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_CLI_TIMEOUT_SECONDS = 120.0


class MwaaEmulator(Service):
    def __init__(
        self,
        state_dir: Path,
        *,
        rate_limit_per_second: float = 10.0,
        cli_concurrency: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cli_runner: CliRunner = run_airflow_cli,
        cli_timeout_seconds: float = DEFAULT_CLI_TIMEOUT_SECONDS,
        rest_api_timeout_seconds: float = REST_API_TIMEOUT_SECONDS,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        control_plane_port: int = 0,
    ) -> None:
        if cli_concurrency < 1:
            raise ValueError(f"cli_concurrency must be at least 1, got {cli_concurrency}")
        self.state_dir = Path(state_dir)
        self.region = region
        self.account_id = account_id
        self.faults = FaultInjector(clock=clock, sleep=sleep)
        self.credentials = CredentialPolicy(account_id=account_id)
        self._rate_limit = rate_limit_per_second
        self._cli_concurrency = cli_concurrency
        self._clock = clock
        self._cli_runner = cli_runner
        self._cli_timeout = cli_timeout_seconds
        self._rest_api_timeout = rest_api_timeout_seconds
        self._cli_tokens = TokenStore(clock=clock)
        self._web_tokens = TokenStore(clock=clock)
        self._registry = EnvironmentRegistry()
        #: the requests this emulator answered (``/_emulator/requests``)
        self.requests = RequestLog()
        self._backends: list[AirflowBackend] = []
        self._lifecycle = threading.Lock()
        self._tls = tls_files_in(self.state_dir)
        self._control_plane = ControlPlane(
            registry=self._registry,
            faults=self.faults,
            cli_tokens=self._cli_tokens,
            web_tokens=self._web_tokens,
            account_id=account_id,
            create_environment=self._create_from_api,
            delete_environment=self.remove_environment,
            credentials=self.credentials,
            environment_arn=self.environment_arn,
            requests=self.requests,
        )
        self._control_server = LoopbackHttpServer(
            self._control_plane.handle, name="mwaa-control-plane", port=control_plane_port
        )
        self._started = False
        self._stopped = False
        self._black_holed = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        with self._lifecycle:
            if self._started:
                return
            if self._stopped:
                raise RuntimeError("a stopped MwaaEmulator cannot start again: make a new one")
            ensure_tls_files(self.state_dir)
            self._control_server.start()
            self._started = True
            for environment in self._registry.all():
                self._start_web_server(environment)

    def stop(self) -> None:
        with self._lifecycle:
            self._black_holed = False
            for environment in self._registry.all():
                _stop_web_server(environment)
            if self._started:
                self._control_server.stop()
                self._stopped = True
            self._started = False

    # -- environments --------------------------------------------------------------------------

    def register_airflow(self, airflow_server: AirflowBackend) -> None:
        """Offer an Airflow to CreateEnvironment calls (matched on AirflowVersion's major)."""
        if all(backend is not airflow_server for backend in self._backends):
            self._backends.append(airflow_server)

    def add_environment(
        self,
        name: str,
        airflow_server: AirflowBackend,
        airflow_version: str | None = None,
        *,
        rest_api_credentials: tuple[str, str] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Environment:
        """Create environment `name` in front of `airflow_server` (status AVAILABLE at once).

        InvokeRestApi calls Airflow as `rest_api_credentials` (default: the server's own user),
        which stands for the Airflow role MWAA maps from the caller's IAM policy.
        """
        self.register_airflow(airflow_server)
        username, password = rest_api_credentials or (
            airflow_server.username,
            airflow_server.password,
        )
        environment = Environment(
            name=name,
            arn=self.environment_arn(name),
            backend=airflow_server,
            airflow_version=airflow_version or airflow_server.version,
            created_at=time.time(),
            rest_client=AirflowRestClient(
                airflow_server, username=username, password=password, timeout=self._rest_api_timeout
            ),
            rate_limiter=TokenBucket(self._rate_limit, clock=self._clock),
            cli_slots=threading.BoundedSemaphore(self._cli_concurrency),
            settings=dict(settings or {}),
        )
        with self._lifecycle:
            added = self._registry.add(
                environment,
                on_added=self._start_web_server if self._started else lambda _env: None,
            )
        if not added:
            raise validation_error(f"Environment {name} already exists.")
        return environment

    def remove_environment(self, name: str) -> Environment | None:
        environment = self._registry.remove(name)
        if environment is not None:
            _stop_web_server(environment)
        return environment

    # -- conditions ----------------------------------------------------------------------------

    def refuse_credentials(self, access_key_id: str, state: CredentialState | str) -> None:
        """Answer every call signed with `access_key_id` as AWS does for `state` (see
        `devstack.mwaa_emulator.credentials`) until `restore_credentials`."""
        self.credentials.refuse(access_key_id, state)

    def restore_credentials(self, access_key_id: str | None = None) -> None:
        self.credentials.restore(access_key_id)

    def black_hole(self, on: bool) -> None:
        """Make the control plane and every web server a black hole (on) or serve again (off).

        There is no admin endpoint for this: it lives on the port that stops answering.
        """
        with self._lifecycle:
            self._black_holed = on
            servers = [self._control_server] if self._started else []
            servers += [env.web_server for env in self._registry.all() if env.web_server]
            for server in servers:
                server.black_hole(on)

    @contextlib.contextmanager
    def black_holed(self) -> Iterator[None]:
        self.black_hole(True)
        try:
            yield
        finally:
            self.black_hole(False)

    # -- addresses -----------------------------------------------------------------------------

    @property
    def control_plane_url(self) -> str:
        return f"http://{self._control_server.host_port}"

    def web_server_hostname(self, name: str) -> str:
        environment = self._registry.get(name)
        if environment is None:
            raise KeyError(f"no MWAA environment named {name!r}")
        return environment.web_server_hostname

    @property
    def ca_bundle_path(self) -> Path:
        """The CA certificate that signs the web servers' certificate (for REQUESTS_CA_BUNDLE).

        The file exists once the emulator is started.
        """
        return self._tls.ca_bundle

    def environment_arn(self, name: str) -> str:
        return f"arn:aws:airflow:{self.region}:{self.account_id}:environment/{name}"

    def client_environment(self) -> dict[str, str]:
        """Variables that point boto3 and requests in another process at this emulator."""
        return {
            "AWS_ENDPOINT_URL_MWAA": self.control_plane_url,
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle_path),
        }

    def client(self, *, max_attempts: int = 1) -> Any:
        """A boto3 MWAA client for this emulator, with dummy credentials."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "mwaa",
            endpoint_url=self.control_plane_url,
            region_name=self.region,
            aws_access_key_id="AKIAEMULATOR",
            aws_secret_access_key="emulator-secret",  # noqa: S106
            config=Config(inject_host_prefix=False, retries={"total_max_attempts": max_attempts}),
        )

    # -- internals -----------------------------------------------------------------------------

    def _create_from_api(
        self, name: str, airflow_version: str | None, body: Mapping[str, Any]
    ) -> Environment:
        backend = self._backend_for(airflow_version)
        settings = {key: value for key, value in body.items() if key != "AirflowVersion"}
        return self.add_environment(name, backend, airflow_version, settings=settings)

    def _backend_for(self, airflow_version: str | None) -> AirflowBackend:
        if not self._backends:
            raise validation_error("The emulator has no Airflow to run a new environment on.")
        if airflow_version is None:
            return self._backends[0]
        major = airflow_version.split(".", 1)[0]
        for backend in self._backends:
            if str(backend.major) == major:
                return backend
        raise validation_error(f"Airflow version {airflow_version} is not available here.")

    def _start_web_server(self, environment: Environment) -> None:
        web_server = WebServer(
            environment=environment,
            cli_tokens=self._cli_tokens,
            faults=self.faults,
            cli_runner=self._cli_runner,
            cli_timeout_seconds=self._cli_timeout,
            requests=self.requests,
        )
        server = LoopbackHttpServer(
            web_server.handle,
            name=f"mwaa-web-{environment.name}",
            tls=self._tls.server_context(),
        )
        server.start()
        server.black_hole(self._black_holed)
        environment.web_server = server


def _stop_web_server(environment: Environment) -> None:
    if environment.web_server is not None:
        environment.web_server.stop()
        environment.web_server = None
