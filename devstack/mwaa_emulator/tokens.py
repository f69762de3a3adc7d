"""Short-lived bearer tokens (CreateCliToken, CreateWebLoginToken): 60 s, per environment.

Only a SHA-256 digest of each token is kept, so the lookup's timing says nothing useful about
the secret, and a dump of the store holds no usable token.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

TOKEN_LIFETIME_SECONDS = 60.0


@dataclass(frozen=True)
class IssuedToken:
    environment: str
    expires_at: float


class TokenStore:
    def __init__(
        self,
        *,
        clock: Callable[[], float],
        lifetime_seconds: float = TOKEN_LIFETIME_SECONDS,
    ) -> None:
        self._clock = clock
        self._lifetime = lifetime_seconds
        self._issued: dict[bytes, IssuedToken] = {}
        self._lock = threading.Lock()

    def issue(self, environment: str) -> str:
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._forget_expired()
            self._issued[_digest(token)] = IssuedToken(environment, self._clock() + self._lifetime)
        return token

    def environment_of(self, token: str) -> str | None:
        """The environment a live token was issued for; None if unknown or expired."""
        with self._lock:
            issued = self._issued.get(_digest(token))
            if issued is None or self._clock() >= issued.expires_at:
                return None
            return issued.environment

    def _forget_expired(self) -> None:
        now = self._clock()
        for digest in [d for d, issued in self._issued.items() if now >= issued.expires_at]:
            del self._issued[digest]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).digest()
