"""Converting between ledger records (plain Python) and DynamoDB items, with size caps.

Times are written as ISO-8601 UTC with microseconds and a ``Z``, so text order is time order.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

#: longest stored text of a human message (reason, error, note); an item stays far below 400 KB
MAX_MESSAGE_CHARS = 2000
MAX_SOURCE_REF_BYTES = 8192
_ELLIPSIS = "…"
_DESERIALIZER = TypeDeserializer()


def cap_text(text: str, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max_chars - len(_ELLIPSIS)] + _ELLIPSIS


def compact_json(value: Any) -> str:
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
    )


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_conf(conf: dict[str, Any] | None, max_bytes: int) -> dict[str, Any]:
    """Attributes holding ``conf``: compact JSON, or a marker and digest when it is too large."""
    if conf is None:
        return {}
    try:
        text = compact_json(conf)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"NewTrigger.conf is not JSON serialisable: {exc}") from None
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return {"conf": text}
    return {
        "conf_truncated": True,
        "conf_bytes": len(data),
        "conf_sha256": hashlib.sha256(data).hexdigest(),
    }


def encode_source_ref(source_ref: dict[str, Any]) -> dict[str, Any]:
    """The source facts as a DynamoDB map (numbers as Decimal), or a digest when too large."""
    try:
        text = compact_json(source_ref)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"NewTrigger.source_ref is not JSON serialisable: {exc}") from None
    data = text.encode("utf-8")
    if len(data) > MAX_SOURCE_REF_BYTES:
        return {"truncated": True, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    decoded: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return decoded


def to_python(value: Any) -> Any:
    """Decimals become int or float, recursively (what boto3's resource layer hands back)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: to_python(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_python(item) for item in value]
    if isinstance(value, set):
        return {to_python(item) for item in value}
    return value


def from_low_level(item: dict[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB JSON (as in a ConditionalCheckFailed error) as resource-style values."""
    return {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}


def to_record(item: dict[str, Any], partition_key: str) -> dict[str, Any]:
    """A stored item as callers see it: plain numbers, ``conf`` parsed back into a dict."""
    record = to_python(item)
    record.pop(partition_key, None)
    if isinstance(record.get("conf"), str):
        record["conf"] = json.loads(record["conf"])
    return record


def require_aware(moment: datetime, what: str) -> datetime:
    """Refuse naive datetimes: a ledger time must name its time zone to be comparable."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive datetime {moment.isoformat()})")
    return moment


def to_timestamp(moment: datetime, what: str = "time") -> str:
    """``2026-11-21T02:00:00.000000Z``: fixed width, so text order is time order."""
    return require_aware(moment, what).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_day(moment: datetime) -> str:
    return require_aware(moment, "time").astimezone(UTC).strftime("%Y-%m-%d")


def to_epoch_seconds(moment: datetime) -> int:
    return int(require_aware(moment, "time").timestamp())
