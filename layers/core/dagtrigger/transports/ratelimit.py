"""A token bucket per environment alias, so one Lambda instance cannot flood an Airflow web server.

MWAA InvokeRestApi allows about 10 TPS per environment; ``settings.rest_api_max_tps`` is this
instance's share (event source maximum concurrency bounds the number of instances).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    refilled_at: float


class RateLimiter:
    """Thread-safe token buckets keyed by name: ``rate_per_second`` refill, ``burst`` capacity."""

    def __init__(
        self,
        rate_per_second: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be positive, got {rate_per_second}")
        capacity = burst if burst is not None else max(1.0, rate_per_second)
        if capacity < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self._rate = rate_per_second
        self._capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, timeout: float) -> bool:
        """Take one token for ``key``, waiting at most ``timeout`` seconds; False if none came."""
        deadline = self._clock() + max(0.0, timeout)
        while True:
            wait = self._take_or_wait_time(key)
            if wait == 0:
                return True
            remaining = deadline - self._clock()
            if wait > remaining:
                return False
            self._sleep(wait)

    def _take_or_wait_time(self, key: str) -> float:
        """Take a token and return 0, or return how long until one is available."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.setdefault(key, _Bucket(self._capacity, now))
            elapsed = max(0.0, now - bucket.refilled_at)
            bucket.tokens = min(self._capacity, bucket.tokens + elapsed * self._rate)
            bucket.refilled_at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self._rate
