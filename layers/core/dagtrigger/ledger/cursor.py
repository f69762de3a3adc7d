"""The one pagination cursor: where a history read stopped, as opaque URL-safe base64 of JSON.

A cursor names the index, the partition within it and DynamoDB's LastEvaluatedKey there (None
for the start of the partition), so a query can tell a cursor it issued from any other, and a
read that spans partitions (the day index, one day at a time) resumes where it stopped.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagtrigger.errors import InvalidCursorError

MAX_CURSOR_CHARS = 8192
_VERSION = 1


@dataclass(frozen=True)
class CursorPosition:
    index: str
    partition: str
    #: DynamoDB's ExclusiveStartKey within the partition; None: its first item
    start_key: dict[str, str] | None


def encode_cursor(position: CursorPosition) -> str:
    document = {
        "v": _VERSION,
        "index": position.index,
        "partition": position.partition,
        "key": position.start_key,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(
    cursor: str,
    *,
    index: str,
    partitions: Sequence[str],
    key_attributes: Mapping[str, str | None],
) -> CursorPosition:
    """The position a cursor stands for, if this query (``index`` over ``partitions``) issued it.

    ``key_attributes`` maps each key attribute of the index to the value it must have (the
    partition's attribute: None, checked against the partition) or None (any non-empty string).
    """
    document = _document(cursor)
    if document.get("index") != index:
        raise InvalidCursorError(
            "cursor belongs to a query with other filters; start again without a cursor"
        )
    partition = document.get("partition")
    if partition not in partitions:
        what = "partition" if len(partitions) > 1 else "query"
        raise InvalidCursorError(
            f"cursor belongs to a different {what} than this one (another DAG, source, status "
            "or time range); start again without a cursor"
        )
    start_key = document.get("key")
    if start_key is not None:
        _check_start_key(start_key, key_attributes)
    return CursorPosition(index, str(partition), start_key)


def _document(cursor: Any) -> dict[str, Any]:
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursorError(
            f"cursor must be a non-empty string of at most {MAX_CURSOR_CHARS} characters"
        )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError):
        raise InvalidCursorError(
            "cursor is not one this API issued (not URL-safe base64 of JSON)"
        ) from None
    if not isinstance(document, dict) or document.get("v") != _VERSION:
        raise InvalidCursorError("cursor is not one this API issued")
    return document


def _check_start_key(start_key: Any, key_attributes: Mapping[str, str | None]) -> None:
    if not isinstance(start_key, dict) or set(start_key) != set(key_attributes):
        raise InvalidCursorError(
            "cursor does not belong to this query (it names other key attributes); "
            "start again without a cursor"
        )
    for attribute, required in key_attributes.items():
        value = start_key[attribute]
        if not isinstance(value, str) or not value:
            raise InvalidCursorError(f"cursor attribute {attribute!r} must be a non-empty string")
        if required is not None and value != required:
            raise InvalidCursorError(
                f"cursor belongs to a different {attribute} than this query; "
                "start again without a cursor"
            )
