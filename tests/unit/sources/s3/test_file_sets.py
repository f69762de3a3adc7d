"""File sets inside one process: S3 events -> a set route -> the history table's sets and
members (moto) -> one run per complete set, whatever the order, redelivery or concurrency."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from dagtrigger.dependencies import Dependencies
from dagtrigger.ledger import TriggerStatus
from dagtrigger.sources.s3.file_sets import sweep_file_sets
from dagtrigger.sources.s3.service import handle_s3_message
from dagtrigger.trigger.execute import TriggerDisposition
from tests.unit.conftest import RecordingTransport
from tests.unit.ledger.conftest import FakeClock
from tests.unit.sources.s3.test_service import eventbridge_body

#: what each part holds: its MD5 is the etag eventbridge_body's events carry
PART_BODY = b"hello\n"
EXPORT = "exports/2026-12-03"


def routes(**set_fields: Any) -> str:
    file_set = {"group": "{{ dirname }}", **set_fields}
    lines = "\n".join(f"      {name}: {json.dumps(value)}" for name, value in file_set.items())
    return f"""\
version: 1
environments:
  prod:
    name: analytics-prod
    transport: invoke_rest_api
    airflow_major: 3
s3:
  - name: exports
    buckets: [landing]
    prefix: exports/
    suffix: .parquet
    environment: prod
    dag_id: load_export
    set:
{lines}
"""


@pytest.fixture
def routes_yaml(request: pytest.FixtureRequest) -> str:
    marker = getattr(request, "param", None) or {"marker": "_SUCCESS"}
    return routes(**marker)


@pytest.fixture
def landing() -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="landing")
    yield s3
    listed = s3.list_objects_v2(Bucket="landing").get("Contents", ())
    for item in listed:
        s3.delete_object(Bucket="landing", Key=item["Key"])
    s3.delete_bucket(Bucket="landing")


def drop(landing: Any, key: str) -> str:
    """Put the object in S3 and give the event EventBridge would deliver for it."""
    landing.put_object(Bucket="landing", Key=key, Body=PART_BODY)
    return eventbridge_body(key, size=len(PART_BODY))


def parts(count: int, folder: str = EXPORT) -> list[str]:
    return [f"{folder}/part-{number:05d}.parquet" for number in range(count)]


def listed_keys(conf: dict[str, Any]) -> list[str]:
    return [obj["key"] for obj in conf["objects"]]


@pytest.mark.parametrize("marker_first", [False, True], ids=["marker last", "marker first"])
def test_fifty_parts_and_a_marker_start_one_run_listing_all_fifty(
    deps: Dependencies, transport: RecordingTransport, landing: Any, marker_first: bool
) -> None:
    # Given an export of 50 parts and its _SUCCESS marker, all written to S3
    bodies = [drop(landing, key) for key in parts(50)]
    marker = drop(landing, f"{EXPORT}/_SUCCESS")

    # When their events arrive with the marker first (before any part's) or last
    order = [marker, *bodies] if marker_first else [*bodies, marker]
    for body in order:
        handle_s3_message(body, deps)

    # Then one run started, listing the 50 parts (not the marker), sizes summed
    (run,) = transport.calls
    assert run.dag_id == "load_export"
    assert listed_keys(run.conf) == parts(50)
    about = run.conf["set"]
    assert (about["group"], about["object_count"], about["total_size"]) == (EXPORT, 50, 300)
    assert about["completion"] == "marker"

    # And each part's record links to the set, whose record tells how it completed
    set_record = deps.ledger.get(about["id"])
    assert set_record is not None
    assert set_record["status"] == TriggerStatus.SET_COMPLETE
    assert (set_record["completion_reason"], set_record["member_count"]) == ("marker", 50)
    assert set_record["run_trigger_id"]
    member = deps.ledger.query_by_source(f"s3://landing/{parts(50)[7]}").items[0]
    assert (member["status"], member["set_id"]) == (TriggerStatus.IN_SET, about["id"])


@pytest.mark.parametrize("routes_yaml", [{"count": 200}], indirect=True)
def test_two_hundred_parts_redelivered_and_concurrent_start_one_run(
    deps: Dependencies, transport: RecordingTransport, landing: Any, atomic_requests: None
) -> None:
    # Given 200 parts of a set that completes at 200, their events in random order with one in
    # five delivered twice
    bodies = [drop(landing, key) for key in parts(200)]
    shuffled = random.Random(7)
    deliveries = bodies + shuffled.sample(bodies, 40)
    shuffled.shuffle(deliveries)

    # When ten consumers process them at once
    with ThreadPoolExecutor(max_workers=10) as consumers:
        outcomes = [
            outcome
            for handled in consumers.map(lambda body: handle_s3_message(body, deps), deliveries)
            for outcome in handled
        ]

    # Then exactly one run lists the 200 keys; the 40 repeats were counted, not joined
    (run,) = transport.calls
    assert listed_keys(run.conf) == parts(200)
    dispositions = [outcome.disposition for outcome in outcomes]
    assert dispositions.count(TriggerDisposition.JOINED_SET) == 200
    assert dispositions.count(TriggerDisposition.DUPLICATE) == 40


@pytest.mark.parametrize("late", ["record", "new_set"])
def test_a_part_after_its_set_completed_is_recorded_late_and_handled_as_the_route_says(
    make_deps: Callable[..., Dependencies],
    routes_file: Any,
    transport: RecordingTransport,
    landing: Any,
    late: str,
) -> None:
    # Given a set of three parts, complete
    routes_file.write_text(routes(count=3, late=late, quiet_seconds=60))
    clock = FakeClock()
    deps = make_deps(clock=clock)
    for body in [drop(landing, key) for key in parts(3)]:
        handle_s3_message(body, deps)
    (first_run,) = transport.calls

    # When a fourth part arrives, and is delivered twice
    fourth = drop(landing, f"{EXPORT}/part-late.parquet")
    (outcome,) = handle_s3_message(fourth, deps)
    (again,) = handle_s3_message(fourth, deps)

    # Then it is LATE for the set it missed, once; with new_set it also opens the next set,
    # which completes as its route says (quiet here) and starts a run of its own
    assert again.disposition is TriggerDisposition.DUPLICATE
    missed = first_run.conf["set"]["id"]
    if late == "record":
        assert outcome.disposition is TriggerDisposition.LATE
        assert outcome.record["status"] == TriggerStatus.LATE
        assert outcome.record["missed_set_id"] == missed
        assert "completed (count, 3 objects)" in outcome.record["reason"]
        clock.advance(seconds=61)
        sweep_file_sets(deps, budget_seconds=5)
        assert len(transport.calls) == 1
        return
    assert outcome.disposition is TriggerDisposition.JOINED_SET
    assert outcome.record["set_id"] != missed
    clock.advance(seconds=61)
    assert sweep_file_sets(deps, budget_seconds=5).sets_completed == 1
    second_run = transport.calls[1]
    assert listed_keys(second_run.conf) == [f"{EXPORT}/part-late.parquet"]
    assert second_run.conf["set"]["completion"] == "quiet_seconds"


@pytest.mark.parametrize(
    ("set_fields", "due_at", "reason"),
    [
        ({"quiet_seconds": 300}, 700, "quiet_seconds"),  # 300 s after the last part, at 400
        ({"quiet_seconds": 300, "max_wait_seconds": 500}, 500, "max_wait_seconds"),
    ],
)
def test_a_timed_set_completes_on_the_first_pass_after_its_time_and_only_once(
    make_deps: Callable[..., Dependencies],
    routes_file: Any,
    transport: RecordingTransport,
    landing: Any,
    set_fields: dict[str, int],
    due_at: int,
    reason: str,
) -> None:
    # Given parts trickling in every 200 s (never quiet for 300 s while they come)
    routes_file.write_text(routes(**set_fields))
    clock = FakeClock()
    deps = make_deps(clock=clock)
    bodies = [drop(landing, key) for key in parts(3)]
    handle_s3_message(bodies[0], deps)
    for body in bodies[1:]:
        clock.advance(seconds=200)
        assert sweep_file_sets(deps, budget_seconds=5).sets_completed == 0
        handle_s3_message(body, deps)

    # When passes run just before and at the set's time (the clock says 400 s now)
    clock.advance(seconds=due_at - 400 - 1)
    before = sweep_file_sets(deps, budget_seconds=5)
    clock.advance(seconds=1)
    at = sweep_file_sets(deps, budget_seconds=5)
    after = sweep_file_sets(deps, budget_seconds=5)

    # Then the pass at its time completes it, for that reason, with one run; later passes
    # find nothing to do
    assert (before.sets_completed, at.sets_completed, after.sets_completed) == (0, 1, 0)
    (run,) = transport.calls
    assert run.conf["set"]["completion"] == reason
    assert listed_keys(run.conf) == parts(3)
    assert (at.set_runs_started, after.sets_open) == (1, 0)


@pytest.mark.parametrize(
    "routes_yaml",
    [{"marker": "_SUCCESS", "manifest": "s3://landing/manifests/"}],
    indirect=True,
)
def test_a_list_over_the_conf_cap_is_written_as_a_manifest_the_conf_names(
    make_deps: Callable[..., Dependencies], transport: RecordingTransport, landing: Any
) -> None:
    # Given a conf cap a list of 40 parts exceeds
    deps = make_deps(conf_max_bytes=2048)
    bodies = [drop(landing, key) for key in parts(40)]

    # When the parts and the marker arrive
    for body in [*bodies, drop(landing, f"{EXPORT}/_SUCCESS")]:
        handle_s3_message(body, deps)

    # Then the run's conf names the manifest, which lists every part
    (run,) = transport.calls
    assert "objects" not in run.conf
    set_id = run.conf["set"]["id"]
    assert run.conf["manifest"] == f"s3://landing/manifests/{set_id}.json"
    manifest = json.loads(
        landing.get_object(Bucket="landing", Key=f"manifests/{set_id}.json")["Body"].read()
    )
    assert listed_keys(manifest) == parts(40)
    assert manifest["set"]["object_count"] == 40


def test_a_set_whose_completer_died_is_started_by_the_next_pass_once(
    make_deps: Callable[..., Dependencies],
    routes_file: Any,
    transport: RecordingTransport,
    landing: Any,
    answers: Any,
) -> None:
    # Given a set completed by its third part, whose function died starting the run
    routes_file.write_text(routes(count=3))
    clock = FakeClock()
    deps = make_deps(clock=clock)
    bodies = [drop(landing, key) for key in parts(3)]
    for body in bodies[:2]:
        handle_s3_message(body, deps)
    transport.answers.append(answers.killed)
    with pytest.raises(BaseException, match="killed"):
        handle_s3_message(bodies[2], deps)

    # When the reconciler passes, after the run's claim lease and the sets' grace
    clock.advance(seconds=deps.settings.trigger_lease_seconds + 1)
    summary = sweep_file_sets(deps, budget_seconds=5)
    again = sweep_file_sets(deps, budget_seconds=5)

    # Then the run is started with the recorded run id, once, and the set leaves the sweep
    assert (summary.set_runs_started, again.set_runs_started) == (1, 0)
    killed, started = transport.calls
    assert started.dag_run_id == killed.dag_run_id
    assert listed_keys(started.conf) == parts(3)
