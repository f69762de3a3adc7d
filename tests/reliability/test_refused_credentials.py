"""Refused credentials keep the events, raise the alarm's metric, and are fixed without loss.

MWAA (the emulator) refuses the functions' credentials in each way it can: an expired session
token, a revoked access key, a role whose policy no longer allows the action, and Airflow's own
401 and 403 behind InvokeRestApi. None of those is the event's fault: the event must be kept (its
message left on the queue, its record TRIGGER_FAILED, never REJECTED) and the AccessRefused
metric published for the alarm. Once the credential is fixed, every event starts its run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from devstack.mwaa_emulator import MwaaEmulator
from devstack.reliability import drivers, sqs
from devstack.reliability.accounting import EventFate, ScenarioEvent, ScenarioRow, row
from devstack.reliability.harness import Drain, ReliabilityHarness
from devstack.runner.provision import DUMMY_CREDENTIALS

#: the access key every function of the local stack signs with
FUNCTIONS_KEY = DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]
ACCESS_REFUSED = "AccessRefused"
OBJECTS_PER_REFUSAL = 2
DRAIN_TIMEOUT_SECONDS = 240
REFUSALS: dict[str, Callable[[MwaaEmulator], object]] = {
    "expired credentials (ExpiredTokenException)": lambda mwaa: mwaa.refuse_credentials(
        FUNCTIONS_KEY, "expired"
    ),
    "revoked credentials (UnrecognizedClientException)": lambda mwaa: mwaa.refuse_credentials(
        FUNCTIONS_KEY, "revoked"
    ),
    "permission removed (AccessDeniedException)": lambda mwaa: mwaa.refuse_credentials(
        FUNCTIONS_KEY, "denied"
    ),
    "Airflow 401 through InvokeRestApi": lambda mwaa: mwaa.faults.set(
        "InvokeRestApi", error="RestApiClientException", rest_api_status=401, outage=True
    ),
    "Airflow 403 through InvokeRestApi": lambda mwaa: mwaa.faults.set(
        "InvokeRestApi", error="RestApiClientException", rest_api_status=403, outage=True
    ),
}


@dataclass
class Refusal:
    name: str
    events: list[ScenarioEvent]
    statuses_while_refused: list[str] = field(default_factory=list)
    failed_receives: int = 0
    metric_published: float = 0.0
    fates: list[EventFate] = field(default_factory=list)


@dataclass
class RefusedCredentials:
    refusals: dict[str, Refusal]
    drain: Drain


def fix_everything(mwaa: MwaaEmulator) -> None:
    mwaa.restore_credentials()
    mwaa.faults.clear()


def refuse_and_deliver(harness: ReliabilityHarness, refusal: Refusal) -> None:
    """Put the refusal's objects while it holds; wait until each one's trigger failed."""
    s3 = harness.pool("S3EventsFunction")
    seen_before = len(s3.records)
    published_before = s3.metrics().get(ACCESS_REFUSED, 0.0)
    for event in refusal.events:
        harness.put_object(event.marker, b"region,amount\nnorth,5\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fates = harness.observe(refusal.events, dead_letters=False)
        if all(fate.statuses and fate.statuses != ["RECEIVED"] for fate in fates):
            break
        time.sleep(0.5)
    refusal.statuses_while_refused = [s for fate in fates for s in fate.statuses]
    receipts = sqs.receipts(s3.records[seen_before:])
    refusal.failed_receives = sum(1 for receipt in receipts if receipt.failed)
    refusal.metric_published = s3.metrics().get(ACCESS_REFUSED, 0.0) - published_before


@pytest.fixture(scope="module")
def refused_credentials(
    harness: ReliabilityHarness, fault_matrix: list[ScenarioRow]
) -> RefusedCredentials:
    mwaa = harness.emulator
    bucket = harness.stack.config.source_bucket
    tag = f"{time.time_ns():x}"
    refusals = {
        name: Refusal(
            name,
            [
                drivers.s3_event(bucket, f"sales/refused/{tag}/{index}-{number}.csv")
                for number in range(OBJECTS_PER_REFUSAL)
            ],
        )
        for index, name in enumerate(REFUSALS)
    }
    try:
        for name, refuse in REFUSALS.items():
            fix_everything(mwaa)
            refuse(mwaa)
            refuse_and_deliver(harness, refusals[name])
    finally:
        fix_everything(mwaa)
    fixed = time.monotonic()
    events = [event for refusal in refusals.values() for event in refusal.events]
    drain = harness.wait_for_drain(events, since=fixed, timeout=DRAIN_TIMEOUT_SECONDS, redrive=True)
    for refusal in refusals.values():
        refusal.fates = harness.observe(refusal.events)
        fault_matrix.append(
            row(
                refusal.name,
                refusal.fates,
                drain_seconds=drain.seconds,
                note=f"while refused: {', '.join(refusal.statuses_while_refused)}; "
                f"{refusal.failed_receives} receives kept for a retry; "
                f"AccessRefused published {refusal.metric_published:g}; drain from the fix",
            )
        )
    return RefusedCredentials(refusals, drain)


@pytest.mark.parametrize("refusal_name", list(REFUSALS))
def test_refused_access_keeps_the_events_alarms_and_recovers_after_the_fix(
    refused_credentials: RefusedCredentials, refusal_name: str
) -> None:
    refusal = refused_credentials.refusals[refusal_name]

    # Then while access was refused, each trigger failed for a retry and was never rejected
    assert refusal.statuses_while_refused == ["TRIGGER_FAILED"] * OBJECTS_PER_REFUSAL
    # And its message was left on the queue, and the alarm's metric was published for each
    assert refusal.failed_receives >= OBJECTS_PER_REFUSAL
    assert refusal.metric_published >= OBJECTS_PER_REFUSAL
    # And after the fix every object ran exactly once, its record final
    assert [fate.runs for fate in refusal.fates] == [1] * OBJECTS_PER_REFUSAL
    assert all(fate.settled for fate in refusal.fates)
    assert refused_credentials.drain.seconds is not None
