"""What an S3 route's conf template can use, taken from one ``Object Created`` event."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from dagtrigger.clock import iso_utc
from dagtrigger.sources.s3.parse import S3ObjectEvent


def s3_template_variables(
    event: S3ObjectEvent, route_name: str, match_groups: Mapping[str, str | None]
) -> dict[str, Any]:
    """The variables an S3 route's conf template can use.

    For ``s3://landing/sales/2026-11-21.csv``: ``bucket`` landing, ``key`` sales/2026-11-21.csv,
    ``dirname`` sales, ``basename`` 2026-11-21.csv, ``stem`` 2026-11-21, ``suffix`` .csv, plus
    ``size``, ``etag``, ``version_id``, ``sequencer``, ``event_time`` (ISO 8601, UTC),
    ``region``, ``route`` (the route's name) and ``match`` (the regex's named groups).
    """
    dirname, _, basename = event.key.rpartition("/")
    stem, suffix = _split_suffix(basename)
    return {
        "bucket": event.bucket,
        "key": event.key,
        "dirname": dirname,
        "basename": basename,
        "stem": stem,
        "suffix": suffix,
        "size": event.size,
        "etag": event.etag,
        "version_id": event.version_id,
        "sequencer": event.sequencer,
        "event_time": iso_utc(event.event_time),
        "region": event.region,
        "route": route_name,
        "match": dict(match_groups),
    }


def _split_suffix(basename: str) -> tuple[str, str]:
    """("report.tar", ".gz") for "report.tar.gz"; a leading dot (".env") is not a suffix."""
    stem, suffix = posixpath.splitext(basename)
    return stem, suffix
