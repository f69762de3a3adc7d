"""The per-environment token bucket, driven by a fake clock."""

from __future__ import annotations

import threading

import pytest

from dagtrigger.transports.ratelimit import RateLimiter


def test_burst_is_served_at_once_then_the_rate_applies(clock):
    # Given 2 tokens per second with a burst of 3
    limiter = RateLimiter(rate_per_second=2, burst=3, clock=clock, sleep=clock.sleep)

    # When 5 tokens are taken back to back
    granted = [limiter.acquire("prod", timeout=10) for _ in range(5)]

    # Then the first 3 came at once and the other 2 half a second apart
    assert granted == [True] * 5
    assert clock.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]


def test_buckets_are_separate_per_environment(clock):
    limiter = RateLimiter(rate_per_second=1, burst=1, clock=clock, sleep=clock.sleep)

    assert limiter.acquire("prod", timeout=0)
    assert limiter.acquire("staging", timeout=0)
    assert not limiter.acquire("prod", timeout=0)


def test_no_token_within_the_timeout_returns_false_without_sleeping_past_it(clock):
    limiter = RateLimiter(rate_per_second=0.5, burst=1, clock=clock, sleep=clock.sleep)
    limiter.acquire("prod", timeout=0)

    assert limiter.acquire("prod", timeout=1.0) is False
    assert sum(clock.sleeps) <= 1.0


def test_tokens_are_never_handed_out_twice_across_threads(clock):
    # Given a bucket of 50 tokens that does not refill (the fake clock never moves)
    limiter = RateLimiter(rate_per_second=1, burst=50, clock=clock, sleep=lambda _: None)
    granted: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(20):
            result = limiter.acquire("prod", timeout=0)
            with lock:
                granted.append(result)

    # When 8 threads take 20 tokens each
    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly the 50 available were granted
    assert granted.count(True) == 50


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (1, 0.5)])
def test_nonsense_settings_are_refused(rate, burst):
    with pytest.raises(ValueError, match="must be"):
        RateLimiter(rate_per_second=rate, burst=burst)
