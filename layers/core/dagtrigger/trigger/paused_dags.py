"""Say that a DAG is paused once per DAG and interval, not on every run triggered on it.

A burst of 500 files for a paused DAG would otherwise log 500 identical warnings. The memo is
per Lambda instance (module state): each instance warns at most once per DAG and interval,
while every trigger record keeps its own ``dag_paused`` flag.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

#: at most one "DAG is paused" warning per DAG in this interval, per function instance
PAUSED_DAG_WARNING_INTERVAL_SECONDS = 600.0


class OncePerInterval:
    """``first(key)`` is True once per key and interval, False for repeats within it."""

    def __init__(
        self, interval_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_seconds:
                return False
            self._drop_expired(now)
            self._last[key] = now
            return True

    def forget(self) -> None:
        with self._lock:
            self._last.clear()

    def _drop_expired(self, now: float) -> None:
        expired = [key for key, last in self._last.items() if now - last >= self.interval_seconds]
        for key in expired:
            del self._last[key]


paused_dag_warnings = OncePerInterval(PAUSED_DAG_WARNING_INTERVAL_SECONDS)
