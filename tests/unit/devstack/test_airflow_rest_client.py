"""The emulator's InvokeRestApi client passes one writing call at a time to each local Airflow
(its SQLite takes one writer), and reads at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devstack.mwaa_emulator.backend import AirflowRestClient


class _InFlight:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = {"GET": 0, "POST": 0}
        self.most = {"GET": 0, "POST": 0}

    def enter(self, method: str) -> None:
        with self.lock:
            self.now[method] += 1
            self.most[method] = max(self.most[method], self.now[method])

    def leave(self, method: str) -> None:
        with self.lock:
            self.now[method] -= 1


@dataclass
class _Backend:
    base_url: str
    major: int = 2

    def api_prefix(self) -> str:
        return "/api/v1"


@pytest.fixture
def slow_airflow() -> Iterator[tuple[_Backend, _InFlight]]:
    in_flight = _InFlight()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            in_flight.enter(self.command)
            time.sleep(0.15)
            in_flight.leave(self.command)
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield _Backend(f"http://127.0.0.1:{server.server_address[1]}"), in_flight
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_writes_reach_one_airflow_one_at_a_time_and_reads_at_once(
    slow_airflow: tuple[_Backend, _InFlight],
) -> None:
    # Given two environments' clients in front of the same local Airflow
    backend, in_flight = slow_airflow
    clients = [
        AirflowRestClient(backend, username="user", password="secret")  # type: ignore[arg-type]
        for _ in range(2)
    ]

    # When both send four triggers and four reads at once
    def call(number: int) -> int:
        client = clients[number % 2]
        method = "POST" if number < 8 else "GET"
        return client.call(method, "/dags/ingest_sales/dagRuns", None, {"conf": {}}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(call, range(16)))

    # Then every call was answered, no two writes were in Airflow together, and reads overlapped
    assert statuses == [200] * 16
    assert in_flight.most["POST"] == 1
    assert in_flight.most["GET"] > 1
