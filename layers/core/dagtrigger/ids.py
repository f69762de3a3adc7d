"""Deterministic identifiers: the same event always gets the same trigger id and DAG run id.

The trigger id keys the ledger record (a redelivery finds it instead of starting again); the
DAG run id carries the same identity into Airflow, which refuses a second run with it even if
the ledger write was lost.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import StringConstraints

from dagtrigger.errors import RejectedError

# --- identifier patterns: the one home of every rule an identifier must pass ---------------
# Strings, for pydantic fields and the HTTP routes' parameters; compiled below where code
# checks a value itself.

#: Airflow's default ``run_id`` pattern (``[scheduler] allowed_run_id_pattern``)
AIRFLOW_RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
#: The longest run id dagtrigger makes, whatever the event. Airflow stores up to 250 characters,
#: but writes ``run_id=<id>`` as one directory name of every task-log path (255 bytes at most on
#: Linux), so a run id near 250 gives a run that Airflow creates and then fails with "File name
#: too long". 96 leaves room for a readable part and keeps the id easy to read and to paste.
MAX_RUN_ID_LENGTH = 96

#: The DAG ids dagtrigger sends: Airflow's ``^[\w.-]+$`` admits a leading "-" and non-ASCII
#: letters; we admit less, so a DAG id never reads as a CLI option and always fits a run id.
DAG_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$"
#: The run ids dagtrigger sends: Airflow's default pattern, no leading "-", at most 250 chars.
DAG_RUN_ID_PATTERN = r"^[A-Za-z0-9_.~:+][A-Za-z0-9_.~:+-]{0,249}$"
#: ``trigger_id()``'s output
TRIGGER_ID_PATTERN = r"^t-[0-9a-f]{32}$"
#: ``file_set_id()``'s output
FILE_SET_ID_PATTERN = r"^s-[0-9a-f]{32}$"
#: route names and environment aliases in the routes file (at most ``NAME_MAX_LENGTH``)
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
NAME_MAX_LENGTH = 64
#: MWAA's own pattern for environment names
MWAA_ENVIRONMENT_NAME_PATTERN = r"^[a-zA-Z][0-9a-zA-Z_-]*$"
#: S3's rules for general purpose bucket names
BUCKET_NAME_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
#: EventBridge Scheduler schedule and schedule group names (the Scheduler API's own rule)
SCHEDULE_NAME_PATTERN = r"^[0-9a-zA-Z_.-]{1,64}$"
SCHEDULE_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:scheduler:[a-z0-9-]+:\d{12}:schedule/"
    r"(?P<group>[0-9a-zA-Z_.-]{1,64})/(?P<name>[0-9a-zA-Z_.-]{1,64})$"
)
ARN_PATTERN = r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+$"
#: an EventBridge event bus name (a custom bus, or "default"); partner buses take no PutEvents
EVENT_BUS_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,256}$"
#: a standard SNS topic's ARN (a FIFO topic would need a message group on every publish)
SNS_TOPIC_ARN_PATTERN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
#: what a caller's idempotency key may hold: 1 to 255 visible ASCII characters
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"

#: Airflow stores an asset's URI and name in 1,500 characters (Airflow 3's ``asset`` table)
ASSET_URI_MAX_CHARS = 1500
#: what an asset URI may hold: Airflow refuses URIs that are not ASCII, and whitespace or
#: control characters in one are always a template's mistake
_ASSET_URI = re.compile(r"^[\x21-\x7e]+$")

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)]
DagId = Annotated[str, StringConstraints(pattern=DAG_ID_PATTERN)]
BucketName = Annotated[str, StringConstraints(pattern=BUCKET_NAME_PATTERN)]
#: an MWAA environment name (MWAA's pattern, 1 to 80 characters)
MwaaEnvironmentName = Annotated[
    str, StringConstraints(min_length=1, max_length=80, pattern=MWAA_ENVIRONMENT_NAME_PATTERN)
]
ScheduleName = Annotated[str, StringConstraints(pattern=SCHEDULE_NAME_PATTERN)]

_DAG_ID = re.compile(DAG_ID_PATTERN)
_DAG_RUN_ID = re.compile(DAG_RUN_ID_PATTERN)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)

_RUN_ID_PREFIX = "dagtrigger"
_SEPARATOR = "__"
_HASH_LENGTH = 12
_MAX_KIND_LENGTH = 32  # keeps room for the readable part whatever the source type
_DISALLOWED = re.compile(r"[^A-Za-z0-9_.~:+-]+")
_REPEATED_UNDERSCORES = re.compile(r"_{2,}")


def file_set_id(route_name: str, group: str, generation: int = 0) -> str:
    """``s-`` and 32 hex digits of SHA-256 over the route, the set's group and its generation
    (the group's next set, after a late object opened one, is generation 1 ...)."""
    canonical = json.dumps(
        ["dagtrigger.file_set.v1", route_name, group, generation],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "s-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def set_member_identity(bucket: str, key: str, etag: str | None) -> str:
    """What makes an object one member of a set: its address and content, so that the object's
    event and a listing of its folder (which knows no sequencer) name the same member."""
    return f"s3://{bucket}/{key}#etag={(etag or '').strip(chr(34))}"


def trigger_id(source_identity: str, route_name: str) -> str:
    """``t-`` and 32 hex digits of SHA-256 over the identity and the route.

    One event fanning out to several routes gets one trigger per route. The two inputs are
    hashed as a JSON array, so no pair of inputs can be spelled like another pair.
    """
    canonical = json.dumps(
        ["dagtrigger.trigger.v1", source_identity, route_name],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "t-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def dag_run_id(source_type: str, readable: str, when: datetime, trigger_id: str) -> str:
    """A readable, time-ordered run id Airflow accepts, unique through the trigger id's hash.

    ``dagtrigger__s3__sales-2026-11-21.csv__20261121T101500Z__1f2e3d4c5b6a``: only characters
    of Airflow's ``^[A-Za-z0-9_.~:+-]+$``, at most ``MAX_RUN_ID_LENGTH`` of them whatever the
    event (an S3 key may be 1,024 bytes). A long readable part is cut, keeping its end, where a
    file name is; the hash never is, so the id stays unique and deterministic.
    """
    moment = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    timestamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(trigger_id.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    kind = _sanitize(source_type)[:_MAX_KIND_LENGTH] or "event"
    head = f"{_RUN_ID_PREFIX}{_SEPARATOR}{kind}{_SEPARATOR}"
    tail = f"{timestamp}{_SEPARATOR}{digest}"
    room = MAX_RUN_ID_LENGTH - len(head) - len(_SEPARATOR) - len(tail)
    label = _sanitize(readable)[-room:].lstrip("_.-")
    return f"{head}{label}{_SEPARATOR}{tail}" if label else f"{head}{tail}"


def run_id_for_retry(
    recorded_run_id: str | None, source_type: str, readable: str, when: datetime, trigger_id: str
) -> str:
    """A retry of a recorded trigger keeps its run id, so Airflow refuses a second run."""
    return recorded_run_id or dag_run_id(source_type, readable, when, trigger_id)


def request_trigger_id(kind: str, caller: str, key: str | None) -> tuple[str, str]:
    """(trigger id, source identity) of a request of ``kind`` by ``caller`` with ``key``.

    The caller's idempotency key names one request of that caller: two callers never share a
    key space. Without a key every request is new (a fresh uuid).
    """
    if key is None:
        identity = f"{kind}:request:{uuid.uuid4()}"
    else:
        identity = json.dumps([kind, caller, key], ensure_ascii=False, separators=(",", ":"))
    return trigger_id(identity, ""), identity


def request_fingerprint(*parts: Any) -> str:
    """SHA-256 of the canonical JSON of what was asked (sorted keys, no spaces): it tells a
    retry of one request from another request that reuses its idempotency key."""
    canonical = json.dumps(
        list(parts), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def is_idempotency_key(key: str) -> bool:
    return bool(_IDEMPOTENCY_KEY.fullmatch(key))


def _sanitize(text: str) -> str:
    """ASCII-fold (``é`` -> ``e``), ``/`` -> ``-``, anything else Airflow refuses -> ``_``."""
    folded = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(char for char in folded if not unicodedata.combining(char))
    replaced = _DISALLOWED.sub("_", ascii_only.replace("/", "-"))
    # "__" separates the run id's parts; keep it out of the parts themselves.
    return _REPEATED_UNDERSCORES.sub("_", replaced).strip("_")


# Strict checks of the ids that reach Airflow, made before any call to it: Airflow's own dag_id
# pattern admits a leading "-" and non-ASCII letters; a dag id that reads like a CLI option,
# or differs from another only in look-alike letters, has no place in a trigger.


def validate_dag_id(dag_id: str) -> str:
    """Return ``dag_id`` unchanged, or raise ``RejectedError('invalid_dag_id')`` saying why."""
    return _allowed(
        dag_id,
        _DAG_ID,
        "dag_id",
        "1-250 ASCII letters, digits, '_', '.' or '-', and must not start with '.' or '-'",
    )


def validate_dag_run_id(dag_run_id: str) -> str:
    """Return ``dag_run_id`` unchanged, or raise ``RejectedError('invalid_dag_run_id')``."""
    return _allowed(
        dag_run_id,
        _DAG_RUN_ID,
        "dag_run_id",
        "1-250 ASCII letters, digits or any of '_.~:+-', and must not start with '-'",
    )


def _allowed(value: str, pattern: re.Pattern[str], name: str, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise RejectedError(
            f"invalid_{name}", f"{name} {value!r} is not allowed: it must be {rule}"
        )
    return value


def mentions_run_id(text: str, dag_run_id: str) -> bool:
    """True when ``text`` names ``dag_run_id`` as a whole token (not inside a longer id)."""
    pattern = rf"(?<![A-Za-z0-9_.~:+-]){re.escape(dag_run_id)}(?![A-Za-z0-9_.~:+-])"
    return re.search(pattern, text) is not None


def asset_uri_problem(uri: str) -> str | None:
    """Why Airflow could not take ``uri`` as an asset's URI or name, or None when it can."""
    if not uri:
        return "is empty"
    if len(uri) > ASSET_URI_MAX_CHARS:
        return f"is {len(uri)} characters, over Airflow's {ASSET_URI_MAX_CHARS}"
    if _ASSET_URI.match(uri) is None:
        return (
            "holds a space, a control character or a character that is not ASCII, which "
            "Airflow refuses in an asset URI (encode a key with the urlencode filter)"
        )
    if uri.lower().startswith("airflow://"):
        return "uses the scheme airflow://, which Airflow reserves"
    return None
