"""Direct Airflow REST: ``/api/v1`` with basic auth (Airflow 2), ``/api/v2`` with a JWT (Airflow 3).

``EnvironmentRef.base_url`` is the Airflow root (``https://airflow.example.com``); Airflow 3's
token comes from ``POST {base}/auth/token`` and is cached until Airflow answers 401.
Credentials (``{"username": ..., "password": ...}``) come from a Secrets Manager secret through
Powertools parameters, or from any injected provider.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from aws_lambda_powertools.utilities.parameters import BaseProvider
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)
from requests.auth import AuthBase, HTTPBasicAuth

from dagtrigger.clock import utc_now
from dagtrigger.errors import AccessRefusedError, RejectedError, TransientTriggerError
from dagtrigger.transports.airflow_api import AirflowApiTransport, ApiReply, Json
from dagtrigger.transports.base import EnvironmentRef
from dagtrigger.transports.factory import TransportParts
from dagtrigger.transports.rate_budget import SharedRateBudget, rate_budget_from
from dagtrigger.transports.web_request import send_request

#: (connect, read) seconds for one call to Airflow
DEFAULT_TIMEOUT = (5.0, 15.0)
#: how long fetched credentials are reused before Secrets Manager is asked again
SECRET_MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class AirflowCredentials:
    username: str
    password: str = field(repr=False)


#: secret name -> credentials; raises ``DagTriggerError`` subclasses when it cannot provide them
CredentialsProvider = Callable[[str], AirflowCredentials]


def secrets_manager_credentials(provider: Callable[[], BaseProvider]) -> CredentialsProvider:
    """Credentials read from Secrets Manager through ``provider``, cached for a few minutes."""

    def read(secret_name: str) -> AirflowCredentials:
        try:
            value = provider().get(secret_name, transform="json", max_age=SECRET_MAX_AGE_SECONDS)
        except TransformParameterError:
            raise TransientTriggerError(f"secret {secret_name!r} does not hold JSON") from None
        except GetParameterError as exc:
            raise TransientTriggerError(f"cannot read secret {secret_name!r}: {exc}") from None
        return credentials_from_secret(secret_name, value)

    return read


def credentials_from_secret(secret_name: str, value: Any) -> AirflowCredentials:
    if isinstance(value, Mapping):
        username, password = value.get("username"), value.get("password")
        if isinstance(username, str) and username and isinstance(password, str) and password:
            return AirflowCredentials(username, password)
    # A configuration fault: transient, so the trigger is replayable once the secret is fixed.
    raise TransientTriggerError(
        f'secret {secret_name!r} must be a JSON object {{"username": "...", "password": "..."}}'
    )


class BearerAuth(AuthBase):
    """``Authorization: Bearer`` for Airflow 3; its repr never shows the token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"


class AirflowRestTransport(AirflowApiTransport):
    """``AirflowTransport`` over one Airflow web/API server, authenticated for its major version."""

    max_path_length = None

    def __init__(
        self,
        environment: EnvironmentRef,
        session: requests.Session,
        *,
        credentials_provider: CredentialsProvider | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        now: Callable[[], datetime] = utc_now,
        rate_budget: SharedRateBudget | None = None,
    ) -> None:
        if not environment.base_url:
            raise ValueError(
                f"environment {environment.alias!r} uses airflow_rest but has no base_url"
            )
        if environment.credentials_secret and credentials_provider is None:
            raise ValueError(
                f"environment {environment.alias!r} names a credentials_secret, "
                "but no credentials provider was given"
            )
        super().__init__(environment, now=now, rate_budget=rate_budget)
        self._root = environment.base_url.rstrip("/")
        self._session = session
        self._credentials_provider = credentials_provider
        self._timeout = timeout
        self._lock = threading.Lock()
        self._major: int | None = environment.airflow_major
        self._token: str | None = None

    def airflow_major(self) -> int:
        with self._lock:
            if self._major is None:
                self._major = self._detect_major()
            return self._major

    def call(self, method: str, path: str, *, body: Json | None, query: Json | None) -> ApiReply:
        major = self.airflow_major()
        url = f"{self._root}{'/api/v2' if major >= 3 else '/api/v1'}{path}"
        content = {
            "json": dict(body) if body is not None else None,
            "params": dict(query) if query is not None else None,
        }
        reply = self._send(method, url, auth=self._auth_for(major), **content)
        if reply.status == 401 and major >= 3 and self._token is not None:
            # Expired or revoked: one fresh token, then Airflow's answer stands.
            self._forget_token()
            reply = self._send(method, url, auth=self._auth_for(major), **content)
        return reply

    def _send(self, method: str, url: str, **arguments: Any) -> ApiReply:
        """One request; ``arguments`` (``json``, ``params``, ``auth``) go to ``requests``."""
        try:
            response = send_request(
                self._session,
                method,
                url,
                timeout=self._timeout,
                no_answer=f"Airflow at {self._root} did not answer {method}",
                headers={"Accept": "application/json"},
                **arguments,
            )
        except requests.RequestException as exc:
            raise RejectedError("airflow_base_url_invalid", f"cannot call {url}: {exc}") from None
        return ApiReply(response.status_code, _body_of(response))

    def _credentials(self) -> AirflowCredentials | None:
        secret = self.environment.credentials_secret
        if not secret or self._credentials_provider is None:
            return None
        return self._credentials_provider(secret)

    def _auth_for(self, major: int) -> AuthBase | None:
        if major < 3:
            credentials = self._credentials()
            return (
                HTTPBasicAuth(credentials.username, credentials.password) if credentials else None
            )
        token = self._bearer_token()
        return BearerAuth(token) if token else None

    def _bearer_token(self) -> str | None:
        with self._lock:
            if self._token is None:
                credentials = self._credentials()
                if credentials is None:
                    return None  # an Airflow without authentication (local development)
                self._token = self._fetch_token(credentials)
            return self._token

    def _forget_token(self) -> None:
        with self._lock:
            self._token = None

    def _fetch_token(self, credentials: AirflowCredentials) -> str:
        reply = self._send(
            "POST",
            f"{self._root}/auth/token",
            json={"username": credentials.username, "password": credentials.password},
        )
        if reply.status in (401, 403):
            raise AccessRefusedError(
                "airflow_unauthorized",
                f"Airflow at {self._root} refused the credentials of secret "
                f"{self.environment.credentials_secret!r} (HTTP {reply.status})",
                http_status=reply.status,
            )
        token = reply.body.get("access_token") if isinstance(reply.body, Mapping) else None
        if reply.status not in (200, 201) or not isinstance(token, str) or not token:
            raise TransientTriggerError(
                f"Airflow at {self._root} gave no token (HTTP {reply.status})",
                http_status=reply.status,
            )
        return token

    def _detect_major(self) -> int:
        """Airflow 3 answers ``/api/v2/monitor/health``, Airflow 2 ``/api/v1/health`` (public)."""
        for major, path in ((3, "/api/v2/monitor/health"), (2, "/api/v1/health")):
            reply = self._send("GET", f"{self._root}{path}")
            if reply.ok:
                return major
            if reply.status >= 500 or reply.status == 429:
                break
        raise TransientTriggerError(f"cannot tell the Airflow version at {self._root}")


def _body_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def build(environment: EnvironmentRef, parts: TransportParts) -> AirflowRestTransport:
    settings = parts.settings
    return AirflowRestTransport(
        environment,
        parts.http_session(),
        credentials_provider=secrets_manager_credentials(parts.secrets_provider),
        timeout=(settings.connect_timeout_seconds, settings.read_timeout_seconds),
        rate_budget=rate_budget_from(parts),
    )
