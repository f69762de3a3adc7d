"""The S3 path: one SQS message holding an ``Object Created`` event becomes zero or more DAG runs.

Per object: match routes, render each route's conf, then claim-trigger-record through
``execute_trigger``. Permanent problems end as REJECTED records and the message is acknowledged;
a trigger that outlasts its retry budget raises, so SQS delivers the message again and finally
moves it to the dead-letter queue. Other S3 events (an object removed, restored, expired ...)
start nothing and are recorded as IGNORED with their event name, as unrouted objects are; the
``s3:TestEvent`` S3 sends when a notification is configured is only logged.
"""

from __future__ import annotations

import hashlib
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
from dagtrigger.conf import render_conf
from dagtrigger.dependencies import Dependencies
from dagtrigger.errors import RejectedError, TriggerFailedError
from dagtrigger.ledger import NewTrigger, SourceType, TriggerStatus
from dagtrigger.observability import logger
from dagtrigger.sources.s3.match import RouteMatch, match_s3_routes
from dagtrigger.sources.s3.parse import S3ObjectEvent, S3OtherEvent, parse_sqs_body
from dagtrigger.sources.s3.variables import s3_template_variables
from dagtrigger.trigger.execute import TriggerOutcome, execute_trigger, record_without_trigger

NO_ROUTE = "no_route"
ROUTE_PAUSED = "route_paused"
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
    matches = match_s3_routes(routes, event)
    if not matches:
        if not deps.settings.record_ignored:
            logger.info("no route matches the object")
            return []
        no_route = f"no route matches {event.source_key}"
        return [_record(event, None, deps, TriggerStatus.IGNORED, NO_ROUTE, no_route)]

    results: list[TriggerOutcome | TriggerFailedError] = []
    for match in matches:
        route = match.route
        if match.paused:
            paused = match.paused_reason
            results.append(_record(event, match, deps, TriggerStatus.IGNORED, ROUTE_PAUSED, paused))
            continue
        variables = s3_template_variables(event, route.name, match.groups)
        try:
            conf = render_conf(
                route.conf_spec(),
                variables,
                max_bytes=deps.settings.conf_max_bytes,
                route_name=route.name,
            )
        except RejectedError as rejected:
            status, reason = TriggerStatus.REJECTED, str(rejected)
            results.append(_record(event, match, deps, status, rejected.code, reason))
            continue
        new = _new_trigger(event, match=match, conf=conf)
        environment = routes.environment_ref(route.environment)
        try:
            results.append(execute_trigger(new, environment, deps))
        except TriggerFailedError as failed:
            results.append(failed)
    return results


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
    match: RouteMatch | None,
    deps: Dependencies,
    status: TriggerStatus,
    code: str,
    message: str,
) -> TriggerOutcome:
    """Record an object that starts no run (no route, a paused route, a conf that fails)."""
    new = _new_trigger(event, match=match, conf=None)
    return record_without_trigger(new, deps, status=status, code=code, message=message)


def _new_trigger(
    event: S3ObjectEvent,
    *,
    match: RouteMatch | None,
    conf: dict[str, object] | None,
) -> NewTrigger:
    route = match.route if match else None
    route_name = route.name if route else None
    trigger_id = ids.trigger_id(event.identity, route_name or "")
    return NewTrigger(
        trigger_id=trigger_id,
        source_type=SourceType.S3,
        source_key=event.source_key,
        source_identity=event.identity,
        source_ref={
            "bucket": event.bucket,
            "key": event.key,
            "size": event.size,
            "etag": event.etag,
            "version_id": event.version_id,
            "sequencer": event.sequencer,
            "event_name": event.event_name,
            "format": event.source_format,
        },
        route=route_name,
        environment=route.environment if route else None,
        dag_id=route.dag_id if route else None,
        dag_run_id=ids.dag_run_id("s3", event.key, event.event_time, trigger_id) if route else None,
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
