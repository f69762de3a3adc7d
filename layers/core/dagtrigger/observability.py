"""The one observability module: Powertools Logger, Tracer and Metrics, shared by every function.

The service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (set in template.yaml Globals).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="dagtrigger")
tracer = Tracer(service="dagtrigger")
metrics = Metrics(namespace="dagtrigger", service="dagtrigger")


class MetricName:
    TRIGGERED = "Triggered"
    DUPLICATE = "Duplicate"
    ALREADY_TRIGGERED = "AlreadyTriggered"
    REJECTED = "Rejected"
    IGNORED = "Ignored"
    TRIGGER_FAILED = "TriggerFailed"
    TRIGGER_RETRY = "TriggerRetry"
    MWAA_LATENCY = "MwaaLatency"
    RECONCILED = "ReconcilerChecked"


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def record_latency(milliseconds: float) -> None:
    metrics.add_metric(
        name=MetricName.MWAA_LATENCY, unit=MetricUnit.Milliseconds, value=milliseconds
    )
