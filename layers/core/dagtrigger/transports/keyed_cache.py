"""Values built on first use per key and kept; one lock, so concurrent callers build each once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KeyedCache(Generic[K, V]):
    """``build(key)`` on first use of ``key``, again only when ``fresh`` says a value expired."""

    def __init__(
        self, build: Callable[[K], V], *, fresh: Callable[[V], bool] = lambda _value: True
    ) -> None:
        self._build = build
        self._fresh = fresh
        self._values: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V:
        with self._lock:
            if key in self._values and self._fresh(self._values[key]):
                return self._values[key]
            value = self._values[key] = self._build(key)
            return value

    def forget(self, key: K) -> None:
        with self._lock:
            self._values.pop(key, None)
