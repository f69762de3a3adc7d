"""The emulator's own record of the requests it answered (MWAA keeps no such thing).

A bounded list, newest last, that ``GET /_emulator/requests`` and ``python -m devstack requests``
show: when, which operation (a control-plane call or a CLI command on an environment's web
server), the environment, what was asked (a method and path, a command line), the status
answered and how long it took. Tokens and passwords are never recorded: they travel in headers
and answers, which are not kept; command arguments that may hold a secret are masked.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

DEFAULT_CAPACITY = 500
#: longest request text kept (a CLI line with a large conf, a long path)
MAX_REQUEST_CHARS = 300
MASK = "***"
#: CLI commands whose arguments after the first n may hold a secret: `variables set KEY VALUE`
_MASKED_AFTER: dict[tuple[str, ...], int] = {("variables", "set"): 3}


@dataclass(frozen=True)
class AnsweredRequest:
    time: str  # ISO 8601, UTC
    operation: str  # CreateCliToken, InvokeRestApi, CreateWebLoginToken, ..., or cli
    environment: str | None
    request: str  # "POST /dags/etl/dagRuns", a CLI command line, or ""
    status: int  # the HTTP status the emulator answered
    error: str | None  # the AWS error type, if any
    duration_ms: float


class RequestLog:
    """Thread-safe, keeps the last `capacity` requests, and tells listeners of every one (a
    benchmark counts all the calls of a burst, far more than the log keeps)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._entries: deque[AnsweredRequest] = deque(maxlen=capacity)
        self._listeners: list[Callable[[AnsweredRequest], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[AnsweredRequest], None]) -> Callable[[], None]:
        """Call `listener` with each request recorded from now on; returns the unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners.remove(listener)

        return unsubscribe

    def record(
        self,
        *,
        operation: str,
        environment: str | None,
        request: str,
        status: int,
        started: float,
        error: str | None = None,
    ) -> None:
        """`started`: ``time.monotonic()`` when the request arrived."""
        entry = AnsweredRequest(
            time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            operation=operation,
            environment=environment,
            request=_bounded(request),
            status=status,
            error=error,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        with self._lock:
            self._entries.append(entry)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(entry)

    def entries(self, limit: int | None = None) -> list[AnsweredRequest]:
        with self._lock:
            entries = list(self._entries)
        return entries[-limit:] if limit else entries

    def describe(self, limit: int | None = None) -> dict[str, Any]:
        return {"requests": [asdict(entry) for entry in self.entries(limit)]}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def cli_request_text(argv: Sequence[str]) -> str:
    """A CLI command line to record, with arguments that may hold a secret masked."""
    for command, keep in _MASKED_AFTER.items():
        if tuple(argv[: len(command)]) == command and len(argv) > keep:
            return " ".join([*argv[:keep], MASK])
    return " ".join(argv)


def _bounded(text: str) -> str:
    if len(text) <= MAX_REQUEST_CHARS:
        return text
    return text[: MAX_REQUEST_CHARS - 3] + "..."
