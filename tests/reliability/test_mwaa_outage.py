"""An MWAA outage longer than the retry budget, while objects keep arriving, loses nothing.

The outage goes through MWAA's failure modes in turn: its own 500 (InternalServerException),
Airflow's 503 behind it (RestApiServerException), throttling (ThrottlingException), and a black
hole (connections that get no SYN-ACK, requests that get no answer). Objects arrive during its
first half. Failed triggers go back to the queue; a message that keeps failing moves to the
dead-letter queue and, once MWAA is back, the operator's redrive (SQS's API) sends it back.
After recovery every object has exactly one run and every record is final.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from devstack.mwaa_emulator import MwaaEmulator
from devstack.reliability import drivers, sqs
from devstack.reliability.accounting import EventFate, ScenarioRow, row
from devstack.reliability.harness import Drain, ReliabilityHarness

#: the phases of the outage, each switched on in turn on the emulator
PHASES: tuple[tuple[str, Callable[[MwaaEmulator], object]], ...] = (
    (
        "MWAA 500",
        lambda mwaa: mwaa.faults.set("InvokeRestApi", error="InternalServerException", outage=True),
    ),
    (
        "Airflow 503",
        lambda mwaa: mwaa.faults.set(
            "InvokeRestApi", error="RestApiServerException", rest_api_status=503, outage=True
        ),
    ),
    (
        "throttling",
        lambda mwaa: mwaa.faults.set("InvokeRestApi", error="ThrottlingException", outage=True),
    ),
    ("black hole", lambda mwaa: mwaa.black_hole(True)),
)
#: the longest a failed item may wait for its retry once the backoff is in place
BACKOFF_BOUND_SECONDS = 60.0
#: a busy queue (after a big scenario) may take a while to hand over a new object
FIRST_RECEIVE_SECONDS = 180.0


@dataclass
class Outage:
    fates: list[EventFate]
    drain: Drain
    outage_seconds: float
    failed_receives: int
    retry_waits: list[float]


def end_outage(mwaa: MwaaEmulator) -> None:
    mwaa.faults.clear()
    mwaa.black_hole(False)


def run_outage(
    harness: ReliabilityHarness,
    *,
    objects: int,
    phase_seconds: float,
    tag: str,
    drain_timeout: float,
) -> Outage:
    mwaa = harness.emulator
    bucket = harness.stack.config.source_bucket
    keys = [f"sales/outage/{tag}/{index:04d}.csv" for index in range(objects)]
    events = [drivers.s3_event(bucket, key) for key in keys]
    s3 = harness.pool("S3EventsFunction")
    seen_before = len(s3.records)
    outage_seconds = phase_seconds * len(PHASES)

    def arrive() -> None:
        # The objects land at a steady pace during the outage's first half.
        pause = outage_seconds / 2 / objects
        for key in keys:
            harness.put_object(key, b"region,amount\neast,3\n")
            time.sleep(pause)

    arrivals = threading.Thread(target=arrive, name="arrivals")
    try:
        for index, (_, begin) in enumerate(PHASES):
            end_outage(mwaa)
            begin(mwaa)
            if index == 0:
                arrivals.start()
            time.sleep(phase_seconds)
    finally:
        end_outage(mwaa)
        if arrivals.ident is not None:
            arrivals.join()
    recovered = time.monotonic()
    drain = harness.wait_for_drain(events, since=recovered, timeout=drain_timeout, redrive=True)
    receipts = sqs.receipts(s3.records[seen_before:])
    return Outage(
        fates=harness.observe(events),
        drain=drain,
        outage_seconds=outage_seconds,
        failed_receives=sum(1 for receipt in receipts if receipt.failed),
        retry_waits=sqs.retry_waits(receipts),
    )


@pytest.mark.parametrize(
    ("objects", "phase_seconds", "drain_timeout"),
    [
        pytest.param(20, 4.0, 300.0, id="20-objects"),
        pytest.param(
            300,
            60.0,
            1500.0,
            id="300-objects",
            marks=[pytest.mark.reliability, pytest.mark.timeout(2400)],
        ),
    ],
)
def test_an_mwaa_outage_longer_than_the_retry_budget_ends_with_one_run_per_object(
    harness: ReliabilityHarness,
    fault_matrix: list[ScenarioRow],
    unique: str,
    objects: int,
    phase_seconds: float,
    drain_timeout: float,
) -> None:
    # Given an outage longer than one trigger's whole retry budget
    assert phase_seconds * len(PHASES) > harness.compression.trigger_budget_seconds

    # When `objects` objects arrive during it, and MWAA comes back
    outage = run_outage(
        harness,
        objects=objects,
        phase_seconds=phase_seconds,
        tag=unique,
        drain_timeout=drain_timeout,
    )
    longest_wait = max(outage.retry_waits, default=0.0)
    fault_matrix.append(
        row(
            f"MWAA outage of {outage.outage_seconds:.0f} s "
            f"({', '.join(name for name, _ in PHASES)}), {objects} objects",
            outage.fates,
            drain_seconds=outage.drain.seconds,
            note=f"{outage.failed_receives} failed receives, longest retry wait "
            f"{longest_wait:.0f} s, {outage.drain.redriven} dead letters redriven; "
            "drain counted from recovery",
        )
    )

    # Then the outage was felt: deliveries failed and went back to the queue
    assert outage.failed_receives > 0
    # And after recovery every object has exactly one run, none is lost, every record is final
    assert [fate.event.marker for fate in outage.fates if fate.runs == 0] == []
    assert [fate.event.marker for fate in outage.fates if fate.runs > 1] == []
    assert outage.drain.seconds is not None, f"not drained within {drain_timeout:.0f} s"
    assert all(fate.settled for fate in outage.fates)
    # And nothing waits in the dead-letter queue any more
    assert sqs.message_count(harness.stack.sqs, harness.s3_dead_letter_url) == 0


@pytest.mark.reliability
def test_a_failed_item_is_retried_after_a_backoff_not_the_visibility_timeout(
    harness: ReliabilityHarness, fault_matrix: list[ScenarioRow], unique: str
) -> None:
    mwaa = harness.emulator
    bucket = harness.stack.config.source_bucket
    key = f"sales/backoff/{unique}.csv"
    event = drivers.s3_event(bucket, key)
    s3 = harness.pool("S3EventsFunction")
    seen_before = len(s3.records)
    with harness.visibility_timeout_of_template() as visibility_timeout:
        # Given the template's visibility timeout and an MWAA that fails every call
        mwaa.faults.set("InvokeRestApi", error="InternalServerException", outage=True)
        try:
            # When an object's trigger fails once, and MWAA recovers right after
            harness.put_object(key, b"region,amount\nwest,4\n")
            first_failure = _wait_for_receipt(
                harness, seen_before, key, failed=True, timeout=FIRST_RECEIVE_SECONDS
            )
        finally:
            mwaa.faults.clear()
        if first_failure is None:
            raise TimeoutError(f"{key} was never received and failed: no outage to retry after")
        retried = _wait_for_receipt(
            harness, seen_before, key, failed=False, timeout=BACKOFF_BOUND_SECONDS + 15
        )
    wait = None if retried is None else retried.received_at - first_failure.finished_at
    fault_matrix.append(
        row(
            f"one failed item, visibility timeout {visibility_timeout} s",
            harness.observe([event]),
            drain_seconds=wait,
            note=f"drain = the item's retry wait (bound {BACKOFF_BOUND_SECONDS:.0f} s)",
        )
    )
    if retried is None:
        _release_in_flight(harness, s3.records[seen_before:], key)

    # Then the item came back within the backoff, not after the visibility timeout
    assert wait is not None, f"no retry within {BACKOFF_BOUND_SECONDS:.0f} s"
    assert wait <= BACKOFF_BOUND_SECONDS


def _wait_for_receipt(
    harness: ReliabilityHarness,
    seen_before: int,
    key: str,
    *,
    failed: bool,
    timeout: float = 60.0,
) -> sqs.Receipt | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = [
            record
            for record in harness.pool("S3EventsFunction").records[seen_before:]
            if key in str(record.event)
        ]
        found = [r for r in sqs.receipts(records) if r.failed is failed]
        if found:
            return found[-1]
        time.sleep(0.5)
    return None


def _release_in_flight(harness: ReliabilityHarness, records: list, key: str) -> None:
    """Make the item's message visible again, so that it is not left for 15 minutes."""
    handles = [
        message["receiptHandle"]
        for record in records
        for message in record.event.get("Records", [])
        if key in message.get("body", "")
    ]
    for handle in itertools.islice(reversed(handles), 1):
        harness.stack.sqs.change_message_visibility(
            QueueUrl=harness.s3_queue_url, ReceiptHandle=handle, VisibilityTimeout=0
        )
