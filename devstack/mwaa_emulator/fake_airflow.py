"""A tiny fake of Airflow's REST API on 127.0.0.1, for tests that need no real Airflow.

It speaks just enough of /api/v2 (Airflow 3, JWT from /auth/token) or /api/v1 (Airflow 2, basic
auth) for InvokeRestApi: list DAGs, trigger a run (409 on a duplicate run id, 404 on an unknown
DAG, 422 on Airflow 3 without "logical_date"), read a run, and /boom answers 500.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.mwaa_emulator.http_base import HttpRequest, HttpResponse, LoopbackHttpServer

_RUNS = re.compile(r"^/dags/(?P<dag>[^/]+)/dagRuns(?:/(?P<run>[^/]+))?$")


@dataclass
class RecordedCall:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class FakeAirflow:
    major: int = 3
    dag_ids: tuple[str, ...] = ("ingest_sales",)
    username: str = "admin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12), repr=False)
    calls: list[RecordedCall] = field(default_factory=list)
    runs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _jwt: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    _server: LoopbackHttpServer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def version(self) -> str:
        return "3.0.6" if self.major >= 3 else "2.10.3"

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeAirflow is not started")
        return f"http://{self._server.host_port}"

    @property
    def airflow_bin(self) -> Path:
        return Path("/nonexistent/fake-airflow")

    def api_prefix(self) -> str:
        return "/api/v2" if self.major >= 3 else "/api/v1"

    def cli_env(self) -> dict[str, str]:
        return {}

    def rotate_jwt(self) -> None:
        """Refuse every JWT issued so far, as an Airflow restarted with a new secret would."""
        self._jwt = secrets.token_urlsafe(24)

    def start(self) -> FakeAirflow:
        self._server = LoopbackHttpServer(self._handle, name=f"fake-airflow-{self.major}")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def _handle(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/auth/token" and request.method == "POST":
            return self._token(request)
        prefix = self.api_prefix()
        if not request.path.startswith(prefix + "/"):
            return _json(404, {"detail": "Not Found"})
        if not self._authenticated(request.headers.get("authorization", "")):
            return _json(401, {"detail": "Not authenticated"})
        body = json.loads(request.body) if request.body else None
        path = request.path[len(prefix) :]
        with self._lock:
            self.calls.append(RecordedCall(request.method, path, request.query, body))
            return self._route(request.method, path, body)

    def _route(self, method: str, path: str, body: Any) -> HttpResponse:
        if path == "/boom":
            return _json(500, {"detail": "boom", "status": 500, "title": "Internal Server Error"})
        if path == "/dags" and method == "GET":
            dags = [{"dag_id": dag_id, "is_paused": False} for dag_id in self.dag_ids]
            return _json(200, {"dags": dags, "total_entries": len(dags)})
        match = _RUNS.match(path)
        if match is None:
            return _json(404, {"detail": "Not Found"})
        dag_id, run_id = match["dag"], match["run"]
        if dag_id not in self.dag_ids:
            message = f"The Dag with ID: `{dag_id}` was not found"
            return _json(404, {"detail": message, "status": 404, "title": "DAG not found"})
        if run_id is not None and method == "GET":
            run = self.runs.get((dag_id, run_id))
            return _json(200, run) if run else _json(404, {"detail": "DagRun not found"})
        if run_id is None and method == "POST":
            return self._trigger(dag_id, body if isinstance(body, dict) else {})
        return _json(405, {"detail": "Method Not Allowed"})

    def _trigger(self, dag_id: str, body: dict[str, Any]) -> HttpResponse:
        if self.major >= 3 and "logical_date" not in body:
            return _json(422, {"detail": [{"type": "missing", "loc": ["body", "logical_date"]}]})
        run_id = body.get("dag_run_id") or f"manual__{len(self.runs) + 1}"
        if (dag_id, run_id) in self.runs:
            detail = f"DAG run with id {run_id} already exists"
            return _json(409, {"detail": detail, "status": 409, "title": "Conflict"})
        run = {"dag_id": dag_id, "dag_run_id": run_id, "conf": body.get("conf"), "state": "queued"}
        self.runs[(dag_id, run_id)] = run
        return _json(200, run)

    def _token(self, request: HttpRequest) -> HttpResponse:
        credentials = json.loads(request.body or b"{}")
        if self._credentials_match(credentials.get("username"), credentials.get("password")):
            return _json(201, {"access_token": self._jwt})
        return _json(401, {"detail": "Invalid credentials"})

    def _authenticated(self, authorization: str) -> bool:
        scheme, _, value = authorization.partition(" ")
        if self.major >= 3:
            return scheme == "Bearer" and hmac.compare_digest(value, self._jwt)
        if scheme != "Basic":
            return False
        username, _, password = base64.b64decode(value).decode().partition(":")
        return self._credentials_match(username, password)

    def _credentials_match(self, username: Any, password: Any) -> bool:
        return (
            isinstance(username, str)
            and isinstance(password, str)
            and hmac.compare_digest(username, self.username)
            and hmac.compare_digest(password, self.password)
        )


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(body).encode(), {"Content-Type": "application/json"})
