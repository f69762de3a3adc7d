"""Idempotency keys for API requests: who asked, with which key, for what.

A client-supplied ``Idempotency-Key`` names one request of one caller: the trigger id is
derived from (caller, key), so two callers never share a key space, and the request
fingerprint (a digest of what was asked) tells a retry of the same request from a different
request that reused the key.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from dagtrigger import ids
from dagtrigger.api.problems import ApiProblem, ProblemCode, validation_problem

IDEMPOTENCY_HEADER = "Idempotency-Key"
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]{1,255}")
ANONYMOUS_CALLER = "anonymous"


def check_idempotency_key(key: str | None) -> str | None:
    """The key, if it is 1 to 255 visible ASCII characters (no spaces, no control characters)."""
    if key is None:
        return None
    if not _VISIBLE_ASCII.fullmatch(key):
        raise validation_problem(
            f"the {IDEMPOTENCY_HEADER} header must be 1 to 255 visible ASCII characters",
            loc=["header", IDEMPOTENCY_HEADER],
            error_type="idempotency_key_invalid",
        )
    return key


def request_identity(kind: str, caller: str, key: str | None) -> str:
    """What makes two requests the same: the caller and its key, or nothing (a fresh uuid)."""
    if key is None:
        return f"{kind}:request:{uuid.uuid4()}"
    return json.dumps([kind, caller, key], ensure_ascii=False, separators=(",", ":"))


def trigger_id_for(kind: str, caller: str, key: str | None) -> tuple[str, str]:
    """(trigger id, source identity) for a request of ``kind`` by ``caller`` with ``key``."""
    identity = request_identity(kind, caller, key)
    return ids.trigger_id(identity, ""), identity


def fingerprint(*parts: Any) -> str:
    """SHA-256 of the canonical JSON of what was asked (sorted keys, no spaces)."""
    canonical = json.dumps(
        list(parts), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def ensure_same_request(record: dict[str, Any], expected_fingerprint: str) -> None:
    """422 when a key comes back with a request other than the one it first named."""
    if record.get("request_fingerprint") != expected_fingerprint:
        raise ApiProblem(
            ProblemCode.VALIDATION_ERROR,
            "idempotency key reused with a different request: this Idempotency-Key already "
            "names another request; send a new key for a new request",
            extensions={"trigger_id": record.get("trigger_id")},
        )
