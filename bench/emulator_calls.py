"""Counting MWAA calls where they arrive: the MWAA emulator's request log.

The emulator keeps the last ``DEFAULT_CAPACITY`` requests it answered
(``devstack.mwaa_emulator.request_log``, also served at ``GET /_emulator/requests``). A burst
answers more than that, so `EmulatorTally` reads the log every ``interval`` seconds from a
thread and appends what is new since its last read: the new snapshot is the old one's tail
plus new entries, found by the longest overlap. If a read finds no overlap with a full log,
requests were missed and `overflowed` says so (the counts are then lower bounds).

Counting here, rather than with botocore hooks in a function's process, holds whatever process
the functions run in (the runner may run each in worker processes).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from devstack.mwaa_emulator.request_log import DEFAULT_CAPACITY, AnsweredRequest, RequestLog

TRIGGER_COMMAND = "dags trigger"


def new_entries(
    previous: Sequence[AnsweredRequest], current: Sequence[AnsweredRequest]
) -> tuple[list[AnsweredRequest], bool]:
    """The entries of `current` that `previous` did not hold, and whether some may be missing.

    The log only appends and drops its oldest, so ``current`` is a suffix of
    ``previous + new``: the longest prefix of ``current`` that ends ``previous`` is old.
    """
    if not previous:
        return list(current), False
    last = previous[-1]
    longest = min(len(previous), len(current))
    for overlap in range(longest, 0, -1):
        if current[overlap - 1] == last and list(previous[-overlap:]) == list(current[:overlap]):
            return list(current[overlap:]), False
    # No overlap: everything is new; if the log is full some may have been dropped unread.
    return list(current), len(current) >= DEFAULT_CAPACITY


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
    """Every request the emulator answers while started, kept in order (`entries`)."""

    def __init__(self, log: RequestLog, *, interval: float = 0.1) -> None:
        self._log = log
        self._interval = interval
        self._seen: list[AnsweredRequest] = []
        self._entries: list[AnsweredRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.overflowed = False

    def start(self) -> None:
        self.read()
        self._thread = threading.Thread(target=self._run, name="bench-emulator-tally", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.read()

    def read(self) -> int:
        """Take in what the log holds now; the number of entries so far (a mark)."""
        with self._lock:
            current = self._log.entries()
            fresh, missing = new_entries(self._seen, current)
            self.overflowed = self.overflowed or missing
            self._seen = current
            self._entries.extend(fresh)
            return len(self._entries)

    def mark(self) -> int:
        return self.read()

    def since(self, mark: int, until: int | None = None) -> list[AnsweredRequest]:
        self.read()
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

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.read()
