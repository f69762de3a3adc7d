"""Fakes for transport tests: a botocore Stubber for MWAA, and loopback HTTP(S) servers that
behave like an Airflow REST API (2 and 3) and like MWAA's ``/aws_mwaa/cli`` web server.

Every server binds 127.0.0.1 on a free port and is shut down in the fixture's teardown.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import shlex
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dagtrigger.transports.base import EnvironmentRef, TransportKind, TriggerRequest


# --------------------------------------------------------------------------- small helpers
class FakeClock:
    """A monotonic clock that only moves when told to (or when ``sleep`` is called)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_request() -> Callable[..., TriggerRequest]:
    def make(environment: EnvironmentRef, **overrides: Any) -> TriggerRequest:
        values: dict[str, Any] = {
            "environment": environment,
            "dag_id": "ingest_sales",
            "dag_run_id": "dt__3f2a9c",
            "conf": {"bucket": "landing", "key": "sales/2026-11-21.csv"},
        }
        values.update(overrides)
        return TriggerRequest(**values)

    return make


class FixedNow:
    """Successive distinct UTC datetimes (1 ms apart), like ``datetime.now`` under load."""

    def __init__(self) -> None:
        self.current = dt.datetime(2026, 11, 21, 2, 0, 0, 123456, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.current += dt.timedelta(milliseconds=1)
        return self.current


@pytest.fixture
def fixed_now() -> FixedNow:
    return FixedNow()


# --------------------------------------------------------------------------- MWAA (Stubber)
@pytest.fixture
def mwaa_client() -> Any:
    return boto3.client("mwaa", region_name="us-east-1")


@pytest.fixture
def mwaa_stub(mwaa_client: Any) -> Iterator[Stubber]:
    with Stubber(mwaa_client) as stubber:
        yield stubber


# --------------------------------------------------------------------------- loopback servers
class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True


@dataclass
class RunningServer:
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _serve(
    handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
) -> RunningServer:
    server = _QuietServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},
        name="loopback-fake",
        daemon=True,
    )
    thread.start()
    return RunningServer(server, thread)


class _JsonHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


# --------------------------------------------------------------------------- fake Airflow REST
@dataclass
class FakeAirflow:
    """A small Airflow REST API: Airflow 2 (``/api/v1``, basic auth) or 3 (``/api/v2``, JWT)."""

    major: int
    username: str = "dagtrigger"
    password: str = "s3cret-pw"
    dags: dict[str, bool] = field(default_factory=lambda: {"ingest_sales": False})  # id -> paused
    runs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: run id -> its task instances ({"task_id": ..., "state": ...})
    task_instances: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: answers forced on the next POSTs to dagRuns, before any logic: (status, body)
    scripted_posts: list[tuple[int, Any]] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_root(self) -> str:
        return "/api/v2" if self.major >= 3 else "/api/v1"

    def add_run(
        self, dag_id: str, run_id: str, logical_date: str | None, state: str = "queued"
    ) -> None:
        self.runs.setdefault(dag_id, {})[run_id] = {
            "dag_id": dag_id,
            "dag_run_id": run_id,
            "logical_date": logical_date,
            "state": state,
        }

    def posts(self) -> list[dict[str, Any]]:
        return [
            r for r in self.requests if r["method"] == "POST" and r["path"].endswith("/dagRuns")
        ]

    # -- request handling (called from the server thread)
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(
                {"method": method, "path": path, "headers": dict(headers), "body": body}
            )
            if path == "/api/v2/monitor/health":
                return (
                    (200, {"metadatabase": {"status": "healthy"}}) if self.major >= 3 else (404, {})
                )
            if path == "/api/v1/health":
                return (
                    (200, {"metadatabase": {"status": "healthy"}}) if self.major < 3 else (404, {})
                )
            if path == "/auth/token" and method == "POST" and self.major >= 3:
                return self._issue_token(body)
            if not path.startswith(self.api_root + "/"):
                return 404, {"detail": "Not Found"}
            if not self._authorised(headers):
                return 401, {"detail": "Not authenticated"}
            return self._api(method, path[len(self.api_root) :], query, body)

    def _issue_token(self, body: bytes) -> tuple[int, Any]:
        sent = json.loads(body or b"{}")
        if sent.get("username") != self.username or sent.get("password") != self.password:
            return 401, {"detail": "Invalid credentials"}
        token = f"jwt-{len(self.issued_tokens) + 1}-secret"
        self.issued_tokens.append(token)
        self.valid_tokens.add(token)
        return 201, {"access_token": token}

    def _authorised(self, headers: Any) -> bool:
        given = headers.get("Authorization", "")
        if self.major >= 3:
            return given.removeprefix("Bearer ") in self.valid_tokens
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return given == f"Basic {expected}"

    def _api(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "dags":
            return 404, {"detail": "Not Found"}
        dag_id = parts[1]
        if dag_id not in self.dags:
            return 404, self._not_found(f"DAG with dag_id: '{dag_id}' not found")
        if len(parts) == 2 and method == "GET":
            return 200, {"dag_id": dag_id, "is_paused": self.dags[dag_id]}
        if len(parts) == 3 and parts[2] == "dagRuns" and method == "POST":
            if self.scripted_posts:
                return self.scripted_posts.pop(0)
            return self._trigger(dag_id, json.loads(body or b"{}"))
        if len(parts) == 3 and parts[2] == "dagRuns" and method == "GET":
            runs = list(self.runs.get(dag_id, {}).values())
            offset = int(query.get("offset", ["0"])[0])
            limit = int(query.get("limit", ["100"])[0])
            return 200, {"dag_runs": runs[offset : offset + limit], "total_entries": len(runs)}
        if len(parts) == 5 and parts[2:5:2] == ["dagRuns", "taskInstances"] and method == "GET":
            if parts[3] not in self.runs.get(dag_id, {}):
                return 404, self._not_found(f"DagRun with run_id: `{parts[3]}` was not found")
            wanted = query.get("state")
            instances = [
                instance
                for instance in self.task_instances.get(parts[3], [])
                if wanted is None or instance["state"] in wanted
            ]
            limit = int(query.get("limit", ["100"])[0])
            return 200, {"task_instances": instances[:limit], "total_entries": len(instances)}
        if len(parts) == 4 and parts[2] == "dagRuns" and method == "GET":
            run = self.runs.get(dag_id, {}).get(parts[3])
            return (
                (200, run)
                if run
                else (404, self._not_found(f"DAGRun with run_id {parts[3]} not found"))
            )
        return 405, {"detail": "Method Not Allowed"}

    def _not_found(self, detail: str) -> dict[str, Any]:
        if self.major >= 3:
            return {"detail": detail}
        return {"detail": detail, "status": 404, "title": "DAG not found", "type": "about:blank"}

    def _trigger(self, dag_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self.major >= 3 and "logical_date" not in body:
            return 422, {
                "detail": [
                    {"type": "missing", "loc": ["body", "logical_date"], "msg": "Field required"}
                ]
            }
        if not isinstance(body.get("conf", {}), dict):
            if self.major >= 3:
                return 422, {
                    "detail": [
                        {"loc": ["body", "conf"], "msg": "Input should be a valid dictionary"}
                    ]
                }
            return 400, {
                "detail": "'conf' is not of type 'object'",
                "status": 400,
                "title": "Bad Request",
            }
        run_id = body["dag_run_id"]
        logical_date = body.get("logical_date")
        existing = self.runs.get(dag_id, {})
        date_taken = logical_date is not None and any(
            r["logical_date"] == logical_date for r in existing.values()
        )
        if run_id in existing or date_taken:
            if self.major >= 3:
                return 409, {
                    "detail": {"reason": "Unique constraint violation", "statement": "hidden"}
                }
            if date_taken:
                detail = (
                    f"DAGRun with DAG ID: '{dag_id}' and DAGRun logical date: '{logical_date}' "
                    "already exists"
                )
            else:
                detail = f"DAGRun with DAG ID: '{dag_id}' and DAGRun ID: '{run_id}' already exists"
            return 409, {
                "detail": detail,
                "status": 409,
                "title": "Conflict",
                "type": "about:blank",
            }
        self.add_run(dag_id, run_id, logical_date)
        return 200, dict(self.runs[dag_id][run_id], conf=body.get("conf"))


def _airflow_handler(fake: FakeAirflow) -> type[BaseHTTPRequestHandler]:
    class Handler(_JsonHandler):
        def _dispatch(self) -> None:
            url = urlsplit(self.path)
            status, body = fake.handle(
                self.command, url.path, parse_qs(url.query), self.headers, self._read_body()
            )
            self._send_json(status, body)

        do_GET = do_POST = do_PATCH = _dispatch

    return Handler


@pytest.fixture
def fake_airflow() -> Iterator[Callable[..., FakeAirflow]]:
    servers: list[RunningServer] = []

    def start(major: int, **kwargs: Any) -> FakeAirflow:
        fake = FakeAirflow(major=major, **kwargs)
        running = _serve(_airflow_handler(fake))
        servers.append(running)
        fake.base_url = f"http://127.0.0.1:{running.port}"
        return fake

    yield start
    for running in servers:
        running.stop()


# --------------------------------------------------------------------------- fake MWAA CLI
@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (the MWAA web server is HTTPS only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


#: (argv) -> (http status, stdout, stderr)
CliBehaviour = Callable[[list[str]], tuple[int, str, str]]


@dataclass
class FakeMwaaCli:
    hostname: str = ""
    valid_tokens: set[str] = field(default_factory=set)
    behaviour: CliBehaviour | None = None
    bodies: list[str] = field(default_factory=list)
    tokens_seen: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        if path != "/aws_mwaa/cli":
            return 404, {"error": "not found"}
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        self.tokens_seen.append(token)
        self.content_types.append(headers.get("Content-Type", ""))
        if token not in self.valid_tokens:
            return 403, {"error": "Forbidden"}
        text = body.decode("ascii")
        self.bodies.append(text)
        assert self.behaviour is not None, "set FakeMwaaCli.behaviour in the test"
        status, stdout, stderr = self.behaviour(shlex.split(text))
        return status, {
            "stdout": base64.b64encode(stdout.encode()).decode(),
            "stderr": base64.b64encode(stderr.encode()).decode(),
        }


@pytest.fixture
def fake_mwaa_cli(tls_files: tuple[Path, Path]) -> Iterator[FakeMwaaCli]:
    fake = FakeMwaaCli()

    class Handler(_JsonHandler):
        def do_POST(self) -> None:
            status, body = fake.handle(urlsplit(self.path).path, self.headers, self._read_body())
            self._send_json(status, body)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    running = _serve(Handler, tls=context)
    fake.hostname = f"127.0.0.1:{running.port}"
    yield fake
    running.stop()


@pytest.fixture
def tls_session(tls_files: tuple[Path, Path]) -> Iterator[requests.Session]:
    session = requests.Session()
    session.verify = str(tls_files[0])
    session.trust_env = False  # no proxy or CA bundle from the machine's environment
    yield session
    session.close()


@pytest.fixture
def http_session() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


class RecordingLock:
    """An in-process stand-in for the DynamoDB lease lock that records its use."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.held_now = 0
        self.max_held = 0
        self._lock = threading.Lock()

    def held(self, key: str) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def hold() -> Iterator[str]:
            with self._lock:
                self.keys.append(key)
                self.held_now += 1
                self.max_held = max(self.max_held, self.held_now)
            try:
                yield "owner"
            finally:
                with self._lock:
                    self.held_now -= 1

        return hold()


@pytest.fixture
def recording_lock() -> RecordingLock:
    return RecordingLock()


@pytest.fixture
def cli_env() -> EnvironmentRef:
    return EnvironmentRef(
        alias="prod", name="prod-mwaa", transport=TransportKind.CLI, airflow_major=3
    )
