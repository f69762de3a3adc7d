"""A captured webhook delivery, replayed 100 times inside and outside the replay window: 1 run.

An attacker who captured one signed GitHub delivery can send it again with the same delivery
id, a new one (the id is not signed), or none. Half the replays come within the replay window,
half after it has passed. The signature stays valid throughout; only the one genuine delivery
may start a run.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
import requests

from devstack.reliability import drivers
from devstack.reliability.accounting import ScenarioRow, row
from devstack.reliability.harness import ReliabilityHarness

REPLAYS_PER_SIDE = 50
DRAIN_TIMEOUT_SECONDS = 180


def replay_delivery_ids(original: str) -> list[str | None]:
    """A third of the replays keep the id, a third carry a fresh one, a third carry none."""
    kinds: list[str | None] = [original, None]
    return [
        kinds[index % 2] if index % 3 else str(uuid.uuid4()) for index in range(REPLAYS_PER_SIDE)
    ]


@pytest.mark.reliability
def test_a_captured_webhook_replayed_inside_and_outside_the_window_starts_one_run(
    harness: ReliabilityHarness,
    github_secret: str,
    fault_matrix: list[ScenarioRow],
    unique: str,
) -> None:
    # Given one genuine, signed push delivery, accepted
    commit = unique.ljust(40, "0")[:40]
    event = drivers.webhook_event(commit)
    body = drivers.github_push(commit)
    delivery_id = str(uuid.uuid4())
    url = harness.runner.http_api_url.rstrip("/") + drivers.WEBHOOK_PATH

    def send(delivery: str | None) -> int:
        headers = drivers.github_headers(body, secret=github_secret, delivery_id=delivery)
        return requests.post(url, data=body, headers=headers, timeout=60).status_code

    started = time.monotonic()
    assert send(delivery_id) == 202

    # When it is replayed 50 times within the replay window
    inside = Counter(send(replayed) for replayed in replay_delivery_ids(delivery_id))
    # And 50 times once the window has passed since the genuine delivery
    window = harness.compression.webhook_replay_window_seconds
    time.sleep(max(0.0, started + window + 2 - time.monotonic()))
    outside = Counter(send(replayed) for replayed in replay_delivery_ids(delivery_id))

    drain = harness.wait_for_drain([event], since=started, timeout=DRAIN_TIMEOUT_SECONDS)
    (fate,) = harness.observe([event])
    fault_matrix.append(
        row(
            f"captured webhook replayed {2 * REPLAYS_PER_SIDE} times (window {window} s)",
            [fate],
            drain_seconds=drain.seconds,
            note=f"answers inside the window {dict(inside)}, outside {dict(outside)}",
        )
    )

    # Then no replay broke the API, and Airflow holds exactly one run for the delivery
    assert not [status for status in inside + outside if status >= 500]
    assert fate.runs == 1
    assert drain.seconds is not None
