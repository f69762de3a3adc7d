"""A thread-safe token bucket on an injectable clock (MWAA InvokeRestApi: about 10 TPS).

Not imported from ``dagtrigger.transports.ratelimit``: a fake must not share the code it tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class TokenBucket:
    """Allows `rate_per_second` on average with bursts of up to `burst` (default: one second's)."""

    def __init__(
        self,
        rate_per_second: float,
        *,
        clock: Callable[[], float],
        burst: float | None = None,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be positive, got {rate_per_second!r}")
        self._rate = rate_per_second
        self._capacity = burst if burst is not None else rate_per_second
        if self._capacity < 1:
            raise ValueError(f"burst must allow at least one request, got {self._capacity!r}")
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take one token if there is one; never blocks."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False
