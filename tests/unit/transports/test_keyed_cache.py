"""Values built once per key: transports, Airflow majors and CLI tokens are kept this way."""

from __future__ import annotations

import threading
import time

from dagtrigger.transports.keyed_cache import KeyedCache


def test_a_value_is_built_once_per_key_even_when_asked_for_at_the_same_time():
    # Given a slow build, and eight threads asking for the same key at once
    built: list[str] = []

    def build(key: str) -> str:
        built.append(key)
        time.sleep(0.01)
        return key.upper()

    cache: KeyedCache[str, str] = KeyedCache(build)
    start = threading.Barrier(8)
    answers: list[str] = []

    def ask() -> None:
        start.wait()
        answers.append(cache.get("prod"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then it was built once, everyone got it, and another key is built on its own
    assert (built, answers) == (["prod"], ["PROD"] * 8)
    assert cache.get("dev") == "DEV"
    assert built == ["prod", "dev"]


def test_an_expired_or_forgotten_value_is_built_again():
    # Given values that expire at a given moment of a clock
    now = [0.0]
    builds = iter(range(1, 10))
    cache: KeyedCache[str, tuple[int, float]] = KeyedCache(
        lambda _key: (next(builds), now[0] + 10), fresh=lambda value: now[0] < value[1]
    )

    # When it is asked before and after expiry, and after being forgotten
    first = cache.get("prod")
    now[0] = 9.0
    before_expiry = cache.get("prod")
    now[0] = 10.0
    after_expiry = cache.get("prod")
    cache.forget("prod")
    after_forget = cache.get("prod")

    # Then a fresh value is built only when the kept one expired or was forgotten
    assert [first[0], before_expiry[0], after_expiry[0], after_forget[0]] == [1, 1, 2, 3]
