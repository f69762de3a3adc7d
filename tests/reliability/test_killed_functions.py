"""A function killed mid-trigger (process exit) still ends with exactly one run.

For each source (an S3 object, a schedule fire, a signed webhook) and each kill point (after the
claim, after Airflow accepted the run, before the ledger's final write), the function's process
exits at that point. Nothing else is done by the test: recovery is the system's own, the queue's
redelivery (S3), Lambda's asynchronous retries (schedules), the sender's retry of a failed
delivery (webhooks), and the reconciler's takeover of a claim whose lease ran out.

The nine cases run together (the three sources side by side, one kill point after the other),
then all recover side by side; each test checks its own case.
"""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests

from devstack.reliability import drivers
from devstack.reliability.accounting import EventFate, ScenarioEvent, ScenarioRow, row
from devstack.reliability.harness import Drain, ReliabilityHarness
from devstack.reliability.kill_points import KillPoint
from devstack.runner.invoke import InvocationResult

SOURCES = ("s3", "schedule", "webhook")
KILL_WAIT_SECONDS = 60
DRAIN_TIMEOUT_SECONDS = 300
_FUNCTION = {"s3": "S3EventsFunction", "schedule": "SchedulesFunction", "webhook": "ApiFunction"}


@dataclass
class KillCase:
    source: str
    point: KillPoint
    event: ScenarioEvent
    killed: InvocationResult | None = None
    recovery: str = ""


@dataclass
class KillMatrix:
    cases: dict[tuple[str, KillPoint], KillCase]
    fates: dict[tuple[str, KillPoint], EventFate]
    drain: Drain


def kill_and_deliver(harness: ReliabilityHarness, case: KillCase, secret: str) -> None:
    """Deliver the case's event with its kill point armed; wait until the process died."""
    marker = case.event.marker
    plan = harness.pool(_FUNCTION[case.source]).arm_kill(
        case.point, when=lambda event: marker in json.dumps(event)
    )
    if case.source == "s3":
        harness.put_object(marker, b"region,amount\nsouth,2\n")
        case.recovery = "SQS redelivery or the reconciler's takeover"
    elif case.source == "schedule":
        scheduled = datetime.strptime(marker, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        firing = harness.runner.fire_schedule(drivers.SCHEDULE_NAME, scheduled)
        case.recovery = f"{len(firing.attempts) - 1} async retries, then the reconciler"
    else:
        body = drivers.github_push(marker)
        headers = drivers.github_headers(body, secret=secret, delivery_id=f"kill-{marker[:12]}")
        url = harness.runner.http_api_url.rstrip("/") + drivers.WEBHOOK_PATH
        first = requests.post(url, data=body, headers=headers, timeout=60)
        # A sender retries a delivery that failed with a 5xx (GitHub's "redeliver").
        retry = requests.post(url, data=body, headers=headers, timeout=60)
        case.recovery = f"answered {first.status_code}, retried: {retry.status_code}"
    case.killed = plan.wait(KILL_WAIT_SECONDS)


def case_for(harness: ReliabilityHarness, source: str, point: KillPoint, tag: str) -> KillCase:
    if source == "s3":
        key = f"sales/killed/{point}/{tag}.csv"
        return KillCase(source, point, drivers.s3_event(harness.stack.config.source_bucket, key))
    if source == "schedule":
        # A distinct time in the past: one run per scheduled time, none in the future.
        scheduled = datetime.now(UTC).replace(microsecond=0) - timedelta(
            days=30, seconds=random.randrange(30 * 86400)
        )
        schedule = harness.runner.template.function("SchedulesFunction").schedules
        arn = next(s.arn for s in schedule if s.name == drivers.SCHEDULE_NAME)
        return KillCase(source, point, drivers.schedule_event(arn, scheduled))
    return KillCase(source, point, drivers.webhook_event(f"{tag}{point}".ljust(40, "0")[:40]))


@pytest.fixture(scope="module")
def kill_matrix(
    harness: ReliabilityHarness, github_secret: str, fault_matrix: list[ScenarioRow]
) -> KillMatrix:
    tag = f"{time.time_ns():x}"
    cases = {
        (source, point): case_for(harness, source, point, tag)
        for source in SOURCES
        for point in KillPoint
    }
    started = time.monotonic()

    def deliver_each(source: str) -> None:
        for point in KillPoint:
            kill_and_deliver(harness, cases[(source, point)], github_secret)

    with ThreadPoolExecutor(max_workers=len(SOURCES)) as sources:
        for delivered in [sources.submit(deliver_each, source) for source in SOURCES]:
            delivered.result()
    events = [case.event for case in cases.values()]
    drain = harness.wait_for_drain(events, since=started, timeout=DRAIN_TIMEOUT_SECONDS)
    observed = dict(zip(cases, harness.observe(events), strict=True))
    for key, case in cases.items():
        fault_matrix.append(
            row(
                f"{case.source} function killed {case.point.replace('_', ' ')}",
                [observed[key]],
                drain_seconds=drain.seconds,
                note=f"recovered by: {case.recovery}",
            )
        )
    return KillMatrix(cases, observed, drain)


@pytest.mark.parametrize("point", list(KillPoint), ids=str)
@pytest.mark.parametrize("source", SOURCES)
def test_a_function_killed_mid_trigger_ends_with_exactly_one_run(
    kill_matrix: KillMatrix, source: str, point: KillPoint
) -> None:
    case = kill_matrix.cases[(source, point)]
    fate = kill_matrix.fates[(source, point)]

    # Given the function's process exited at the kill point
    assert case.killed is not None
    assert case.killed.error is not None
    assert case.killed.error["errorType"] == "Runtime.ExitError"
    assert "kill point" in case.killed.error["errorMessage"]

    # Then the event ended as exactly one run, whose record reached the run's final state
    assert fate.runs == 1, f"{fate.runs} runs for {case.event}"
    assert fate.statuses == ["SUCCESS"], fate.statuses
    assert kill_matrix.drain.seconds is not None, "the killed triggers did not all settle"
