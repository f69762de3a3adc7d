"""Counting MWAA calls where they arrive: the MWAA emulator's request log.

`EmulatorTally` subscribes to the emulator's log (``devstack.mwaa_emulator.request_log``) and
keeps every request answered while it is started, in order; the log itself keeps only the
last ones. Counting here, rather than with botocore hooks in a function's process, holds
whatever process the functions run in (the runner runs each in worker processes).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from devstack.mwaa_emulator.request_log import AnsweredRequest, RequestLog

TRIGGER_COMMAND = "dags trigger"


@dataclass(frozen=True)
class CallCount:
    """Calls answered between two marks, by kind."""

    total: int
    by_kind: dict[str, int]
    throttled: int
    failed: int

    def kinds(self, *names: str) -> int:
        return sum(self.by_kind.get(name, 0) for name in names)


def kind_of(entry: AnsweredRequest) -> str:
    """A short name of what a request did: ``InvokeRestApi POST dagRuns``, ``cli dags trigger``,
    ``CreateCliToken`` ..."""
    if entry.operation == "InvokeRestApi":
        method, _, path = entry.request.partition(" ")
        if path.endswith("/dagRuns/list"):
            return f"InvokeRestApi {method} dagRuns/list"
        if path.endswith("/dagRuns"):
            return f"InvokeRestApi {method} dagRuns"
        if "/dagRuns/" in path:
            return f"InvokeRestApi {method} dagRun"
        if path.startswith("/dags/") and path.count("/") == 2:
            return f"InvokeRestApi {method} dag"
        return f"InvokeRestApi {method} other"
    if entry.operation == "cli":
        words = entry.request.split()
        return "cli " + " ".join(words[:2])
    return entry.operation


class EmulatorTally:
    """Every request the emulator answers while started, kept in order."""

    def __init__(self, log: RequestLog) -> None:
        self._log = log
        self._entries: list[AnsweredRequest] = []
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self._unsubscribe = self._log.subscribe(self._take)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def mark(self) -> int:
        """The number of requests so far: where a scenario's count starts or ends."""
        with self._lock:
            return len(self._entries)

    def since(self, mark: int, until: int | None = None) -> list[AnsweredRequest]:
        with self._lock:
            return list(self._entries[mark:until])

    def count(
        self, mark: int, until: int | None = None, environment: str | None = None
    ) -> CallCount:
        entries = [
            entry
            for entry in self.since(mark, until)
            if environment is None or entry.environment == environment
        ]
        by_kind = Counter(kind_of(entry) for entry in entries)
        throttled = sum(1 for entry in entries if entry.error and "Throttling" in entry.error)
        failed = sum(1 for entry in entries if entry.status >= 400)
        return CallCount(len(entries), dict(by_kind), throttled, failed)

    def _take(self, entry: AnsweredRequest) -> None:
        with self._lock:
            self._entries.append(entry)
