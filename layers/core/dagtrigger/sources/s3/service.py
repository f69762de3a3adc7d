"""The S3 path: one SQS message holding an ``Object Created`` event becomes zero or more DAG runs.

Per object: match routes, render each route's conf, then claim-trigger-record through
``execute_trigger``. Permanent problems end as REJECTED records and the message is acknowledged;
a trigger that outlasts its retry budget raises, so SQS delivers the message again and finally
moves it to the dead-letter queue. Other S3 events (an object removed, restored, expired ...)
start nothing and are recorded as IGNORED with their event name, as unrouted objects are; the
``s3:TestEvent`` S3 sends when a notification is configured is only logged. A backfill's event
(``dagtrigger backfill``: an object that already existed) takes this path too, as a redelivery of
the object's own event wherever the history knows one (``_identified_per_route``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dagtrigger import ids
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import RejectedError, TriggerFailedError
from dagtrigger.ledger import NewTrigger, SourceType, TriggerStatus
from dagtrigger.observability import logger
from dagtrigger.routes.model import RoutesFile, S3Route
from dagtrigger.sources.s3.file_sets import complete_by_marker, join_file_set
from dagtrigger.sources.s3.parse import S3ObjectEvent, S3OtherEvent, parse_sqs_body
from dagtrigger.sources.s3.plan import s3_route_verdicts, s3_trigger_ids
from dagtrigger.trigger.execute import TriggerOutcome, execute_trigger, record_without_trigger
from dagtrigger.trigger.verdict import RouteVerdict, Verdict

NO_ROUTE = "no_route"
NOT_OBJECT_CREATED = "not_object_created"

# A batch whose every message failed is reported like any other partial failure, so SQS
# counts the receive and the redrive policy can move poison messages to the DLQ.
_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def process_s3_batch(
    event: dict[str, Any], context: LambdaContext, deps: Dependencies
) -> PartialItemFailureResponse:
    """An SQS batch of S3 events; failed messages are reported back for SQS to redeliver."""

    def record_handler(record: SQSRecord) -> None:
        try:
            handle_s3_message(record.body, deps, message_id=record.message_id)
        except Exception:
            # Powertools logs a failed record at DEBUG only: say why at ERROR.
            logger.exception(
                "message failed; SQS delivers it again, then to the dead-letter queue",
                extra={"message_id": record.message_id},
            )
            raise

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=_processor, context=context
    )
    # A failed message comes back after its backoff, not the queue's 15-minute timeout.
    failed = [str(item["itemIdentifier"]) for item in response.get("batchItemFailures", ())]
    if failed and deps.redelivery is not None:
        deps.redelivery.delay_failed(event.get("Records", ()), failed)
    return response


def handle_s3_message(
    body: str, deps: Dependencies, *, message_id: str = ""
) -> list[TriggerOutcome]:
    """Process one SQS message body. Raises only when SQS should deliver the message again."""
    try:
        parsed = parse_sqs_body(body)
    except RejectedError as malformed:
        return [_record_malformed(body, malformed, deps, message_id=message_id)]
    if parsed.is_test_event:
        logger.info(
            "s3:TestEvent acknowledged: the bucket's notification reaches this queue",
            extra={"message_id": message_id, "bucket": parsed.test_event_bucket},
        )
        return []

    outcomes: list[TriggerOutcome] = []
    for other in parsed.others:
        logger.append_keys(source=other.source_key)
        outcome = _record_other_event(other, deps)
        if outcome is not None:
            outcomes.append(outcome)
    failures: list[TriggerFailedError] = []
    for event in parsed.events:
        logger.append_keys(source=event.source_key)
        for outcome_or_failure in _process_object(event, deps):
            if isinstance(outcome_or_failure, TriggerFailedError):
                failures.append(outcome_or_failure)
            else:
                outcomes.append(outcome_or_failure)
    if failures:
        # Routes that did trigger are DUPLICATE on redelivery; only the failed ones retry.
        raise failures[0]
    return outcomes


def _process_object(
    event: S3ObjectEvent, deps: Dependencies
) -> list[TriggerOutcome | TriggerFailedError]:
    routes = deps.routes.get()
    verdicts = s3_route_verdicts(routes, event, conf_max_bytes=deps.settings.conf_max_bytes)
    taken = [verdict for verdict in verdicts if verdict.verdict is not Verdict.NO_MATCH]
    identified = _identified_per_route(event, deps)
    if not taken:
        if not deps.settings.record_ignored:
            logger.info("no route matches the object")
            return []
        no_route = f"no route matches {event.source_key}"
        return [_record(identified(None), None, deps, TriggerStatus.IGNORED, NO_ROUTE, no_route)]

    results: list[TriggerOutcome | TriggerFailedError] = []
    for verdict in taken:
        routed = identified(verdict.route)
        if verdict.verdict in (Verdict.JOIN_SET, Verdict.SET_MARKER):
            results.append(_for_file_set(event, verdict, routes, deps))
            continue
        if verdict.verdict is not Verdict.TRIGGER:  # paused, or its conf refused
            status, code, reason = verdict.recorded_status, verdict.code or "", verdict.reason
            results.append(_record(routed, verdict, deps, status, code, reason))
            continue
        new = _new_trigger(routed, verdict=verdict, conf=verdict.conf)
        environment = routes.environment_ref(str(verdict.environment))
        try:
            results.append(execute_trigger(new, environment, deps))
        except TriggerFailedError as failed:
            results.append(failed)
    return results


def _for_file_set(
    event: S3ObjectEvent, verdict: RouteVerdict, routes: RoutesFile, deps: Dependencies
) -> TriggerOutcome | TriggerFailedError:
    """The object joins its set, or as the set's marker completes it."""
    route = routes.find_route(str(verdict.route))
    if not isinstance(route, S3Route) or verdict.file_set is None:
        raise ValueError(f"verdict {verdict.verdict} names no file-set route")
    try:
        if verdict.verdict is Verdict.SET_MARKER:
            return complete_by_marker(event, route, verdict.file_set, deps)
        return join_file_set(event, route, verdict.file_set, deps)
    except TriggerFailedError as failed:
        return failed


def _identified_per_route(
    event: S3ObjectEvent, deps: Dependencies
) -> Callable[[str | None], S3ObjectEvent]:
    """``event`` as each route (None: no route) identifies it: the event itself, except for a
    backfill of an object in an unversioned bucket.

    There the identity is etag + sequencer, and a listing knows no sequencer, so the backfill
    would get another trigger id than the object's own event and start a second run. It takes
    the sequencer of the object's own record on that route instead (the newest with the same
    etag, from the object's history), becoming a redelivery of that event: the ledger decides
    as for any redelivery (a run started: duplicate; failed: retried with its recorded run id).
    An object no record of that route knows (it landed unrouted, or before the deployment)
    keeps the backfill's own identity, which a rerun of the backfill repeats.
    """
    if not event.backfill or event.versioned:
        return lambda route: event
    sequencers = _recorded_sequencers(event, deps)

    def identified(route: str | None) -> S3ObjectEvent:
        sequencer = sequencers.get(route)
        if sequencer is None:
            return event
        logger.info(
            "backfill of an object its own event recorded: a redelivery of that event",
            extra={"route": route, "sequencer": sequencer},
        )
        return replace(event, sequencer=sequencer)

    return identified


def _recorded_sequencers(event: S3ObjectEvent, deps: Dependencies) -> dict[str | None, str]:
    """Route -> the sequencer of the object's newest unversioned record with ``event``'s etag."""
    found: dict[str | None, str] = {}
    cursor: str | None = None
    while True:
        page = deps.ledger.query_by_source(event.source_key, limit=100, cursor=cursor)
        for record in page.items:  # newest first
            ref = record.get("source_ref") or {}
            route = record.get("route")
            same_content = _bare_etag(ref.get("etag")) == _bare_etag(event.etag)
            unversioned = ref.get("version_id") in (None, "null")
            if route not in found and ref.get("sequencer") and same_content and unversioned:
                found[route] = str(ref["sequencer"])
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def _bare_etag(etag: object) -> str:
    return str(etag or "").strip('"')


def _record_other_event(event: S3OtherEvent, deps: Dependencies) -> TriggerOutcome | None:
    """An event that is not Object Created starts nothing: recorded IGNORED, once per event."""
    reason = (
        f"S3 event {event.description} is not Object Created: only created objects start DAG runs"
    )
    if not deps.settings.record_ignored:
        logger.info("S3 event ignored", extra={"event_name": event.event_name, "reason": reason})
        return None
    new = NewTrigger(
        trigger_id=ids.trigger_id(event.identity, ""),
        source_type=SourceType.S3,
        source_key=event.source_key,
        source_identity=event.identity,
        source_ref={
            "bucket": event.bucket,
            "key": event.key,
            "version_id": event.version_id,
            "sequencer": event.sequencer,
            "event_name": event.event_name,
            "details": list(event.details),
            "format": event.source_format,
        },
        event_time=event.event_time,
    )
    return record_without_trigger(
        new, deps, status=TriggerStatus.IGNORED, code=NOT_OBJECT_CREATED, message=reason
    )


def _record(
    event: S3ObjectEvent,
    verdict: RouteVerdict | None,
    deps: Dependencies,
    status: TriggerStatus,
    code: str,
    message: str,
) -> TriggerOutcome:
    """Record an object that starts no run (no route, a paused route, a conf that fails)."""
    new = _new_trigger(event, verdict=verdict, conf=None)
    return record_without_trigger(new, deps, status=status, code=code, message=message)


def _new_trigger(
    event: S3ObjectEvent,
    *,
    verdict: RouteVerdict | None,
    conf: dict[str, object] | None,
) -> NewTrigger:
    route_name = verdict.route if verdict else None
    trigger_id, _ = s3_trigger_ids(event, route_name)
    return NewTrigger(
        trigger_id=trigger_id,
        source_type=SourceType.S3,
        source_key=event.source_key,
        source_identity=event.identity,
        source_ref=event.source_ref,
        route=route_name,
        environment=verdict.environment if verdict else None,
        dag_id=verdict.dag_id if verdict else None,
        dag_run_id=verdict.dag_run_id if verdict else None,
        asset_uri=verdict.asset if verdict else None,
        conf=conf,
        event_time=event.event_time,
    )


def _record_malformed(
    body: str, malformed: RejectedError, deps: Dependencies, *, message_id: str
) -> TriggerOutcome:
    digest = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
    new = NewTrigger(
        trigger_id=ids.trigger_id(f"malformed-sqs-body:{digest}", ""),
        source_type=SourceType.S3,
        source_key=f"sqs-message:{message_id or digest[:16]}",
        source_identity=f"sha256:{digest}",
        source_ref={
            "message_id": message_id,
            "body_sha256": digest,
            # a lone surrogate would stop the record from being written at all
            "body_prefix": body[:512].encode("utf-8", "backslashreplace").decode("utf-8"),
        },
    )
    return record_without_trigger(
        new, deps, status=TriggerStatus.REJECTED, code=malformed.code, message=str(malformed)
    )
