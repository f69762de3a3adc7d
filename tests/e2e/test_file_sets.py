"""End to end: an export of 200 part files and its _SUCCESS marker on the demo's file-set route
(``exports``), their events delivered in random order, one in five twice, from ten senders at
once, start exactly one run of ``load_export`` on the local Airflow, whose conf lists the 200
keys (and whose task finds them there). A set too large for a conf is listed in a manifest,
which the task reads from S3.

The bucket's EventBridge notifications are off while the objects are written, so that their
events arrive only as the test sends them (the order S3 wrote them in says nothing of the order
they are delivered in); the events are the ones S3 sends, with the objects' own etags and
version ids.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from boto3.dynamodb.conditions import Key

from dagtrigger import ids
from devstack.processes import wait_until
from devstack.stack import SET_MANIFEST_LOCATION, LocalStack
from tests.e2e.test_http_and_schedules import task_record

pytestmark = pytest.mark.e2e

ROUTE = "exports"
DAG_ID = "load_export"
PARTS = 200
TIMEOUT_SECONDS = 180


def object_created(bucket: str, key: str, put: dict[str, Any], size: int, n: int) -> str:
    """The EventBridge "Object Created" event S3 sends for ``put``."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "123456789012",
            "time": "2026-12-03T02:00:00Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket},
                "object": {
                    "key": key,
                    "size": size,
                    "etag": put["ETag"].strip('"'),
                    "version-id": put["VersionId"],
                    "sequencer": f"{0x0067A3B5C1D2E3F4A5 + n:018X}",
                },
                "reason": "PutObject",
            },
        }
    )


def test_two_hundred_parts_and_a_marker_in_random_order_start_one_run_listing_them(
    stack: LocalStack, conf_sink: Path
) -> None:
    assert stack.airflow is not None
    bucket = stack.source_bucket
    folder = f"exports/e2e-{uuid.uuid4().hex[:8]}"
    keys = [f"{folder}/part-{number:05d}.csv" for number in range(PARTS)]
    body = b"order,amount\n1,2\n"

    # Given an export written part by part, then its marker, while S3's events are held back
    with stack.s3_events_held_back(bucket):
        events = [
            object_created(bucket, key, stack.s3.put_object(Bucket=bucket, Key=key, Body=body),
                           len(body), number)
            for number, key in enumerate(keys)
        ]  # fmt: skip
        marker_put = stack.s3.put_object(Bucket=bucket, Key=f"{folder}/_SUCCESS", Body=b"")
        events.append(object_created(bucket, f"{folder}/_SUCCESS", marker_put, 0, PARTS))

    # When their events reach the queue in random order, one in five twice, from ten senders
    shuffled = random.Random(2026)
    deliveries = events + shuffled.sample(events, len(events) // 5)
    shuffled.shuffle(deliveries)
    print(f"the marker is delivery {deliveries.index(events[-1]) + 1} of {len(deliveries)}")
    sqs = stack.moto_client("sqs")
    queue_url = stack.resources()["queue_url"]
    assert stack.emulator is not None
    calls_before = len(stack.emulator.requests.entries())
    sent_at = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as senders:
        list(senders.map(lambda event: sqs.send_message(QueueUrl=queue_url, MessageBody=event),
                         deliveries))  # fmt: skip

    # Then the set completes once, by its marker, with the 200 parts
    table = stack.history_table()
    set_id = ids.file_set_id(ROUTE, folder)

    def completed() -> dict[str, Any] | None:
        item = table.get_item(Key={"pk": set_id}, ConsistentRead=True).get("Item")
        return item if item and item.get("run_trigger_id") else None

    file_set = wait_until(
        completed, timeout=TIMEOUT_SECONDS, interval=2.0, what=f"set {set_id} to start its run"
    )
    mwaa_calls = len(stack.emulator.requests.entries()) - calls_before
    print(
        f"{len(deliveries)} deliveries to one run in {time.monotonic() - sent_at:.1f} s, "
        f"{mwaa_calls} MWAA calls meanwhile"
    )
    assert (file_set["status"], file_set["completion_reason"]) == ("SET_COMPLETE", "marker")
    assert int(file_set["member_count"]) == PARTS

    # And every part is its member, and every delivery of a part is counted on its record (the
    # marker's listing counts none; a receive the functions retried counts again)
    members = table.query(IndexName="by_set", KeyConditionExpression=Key("set_id").eq(set_id))
    assert sorted(item["source_ref"]["key"] for item in members["Items"]) == keys
    part_deliveries = sum(1 for event in deliveries if "part-" in event)

    def deliveries_counted() -> int | None:
        items = table.query(IndexName="by_set", KeyConditionExpression=Key("set_id").eq(set_id))[
            "Items"
        ]
        counted = sum(int(item["deliveries"]) for item in items)
        return counted if counted >= part_deliveries else None

    wait_until(deliveries_counted, timeout=TIMEOUT_SECONDS, what="every delivery counted")

    # And Airflow has exactly one run for the set, whose conf lists the 200 keys
    run_record = table.get_item(Key={"pk": file_set["run_trigger_id"]})["Item"]
    session = stack.airflow.api_session()
    run = session.get(
        stack.airflow.api_url(f"/dags/{DAG_ID}/dagRuns/{quote(run_record['dag_run_id'], safe='')}"),
        timeout=60,
    )
    assert run.status_code == 200, run.text
    conf = run.json()["conf"]
    assert [obj["key"] for obj in conf["objects"]] == keys
    assert conf["set"]["id"] == set_id
    listed = session.get(
        stack.airflow.api_url(f"/dags/{DAG_ID}/dagRuns"),
        params={"order_by": "-id", "limit": 100},
        timeout=60,
    )
    assert listed.ok, listed.text
    runs_of_the_set = [
        candidate["dag_run_id"]
        for candidate in listed.json()["dag_runs"]
        if (candidate.get("conf") or {}).get("set", {}).get("id") == set_id
    ]
    assert runs_of_the_set == [run_record["dag_run_id"]]

    # And the run's task found the 200 objects in its conf
    found = task_record(conf_sink, DAG_ID, run_record["dag_run_id"])
    assert (found["objects_listed_in"], found["object_keys"]) == ("conf", keys)


#: how often the local stack fires the reconciler (the template's rate(1 minute))
RECONCILER_INTERVAL_SECONDS = 60
QUIET_SECONDS = 15


def set_route(name: str, prefix: str, **file_set: Any) -> dict[str, Any]:
    return {
        "name": name,
        "buckets": ["landing"],
        "prefix": prefix,
        "environment": "demo",
        "dag_id": DAG_ID,
        "set": {"group": "{{ dirname }}", **file_set},
    }


def test_count_and_quiet_sets_complete_on_time_and_once(stack: LocalStack) -> None:
    table = stack.history_table()
    bucket = stack.source_bucket
    marker = uuid.uuid4().hex[:8]
    counted, quiet = f"counted/{marker}", f"quiet/{marker}"
    routes = (
        set_route("counted-parts", "counted/", count=5),
        set_route("quiet-parts", "quiet/", quiet_seconds=QUIET_SECONDS),
    )
    with stack.s3_routes_added(*routes):
        # Given a set that completes at 5 objects, and one that completes after 15 quiet seconds
        # When 6 parts land for the first (one too many) and 3 for the second
        for number in range(6):
            stack.s3.put_object(Bucket=bucket, Key=f"{counted}/part-{number}.csv", Body=b"1")
        for number in range(3):
            stack.s3.put_object(Bucket=bucket, Key=f"{quiet}/part-{number}.csv", Body=b"1")
        last_quiet_part = time.monotonic()

        def run_of(route: str, group: str) -> dict[str, Any] | None:
            item = table.get_item(
                Key={"pk": ids.file_set_id(route, group)}, ConsistentRead=True
            ).get("Item")
            return item if item and item.get("run_trigger_id") else None

        # Then the counted set completes with its 5 first parts at once, and the sixth is LATE
        counted_set = wait_until(
            lambda: run_of("counted-parts", counted), timeout=60, what="the counted set's run"
        )
        assert (counted_set["completion_reason"], int(counted_set["member_count"])) == ("count", 5)
        late = wait_until(
            lambda: [
                item
                for number in range(6)
                for item in table.query(
                    IndexName="by_source",
                    KeyConditionExpression=Key("source_key").eq(
                        f"s3://{bucket}/{counted}/part-{number}.csv"
                    ),
                )["Items"]
                if item["status"] == "LATE"
            ],
            timeout=60,
            what="the sixth part's LATE record",
        )
        assert [item["missed_set_id"] for item in late] == [counted_set["trigger_id"]]

        # And the quiet set completes on the reconciler's first pass after its quiet time
        quiet_set = wait_until(
            lambda: run_of("quiet-parts", quiet),
            timeout=QUIET_SECONDS + 2 * RECONCILER_INTERVAL_SECONDS,
            interval=1.0,
            what="the quiet set's run",
        )
        waited = time.monotonic() - last_quiet_part
        print(f"the quiet set completed {waited:.1f} s after its last part")
        assert quiet_set["completion_reason"] == "quiet_seconds"
        assert int(quiet_set["member_count"]) == 3
        assert QUIET_SECONDS <= waited <= QUIET_SECONDS + RECONCILER_INTERVAL_SECONDS + 10

        # And each set has one run record: its run claims the set's own trigger id
        for file_set in (counted_set, quiet_set):
            run = table.get_item(Key={"pk": file_set["run_trigger_id"]})["Item"]
            assert run["status"] in {"TRIGGERED", "RUNNING", "SUCCESS"}, run
            assert int(run["deliveries"]) == 1


#: parts enough that their list is over the functions' conf limit (32 KiB): ~115 bytes each
MANIFEST_PARTS = 400


def test_a_set_too_large_for_a_conf_is_listed_in_a_manifest_the_dag_reads(
    stack: LocalStack, conf_sink: Path
) -> None:
    table = stack.history_table()
    bucket = stack.source_bucket
    folder = f"big/e2e-{uuid.uuid4().hex[:8]}"
    keys = [f"{folder}/part-{number:05d}.csv" for number in range(MANIFEST_PARTS)]
    manifests = f"{SET_MANIFEST_LOCATION}big/"
    route = set_route("big-exports", "big/", marker="_SUCCESS", manifest=manifests)
    with stack.s3_routes_added(route):
        # Given a route whose sets write manifests under the stack's SetManifestLocation
        # When 400 parts land, then their marker
        for key in keys:
            stack.s3.put_object(Bucket=bucket, Key=key, Body=b"order,amount\n1,2\n")
        stack.s3.put_object(Bucket=bucket, Key=f"{folder}/_SUCCESS", Body=b"")

        # Then the set completes by its marker with every part
        set_id = ids.file_set_id("big-exports", folder)

        def completed() -> dict[str, Any] | None:
            item = table.get_item(Key={"pk": set_id}, ConsistentRead=True).get("Item")
            return item if item and item.get("run_trigger_id") else None

        file_set = wait_until(completed, timeout=TIMEOUT_SECONDS, interval=2.0, what="the set")
        assert (file_set["completion_reason"], int(file_set["member_count"])) == (
            "marker",
            MANIFEST_PARTS,
        )

    # And the run's conf names the manifest instead of listing the objects
    run_record = table.get_item(Key={"pk": file_set["run_trigger_id"]})["Item"]
    found = task_record(conf_sink, DAG_ID, run_record["dag_run_id"])
    manifest_uri = f"{manifests}{set_id}.json"
    assert "objects" not in found["conf"]
    assert found["conf"]["manifest"] == manifest_uri
    assert found["conf"]["set"]["object_count"] == MANIFEST_PARTS

    # And the manifest in S3 lists the parts, which is where the task found them
    manifest_bucket, _, manifest_key = manifest_uri.removeprefix("s3://").partition("/")
    manifest = json.loads(
        stack.s3.get_object(Bucket=manifest_bucket, Key=manifest_key)["Body"].read()
    )
    assert manifest["set"]["id"] == set_id
    assert [obj["key"] for obj in manifest["objects"]] == keys
    assert (found["objects_listed_in"], found["object_keys"]) == (manifest_uri, keys)
