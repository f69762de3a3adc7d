"""The one observability module: Powertools Logger, Tracer and Metrics, shared by every function.

Every function reports as service ``dagtrigger`` in namespace ``dagtrigger``: the template's
alarms select metrics by that dimension, whichever function published them. Each function's
log group (and the ``function_name`` key Powertools adds) tells the functions apart.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

# Health checks, OpenAPI reads and quiet reconciler passes publish no metric; that is expected,
# not worth a warning in every such invocation's log (Powertools' documented suppression).
warnings.filterwarnings("ignore", "No application metrics to publish")

logger = Logger(service="dagtrigger")
# Only the libraries we call through are patched: botocore now, requests when a transport first
# opens an HTTP session (`trace_http_calls`). Tracer's default patches every library X-Ray
# knows, importing each one (sqlite3, requests, httplib ...) on every cold start.
tracer = Tracer(service="dagtrigger", patch_modules=("botocore",))
metrics = Metrics(namespace="dagtrigger", service="dagtrigger")


class MetricName:
    TRIGGERED = "Triggered"
    #: an asset route's event created in Airflow (or found there after an unknown outcome)
    ASSET_EVENT_CREATED = "AssetEventCreated"
    DUPLICATE = "Duplicate"
    ALREADY_TRIGGERED = "AlreadyTriggered"
    REJECTED = "Rejected"
    IGNORED = "Ignored"
    TRIGGER_FAILED = "TriggerFailed"
    #: Airflow or MWAA refused our identity or permissions (an alarm watches it)
    ACCESS_REFUSED = "AccessRefused"
    #: the routes file could not be loaded or refreshed (an alarm watches it)
    ROUTES_INVALID = "RoutesInvalid"
    TRIGGER_RETRY = "TriggerRetry"
    MWAA_LATENCY = "MwaaLatency"
    RECONCILED = "ReconcilerChecked"
    #: an abandoned claim the reconciler took over and started
    CLAIM_RESUMED = "ClaimResumed"
    SCHEDULE_LATENESS = "ScheduleLateness"
    #: a DAG run the reconciler saw reach RUNNING, SUCCESS or FAILED
    RUN_RUNNING = "RunRunning"
    RUN_SUCCESS = "RunSuccess"
    RUN_FAILED = "RunFailed"
    RUN_UNKNOWN = "RunUnknown"  # still open at the reconciler's horizon
    #: a "DAG Run Finished" event EventBridge accepted (a redelivery after a crash counts again)
    RUN_EVENT_PUBLISHED = "RunEventPublished"
    #: a "DAG Run Finished" event EventBridge refused or did not answer: retried next pass
    RUN_EVENT_FAILED = "RunEventFailed"
    #: a FAILED or UNKNOWN run told to the run failure SNS topic, or not (retried next pass)
    RUN_FAILURE_NOTIFIED = "RunFailureNotified"
    RUN_FAILURE_NOTIFY_FAILED = "RunFailureNotifyFailed"
    RECONCILE_DEFERRED = "ReconcileDeferred"  # DAGs left for the next pass: triggers had the budget
    #: once a reconciler pass: seconds since the oldest open trigger (TRIGGERED or RUNNING) was
    #: triggered, 0 when none is open; how far behind run tracking is (records end at the horizon)
    OLDEST_OPEN_TRIGGER_AGE = "OldestOpenTriggerAge"


def trace_http_calls() -> None:
    """Trace calls made with requests (the CLI and Airflow REST transports); called when the
    first HTTP session is created, so a function that never talks HTTP itself never imports
    requests."""
    tracer.patch(modules=("requests",))


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def record_latency(milliseconds: float) -> None:
    metrics.add_metric(
        name=MetricName.MWAA_LATENCY, unit=MetricUnit.Milliseconds, value=milliseconds
    )


def record_lateness(seconds: float) -> None:
    """How late a scheduled fire started its DAG run (never below zero)."""
    metrics.add_metric(
        name=MetricName.SCHEDULE_LATENESS, unit=MetricUnit.Seconds, value=max(0.0, seconds)
    )


def record_oldest_open_age(seconds: float) -> None:
    """Age of the oldest trigger the reconciler still follows (0 when none is open)."""
    metrics.add_metric(
        name=MetricName.OLDEST_OPEN_TRIGGER_AGE, unit=MetricUnit.Seconds, value=max(0.0, seconds)
    )
