"""File sets: objects of a ``set:`` route join the set their group names, and each complete set
starts one DAG run whose conf lists its objects.

A set completes when its marker arrives (its folder is listed then, so parts whose events are
still on their way are in it), when it holds ``count`` (or ``max_objects``) objects, or, by the
reconciler's pass (``sweep_file_sets``), when no object joined for ``quiet_seconds`` or
``max_wait_seconds`` passed since the first. The ledger's conditional writes make each of these
one completion, and whoever completes the set starts its run (``start_set_run``); a completer
that dies leaves the set to the next pass. An object arriving after its set completed is
recorded LATE, and with ``late: new_set`` also opens the group's next set.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from dagtrigger import ids
from dagtrigger.conf import compact_json
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import NotFoundError, TransientTriggerError, TriggerFailedError
from dagtrigger.ledger import NewTrigger, SourceType, TriggerStatus
from dagtrigger.ledger.file_sets import (
    CompletionReason,
    FileSetLedger,
    FileSetRef,
    JoinOutcome,
    SetMember,
)
from dagtrigger.observability import logger
from dagtrigger.routes.model import FileSetConfig, S3Route
from dagtrigger.sources.s3.match import check_s3_route, is_folder_placeholder
from dagtrigger.sources.s3.parse import S3ObjectEvent
from dagtrigger.sources.s3.plan import is_set_marker, render_set_group, set_member_trigger_id
from dagtrigger.trigger.execute import (
    TriggerDisposition,
    TriggerOutcome,
    execute_trigger,
    record_without_trigger,
)

#: how long the completer waits for the set's index to show every member it counted
MEMBER_LIST_WAIT_SECONDS: Final = 10.0
#: a completed set whose run is not recorded this long after completion is the sweep's to start
#: (its completer died, or Airflow refused it for longer than the trigger budget)
ORPHAN_GRACE: Final = timedelta(seconds=30)
#: the group's later sets a late object may try before giving up (``late: new_set``)
MAX_GENERATIONS_TRIED: Final = 20


def join_file_set(
    event: S3ObjectEvent, route: S3Route, group: str, deps: Dependencies
) -> TriggerOutcome:
    """The object joins its set (or is recorded LATE); a set it completes starts its run."""
    config = _config(route)
    member = _member(event, route)
    generation = 0
    for _ in range(MAX_GENERATIONS_TRIED):
        file_set = file_set_ref(route, group, generation)
        joined = _ledger(deps).join(file_set, member)
        if joined.outcome is JoinOutcome.DUPLICATE:
            logger.info("object already recorded for its set: a redelivery")
            return TriggerOutcome(member.trigger_id, TriggerDisposition.DUPLICATE, joined.record)
        if joined.outcome is JoinOutcome.JOINED:
            _complete_when_full(joined.record, file_set, config, deps)
            record = {"trigger_id": member.trigger_id, "set_id": file_set.set_id}
            return TriggerOutcome(member.trigger_id, TriggerDisposition.JOINED_SET, record)
        missed = joined.record
        if missed.get("status") == TriggerStatus.SET_OPEN:
            _complete_when_full(missed, file_set, config, deps)  # full, not yet marked complete
        if config.late == "record":
            return _record_late(member, file_set, missed, deps)
        generation = int(missed.get("generation") or generation) + 1
    raise TriggerFailedError(
        f"{MAX_GENERATIONS_TRIED} sets of group {group!r} were complete when the object arrived",
        attempts=0,
    )


def complete_by_marker(
    event: S3ObjectEvent, route: S3Route, group: str, deps: Dependencies
) -> TriggerOutcome:
    """The marker's folder is listed, every object there of the same group joins the set, and
    the set completes (reason ``marker``) and starts its run. The marker is recorded, not a
    member; a redelivered marker finds the set complete and starts nothing."""
    file_set = file_set_ref(route, group, 0)
    ledger = _ledger(deps)
    listed = [_member(found, route) for found in _listed_members(event, route, group, deps)]
    ledger.join_listed(file_set, listed)
    completed = ledger.complete(file_set.set_id, CompletionReason.MARKER)
    if completed is not None:
        logger.info(
            "set completed by its marker",
            extra={"set_id": file_set.set_id, "objects": completed.get("member_count")},
        )
        start_set_run(completed, deps)
    marker = _member(event, route)
    created, record = ledger.record_outside_set(
        marker,
        file_set=file_set,
        status=TriggerStatus.IN_SET,
        fields={
            "set_marker_of": file_set.set_id,
            "reason": f"the marker of set {file_set.set_id} ({group})",
        },
    )
    disposition = TriggerDisposition.JOINED_SET if created else TriggerDisposition.DUPLICATE
    return TriggerOutcome(marker.trigger_id, disposition, record)


def start_set_run(completed: dict[str, Any], deps: Dependencies) -> TriggerOutcome | None:
    """Start the run of a completed set (once: the run has its own claim and run id) and take
    the set out of the sweep. None when its route is gone (logged; the set stays for an
    operator) or Airflow did not take the run in time (the next pass tries again)."""
    set_id = str(completed["trigger_id"])
    routes = deps.routes.get()
    route = routes.find_route(str(completed.get("route")))
    if not isinstance(route, S3Route) or route.file_set is None:
        logger.error(
            "a completed set's route is no longer a set route: its run is not started",
            extra={"set_id": set_id, "route": completed.get("route")},
        )
        return None
    try:
        members = _all_members(completed, deps)
    except TransientTriggerError as lagging:
        logger.warning(str(lagging), extra={"set_id": set_id})
        return None
    new = _run_trigger(completed, members, route, deps)
    if new.conf is None:
        outcome = record_without_trigger(
            new,
            deps,
            status=TriggerStatus.REJECTED,
            code="conf_too_large",
            message=(
                f"the list of the set's {len(members)} objects makes a conf over "
                f"{deps.settings.conf_max_bytes} bytes: give the route a set.manifest location"
            ),
        )
    else:
        environment = routes.environment_ref(route.environment)
        try:
            outcome = execute_trigger(new, environment, deps)
        except TriggerFailedError as failed:
            logger.error(
                "the set's run was not started: the next reconciler pass tries again",
                extra={"set_id": set_id, "reason": failed.message},
            )
            return None
    _ledger(deps).record_run(
        set_id, run_trigger_id=new.trigger_id, run_status=str(outcome.record.get("status"))
    )
    return outcome


@dataclass
class SweepSummary:
    sets_completed: int = 0
    set_runs_started: int = 0
    sets_open: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sweep_file_sets(
    deps: Dependencies, *, budget_seconds: float, clock: Callable[[], float] = time.monotonic
) -> SweepSummary:
    """The reconciler's pass over sets in progress: complete those whose quiet time or longest
    wait has passed (or that are full), and start the runs completers left unstarted."""
    deadline = clock() + budget_seconds
    summary = SweepSummary()
    routes = deps.routes.get()
    now = deps.clock()
    ledger = _ledger(deps)
    for record in ledger.sets_in_progress():
        if clock() >= deadline:
            break
        set_id = str(record["trigger_id"])
        if record.get("status") == TriggerStatus.SET_COMPLETE:
            completed_at = datetime.fromisoformat(str(record.get("completed_at")))
            if now - completed_at >= ORPHAN_GRACE and start_set_run(record, deps) is not None:
                summary.set_runs_started += 1
            continue
        summary.sets_open += 1
        route = routes.find_route(str(record.get("route")))
        if not isinstance(route, S3Route) or route.file_set is None:
            continue
        reason = _due_completion(record, route.file_set, now)
        if reason is None:
            continue
        completed = ledger.complete(set_id, reason)
        if completed is not None:
            summary.sets_completed += 1
            logger.info(
                "set completed by the reconciler", extra={"set_id": set_id, "reason": str(reason)}
            )
            if start_set_run(completed, deps) is not None:
                summary.set_runs_started += 1
    return summary


@dataclass(frozen=True)
class FileSetDescription:
    """A set as the API shows it: its record, its members and its run's record (if any)."""

    record: dict[str, Any]
    members: list[dict[str, Any]]
    run: dict[str, Any] | None


def describe_file_set(set_id: str, deps: Dependencies) -> FileSetDescription:
    """The set, its members (oldest first) and its run; ``NotFoundError`` if there is none."""
    ledger = _ledger(deps)
    record = ledger.get(set_id)
    if record is None:
        raise NotFoundError(f"no file set with id {set_id!r}")
    run_id = record.get("run_trigger_id")
    run = deps.ledger.get(str(run_id)) if run_id else None
    return FileSetDescription(record=record, members=ledger.members(set_id), run=run)


def file_set_ref(route: S3Route, group: str, generation: int) -> FileSetRef:
    config = _config(route)
    return FileSetRef(
        set_id=ids.file_set_id(route.name, group, generation),
        route=route.name,
        group=group,
        generation=generation,
        environment=route.environment,
        dag_id=str(route.dag_id),
        limit=min(config.count or config.max_objects, config.max_objects),
    )


# ---------------------------------------------------------------------------------- internals


def _config(route: S3Route) -> FileSetConfig:
    if route.file_set is None:
        raise ValueError(f"route {route.name} has no set")
    return route.file_set


def _ledger(deps: Dependencies) -> FileSetLedger:
    if deps.file_sets is None:
        raise RuntimeError("these dependencies were built without the file-set ledger")
    return deps.file_sets


def _member(event: S3ObjectEvent, route: S3Route) -> SetMember:
    return SetMember(
        trigger_id=set_member_trigger_id(route.name, event.bucket, event.key, event.etag),
        source_key=event.source_key,
        source_identity=ids.set_member_identity(event.bucket, event.key, event.etag),
        source_ref=event.source_ref,
        size=event.size or 0,
        event_time=event.event_time,
    )


def _complete_when_full(
    record: dict[str, Any], file_set: FileSetRef, config: FileSetConfig, deps: Dependencies
) -> None:
    if int(record.get("member_count") or 0) < file_set.limit:
        return
    reason = (
        CompletionReason.COUNT
        if config.count is not None and config.count <= config.max_objects
        else CompletionReason.MAX_OBJECTS
    )
    completed = _ledger(deps).complete(file_set.set_id, reason, at_least=file_set.limit)
    if completed is not None:
        logger.info("set completed", extra={"set_id": file_set.set_id, "reason": str(reason)})
        start_set_run(completed, deps)


def _record_late(
    member: SetMember, file_set: FileSetRef, missed: dict[str, Any], deps: Dependencies
) -> TriggerOutcome:
    created, record = _ledger(deps).record_outside_set(
        member,
        file_set=file_set,
        status=TriggerStatus.LATE,
        fields={
            "missed_set_id": file_set.set_id,
            "reason": (
                f"arrived after set {file_set.set_id} ({file_set.group}) completed "
                f"({missed.get('completion_reason') or 'full'}, "
                f"{missed.get('member_count')} objects)"
            ),
        },
    )
    if not created:
        return TriggerOutcome(member.trigger_id, TriggerDisposition.DUPLICATE, record)
    logger.warning(
        "object arrived after its set completed: recorded LATE",
        extra={"missed_set_id": file_set.set_id},
    )
    return TriggerOutcome(member.trigger_id, TriggerDisposition.LATE, record)


def _listed_members(
    marker: S3ObjectEvent, route: S3Route, group: str, deps: Dependencies
) -> list[S3ObjectEvent]:
    """The objects of the marker's folder that the route takes into the same group."""
    folder = marker.key.rpartition("/")[0]
    prefix = f"{folder}/" if folder else ""
    limit = _config(route).max_objects
    found: list[S3ObjectEvent] = []
    pages = (
        deps.s3_client()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=marker.bucket, Prefix=prefix, Delimiter="/")
    )
    for page in pages:
        for item in page.get("Contents", ()):
            listed = replace(
                marker,
                key=str(item["Key"]),
                size=int(item.get("Size") or 0),
                etag=str(item.get("ETag") or "").strip('"'),
                version_id=None,
                sequencer=None,
                event_time=item["LastModified"],
                event_name="ObjectCreated:Listed",
            )
            if is_folder_placeholder(listed) or is_set_marker(route, listed):
                continue
            check = check_s3_route(route, listed)
            if check.matches and render_set_group(route, listed, check.groups) == group:
                found.append(listed)
            if len(found) > limit:  # the set takes max_objects; the rest are late
                return found
    return found


def _all_members(completed: dict[str, Any], deps: Dependencies) -> list[dict[str, Any]]:
    """Every member of the completed set: the index may lag the last joins by a moment."""
    expected = int(completed.get("member_count") or 0)
    deadline = time.monotonic() + MEMBER_LIST_WAIT_SECONDS
    while True:
        members = _ledger(deps).members(str(completed["trigger_id"]))
        if len(members) >= expected:
            return members
        if time.monotonic() >= deadline:
            raise TransientTriggerError(
                f"the set's index shows {len(members)} of its {expected} members after "
                f"{MEMBER_LIST_WAIT_SECONDS:g} s: the next reconciler pass starts its run"
            )
        time.sleep(0.2)


def _run_trigger(
    completed: dict[str, Any],
    members: list[dict[str, Any]],
    route: S3Route,
    deps: Dependencies,
) -> NewTrigger:
    """The set's run: its conf lists the objects (or, over the conf cap, names a manifest);
    ``conf`` None when the list is too large and the route has no manifest location."""
    set_id = str(completed["trigger_id"])
    group = str(completed.get("set_group"))
    objects = sorted(
        (
            {
                "bucket": member["source_ref"].get("bucket"),
                "key": member["source_ref"].get("key"),
                "size": member["source_ref"].get("size"),
                "etag": member["source_ref"].get("etag"),
            }
            for member in members
        ),
        key=lambda obj: str(obj["key"]),
    )
    about = {
        "id": set_id,
        "route": route.name,
        "group": group,
        "completion": completed.get("completion_reason"),
        "object_count": len(objects),
        "total_size": sum(int(obj["size"] or 0) for obj in objects),
        "first_object_at": completed.get("first_member_at"),
        "completed_at": completed.get("completed_at"),
    }
    conf: dict[str, Any] | None = {"set": about, "objects": objects}
    if len(compact_json(conf).encode("utf-8")) > deps.settings.conf_max_bytes:
        conf = _with_manifest(about, objects, route, deps)
    completed_at = datetime.fromisoformat(str(completed.get("completed_at")))
    run_trigger_id = ids.trigger_id(f"file-set-run:{set_id}", route.name)
    return NewTrigger(
        trigger_id=run_trigger_id,
        source_type=SourceType.S3,
        source_key=str(completed.get("source_key")),
        source_identity=f"file-set:{set_id}",
        source_ref={
            "set_id": set_id,
            "group": group,
            "completion": completed.get("completion_reason"),
            "object_count": len(objects),
        },
        route=route.name,
        environment=route.environment,
        dag_id=route.dag_id,
        dag_run_id=ids.dag_run_id("set", group, completed_at, run_trigger_id),
        conf=conf,
        event_time=completed_at,
    )


def _with_manifest(
    about: dict[str, Any], objects: list[dict[str, Any]], route: S3Route, deps: Dependencies
) -> dict[str, Any] | None:
    """Write the object list to the route's manifest location; the conf names it instead."""
    location = _config(route).manifest_location
    if location is None:
        return None
    bucket, prefix = location
    key = f"{prefix}{about['id']}.json"
    body = json.dumps({"set": about, "objects": objects}, ensure_ascii=False).encode("utf-8")
    # The same set always writes the same manifest: a retry rewrites identical content.
    deps.s3_client().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return {"set": about, "manifest": f"s3://{bucket}/{key}"}


def _due_completion(
    record: dict[str, Any], config: FileSetConfig, now: datetime
) -> CompletionReason | None:
    """Why an open set is complete now, by time or by size, or None."""
    count = int(record.get("member_count") or 0)
    limit = min(config.count or config.max_objects, config.max_objects)
    if count >= limit:
        return CompletionReason.COUNT if config.count == limit else CompletionReason.MAX_OBJECTS
    first = datetime.fromisoformat(str(record.get("first_member_at")))
    last = datetime.fromisoformat(str(record.get("last_member_at")))
    if config.max_wait_seconds is not None and now >= first + timedelta(
        seconds=config.max_wait_seconds
    ):
        return CompletionReason.MAX_WAIT
    if config.quiet_seconds is not None and now >= last + timedelta(seconds=config.quiet_seconds):
        return CompletionReason.QUIET
    return None
