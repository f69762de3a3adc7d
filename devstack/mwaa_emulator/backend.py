"""The Airflow behind an emulated environment: its REST API (for InvokeRestApi) and its CLI.

`AirflowBackend` is what the emulator needs from an Airflow; `devstack.airflow.AirflowServer`
(real Airflow) and `devstack.mwaa_emulator.fake_airflow.FakeAirflow` (tests) both provide it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests

from devstack.mwaa_emulator.errors import MwaaError

# MWAA's documented InvokeRestApi timeout.
REST_API_TIMEOUT_SECONDS = 10.0


class AirflowBackend(Protocol):
    @property
    def major(self) -> int: ...

    @property
    def version(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    @property
    def username(self) -> str: ...

    @property
    def password(self) -> str: ...

    @property
    def airflow_bin(self) -> Path: ...

    def api_prefix(self) -> str: ...

    def cli_env(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class RestApiAnswer:
    status_code: int
    body: Any


#: The methods that write to Airflow's database.
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_writers: dict[str, threading.Lock] = {}
_writers_lock = threading.Lock()


def _writer_lock(base_url: str) -> threading.Lock:
    """One lock per local Airflow (environments sharing an Airflow share its lock).

    The local Airflow keeps its database in SQLite, which takes one writer at a time: two
    triggers arriving together (two Lambda instances) made it answer HTTP 500 "database is
    locked" after its 5 s busy timeout, an answer MWAA's PostgreSQL never gives. The emulator
    therefore passes one writing call at a time to each Airflow; reads go through at once.
    """
    with _writers_lock:
        return _writers.setdefault(base_url, threading.Lock())


class AirflowRestClient:
    """Calls one Airflow's REST API the way MWAA's InvokeRestApi does, as one Airflow user.

    Airflow 3 (/api/v2) takes a JWT from POST /auth/token (fetched once, again after a 401);
    Airflow 2 (/api/v1) takes basic auth.
    """

    def __init__(
        self,
        backend: AirflowBackend,
        *,
        username: str,
        password: str,
        timeout: float = REST_API_TIMEOUT_SECONDS,
    ) -> None:
        self._backend = backend
        self._username = username
        self._password = password
        self._timeout = timeout
        self._jwt: str | None = None
        self._jwt_lock = threading.Lock()
        self._local = threading.local()

    def call(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
    ) -> RestApiAnswer:
        url = f"{self._backend.base_url}{self._backend.api_prefix()}{path}"
        one_writer = (
            _writer_lock(self._backend.base_url) if method in _WRITES else contextlib.nullcontext()
        )
        with one_writer:
            response = self._send(method, url, query, body)
            if response.status_code == 401 and self._backend.major >= 3:
                self._forget_jwt()
                response = self._send(method, url, query, body)
        return RestApiAnswer(response.status_code, _json_or_detail(response))

    def _send(
        self, method: str, url: str, query: Mapping[str, Any] | None, body: Any
    ) -> requests.Response:
        headers = {"Accept": "application/json"}
        auth: tuple[str, str] | None = None
        if self._backend.major >= 3:
            headers["Authorization"] = f"Bearer {self._current_jwt()}"
        else:
            auth = (self._username, self._password)
        sends_body = method in {"POST", "PUT", "PATCH"} and body is not None
        try:
            return self._session().request(
                method,
                url,
                params=_query_params(query),
                json=body if sends_body else None,
                headers=headers,
                auth=auth,
                timeout=self._timeout,
            )
        except requests.Timeout as error:
            raise MwaaError(
                "InternalServerException", "The Apache Airflow web server did not answer in time."
            ) from error
        except requests.RequestException as error:
            raise MwaaError(
                "InternalServerException", "The Apache Airflow web server is not reachable."
            ) from error

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # never route loopback calls through a proxy
            self._local.session = session
        return session

    def _current_jwt(self) -> str:
        with self._jwt_lock:
            if self._jwt is None:
                self._jwt = self._fetch_jwt()
            return self._jwt

    def _forget_jwt(self) -> None:
        with self._jwt_lock:
            self._jwt = None

    def _fetch_jwt(self) -> str:
        try:
            response = self._session().post(
                f"{self._backend.base_url}/auth/token",
                json={"username": self._username, "password": self._password},
                timeout=self._timeout,
            )
        except requests.RequestException as error:
            raise MwaaError(
                "InternalServerException", "The Apache Airflow web server is not reachable."
            ) from error
        if response.status_code not in (200, 201):
            raise MwaaError(
                "InternalServerException",
                f"The emulator could not log in to Airflow (HTTP {response.status_code}).",
            )
        token: str = response.json()["access_token"]
        return token


def _query_params(query: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not query:
        return None
    params: dict[str, Any] = {}
    for name, value in query.items():
        if isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, list):
            params[name] = [str(item) for item in value]
        else:
            params[name] = str(value)
    return params


def _json_or_detail(response: requests.Response) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        return {"detail": response.text[:4096]}


@dataclass(frozen=True)
class CliOutput:
    stdout: bytes
    stderr: bytes


class CliTimeout(Exception):
    """The Airflow CLI command did not finish in time (and was killed)."""


CliRunner = Callable[[AirflowBackend, Sequence[str], float], CliOutput]


def run_airflow_cli(backend: AirflowBackend, argv: Sequence[str], timeout: float) -> CliOutput:
    """Run `airflow <argv>` of the backend, no shell, in its own process group."""
    process = subprocess.Popen(
        [str(backend.airflow_bin), *argv],
        env=backend.cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as error:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise CliTimeout(f"airflow {' '.join(argv[:2])} ran longer than {timeout:.0f} s") from error
    return CliOutput(stdout=stdout, stderr=stderr)


def json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
