"""A small threaded HTTP(S) server on 127.0.0.1 that hands each request to one function.

It can also play a black hole (`LoopbackHttpServer.black_hole`), as an endpoint behind a firewall
that drops packets or a dead load balancer: a new connection's SYN is never answered, so the
client's connect timeout decides how long it waits, and a request on a connection opened before
is read but never answered, so the client's read timeout decides.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from devstack.processes import LOOPBACK

MAX_BODY_BYTES = 10 * 1024 * 1024
#: how long a filler connection waits for the kernel before the listen queue counts as full
_FILLER_CONNECT_SECONDS = 0.2


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # percent-decoded, without the query
    raw_path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # names lower-cased
    body: bytes


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[HttpRequest], HttpResponse]


def status_page(status: int, headers: Mapping[str, str] | None = None) -> HttpResponse:
    """The bare HTML page a web server, or a load balancer in front of it, sends with a status."""
    code = int(status)
    phrase = f"{code} {HTTPStatus(code).phrase}"
    body = f"<html><head><title>{phrase}</title></head><body><h1>{phrase}</h1></body></html>"
    return HttpResponse(code, body.encode(), {"Content-Type": "text/html", **(headers or {})})


class LoopbackHttpServer:
    """Serves `handler` on 127.0.0.1:`port` (0: any free port), over TLS when given a context."""

    def __init__(
        self,
        handler: Handler,
        *,
        name: str,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._server = _Server((LOOPBACK, port), _request_handler_for(handler), tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=name,
            daemon=True,
        )

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def host_port(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.black_hole(False)  # the accept loop must run again to see the shutdown
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    @property
    def black_holed(self) -> bool:
        return self._server.black_holed.is_set()

    def black_hole(self, on: bool) -> None:
        """Drop every new connection and leave every request unanswered while `on`.

        Linux answers no SYN while a listening socket's accept queue is full, so the server stops
        accepting and fills its own queue with idle connections; a request on an already open
        connection is held, then the connection is closed unanswered when the black hole ends.
        """
        server = self._server
        if on == self.black_holed:
            return
        if on:
            server.black_holed.set()
            server.accepting.clear()
            server.fillers = _fill_accept_queue(self.port, server.request_queue_size)
        else:
            for filler in server.fillers:
                filler.close()
            server.fillers = []
            server.black_holed.clear()
            server.accepting.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler_class: type[BaseHTTPRequestHandler],
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(address, handler_class)
        self._tls = tls
        self.accepting = threading.Event()
        self.accepting.set()
        self.black_holed = threading.Event()
        self.fillers: list[socket.socket] = []

    def get_request(self) -> tuple[Any, Any]:
        # While black-holed, connections wait in the kernel's accept queue, which stays full.
        self.accepting.wait()
        return super().get_request()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the request's own thread, so that a slow or broken
        # client never stalls the accept loop.
        if self._tls is not None:
            try:
                request = self._tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                with contextlib.suppress(OSError):
                    request.close()
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects are normal here; stay quiet instead of printing tracebacks."""


def _request_handler_for(handler: Handler) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 60

        def version_string(self) -> str:
            return "mwaa-emulator"

        def do_GET(self) -> None:
            self._dispatch()

        do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._write(HttpResponse(413, b"Request Entity Too Large"), close=True)
                return
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            request = HttpRequest(
                method=self.command,
                path=unquote(split.path),
                raw_path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            if self._held_by_black_hole():
                return
            try:
                response = handler(request)
            except Exception:  # an emulator bug must not kill the connection silently
                response = HttpResponse(
                    500, b"Internal Server Error", {"Content-Type": "text/plain"}
                )
            self._write(response)

        def _write(self, response: HttpResponse, *, close: bool = False) -> None:
            try:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
            except (TimeoutError, BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True

        def _held_by_black_hole(self) -> bool:
            """Hold a request that arrived in a black hole, then drop its connection unanswered."""
            server = self.server
            if not isinstance(server, _Server) or not server.black_holed.is_set():
                return False
            server.accepting.wait()
            self.close_connection = True
            return True

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: request logs would only add noise to test output."""

    return RequestHandler


def _fill_accept_queue(port: int, backlog: int) -> list[socket.socket]:
    """Open idle connections to `port` until the kernel queues no more (at most backlog + 2)."""
    fillers: list[socket.socket] = []
    for _ in range(backlog + 2):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.settimeout(_FILLER_CONNECT_SECONDS)
        try:
            filler.connect((LOOPBACK, port))
        except OSError:  # no SYN-ACK: the queue is full, the black hole is closed
            filler.close()
            break
        fillers.append(filler)
    return fillers
