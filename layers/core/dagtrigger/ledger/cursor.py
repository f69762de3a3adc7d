"""Opaque pagination cursors: URL-safe base64 of a query's LastEvaluatedKey, checked on return."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from dagtrigger.errors import InvalidCursorError

MAX_CURSOR_CHARS = 8192


def encode_cursor(last_evaluated_key: dict[str, Any] | None) -> str | None:
    if not last_evaluated_key:
        return None
    text = json.dumps(last_evaluated_key, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, *, expected_key: dict[str, str | None]) -> dict[str, str]:
    """The start key a cursor stands for, if it fits this query.

    ``expected_key`` maps each key attribute of the queried index to the value it must have
    (the partition being queried) or None (any non-empty string).
    """
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursorError(
            f"cursor must be a non-empty string of at most {MAX_CURSOR_CHARS} characters"
        )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError):
        raise InvalidCursorError(
            "cursor is not one this API issued (not URL-safe base64 of JSON)"
        ) from None
    if not isinstance(decoded, dict) or set(decoded) != set(expected_key):
        raise InvalidCursorError(
            "cursor does not belong to this query (it names other key attributes); "
            "start again without a cursor"
        )
    for attribute, required in expected_key.items():
        value = decoded[attribute]
        if not isinstance(value, str) or not value:
            raise InvalidCursorError(f"cursor attribute {attribute!r} must be a non-empty string")
        if required is not None and value != required:
            raise InvalidCursorError(
                f"cursor belongs to a different {attribute} than this query; "
                "start again without a cursor"
            )
    return decoded
