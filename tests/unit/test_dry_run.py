"""The dry run: every route's verdict on one event, with the ids and conf the real path uses,
and nothing triggered or written. Webhook deliveries end to end (against the real signed path)
are in tests/unit/http/test_routes_test.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from dagtrigger.dependencies import Dependencies
from dagtrigger.dry_run import (
    NOTHING_TRIGGERED,
    DryRunEvent,
    DryRunLimits,
    DryRunReport,
    RoutesTestRequest,
    dry_run,
    dry_run_request,
)
from dagtrigger.errors import MalformedRequestError
from dagtrigger.routes import parse_routes
from dagtrigger.sources.s3.match import FOLDER_PLACEHOLDER_REASON
from dagtrigger.sources.s3.service import handle_s3_message
from dagtrigger.sources.schedules.service import handle_scheduled_trigger
from dagtrigger.trigger.verdict import RouteVerdict, Verdict
from tests.unit.sources.s3.test_service import eventbridge_body

NOW = datetime(2026, 11, 21, 10, 15, 30, 123456, tzinfo=UTC)
SCHEDULE_ARN = "arn:aws:scheduler:us-east-1:111122223333:schedule/dagtrigger-schedules/nightly"

ROUTES_YAML = r"""
version: 1
environments:
  prod:
    name: analytics-prod
    transport: invoke_rest_api
    airflow_major: 3
s3:
  - name: sales-csv
    buckets: [landing]
    prefix: sales/
    suffix: .csv
    regex: '^sales/(?P<day>\d{4}-\d{2}-\d{2})\.csv$'
    environment: prod
    dag_id: ingest_sales
    conf:
      key: "{{ key }}"
      size: "{{ size }}"
      day: "{{ match.day }}"
  - name: reports
    buckets: [landing]
    glob: "reports/*/*.json"
    environment: prod
    dag_id: load_reports
  - name: sized
    buckets: [landing]
    prefix: sized/
    min_size: 100
    max_size: 1000
    environment: prod
    dag_id: sized_files
  - name: on-hold
    buckets: [landing]
    prefix: hold/
    environment: prod
    dag_id: held
    paused: true
  - name: bad-conf
    buckets: [landing]
    prefix: broken/
    environment: prod
    dag_id: never_runs
    conf_template: '{% if bucket %}["not", "an", "object"]{% endif %}'
webhooks:
  - name: github-push
    scheme: github
    secret: dagtrigger/webhooks/github
    environment: prod
    dag_id: build_docs
    filter: "payload.ref == 'refs/heads/main'"
    conf:
      sha: "{{ payload.after }}"
  - name: payments
    scheme: standard-webhooks
    secret: dagtrigger/webhooks/payments
    environment: prod
    dag_id: sync_payments
schedules:
  - name: nightly
    environment: prod
    dag_id: nightly_report
    conf:
      day: "{{ scheduled_date }}"
      region: "{{ conf.region | default('global') }}"
  - name: weekly
    environment: prod
    dag_id: weekly_report
  - name: paused-schedule
    environment: prod
    dag_id: never_runs
    paused: true
"""


@pytest.fixture
def routes_yaml() -> str:
    return ROUTES_YAML


def run(event: dict[str, Any], *, limits: DryRunLimits | None = None) -> DryRunReport:
    return dry_run(
        parse_routes(ROUTES_YAML, source="test"),
        DryRunEvent.model_validate(event),
        limits=limits or DryRunLimits.defaults(),
        now=NOW,
        routes_source="routes.yaml",
    )


def verdict_of(report: DryRunReport, route: str) -> RouteVerdict:
    (verdict,) = [v for v in [*report.matches, *report.non_matches] if v.route == route]
    return verdict


def s3_object(key: str, **fields: Any) -> dict[str, Any]:
    return {"s3": {"bucket": "landing", "key": key, "size": 42, "version_id": "v1", **fields}}


# ------------------------------------------------------------------------------------- S3


def test_a_matching_object_shows_the_dag_the_rendered_conf_and_the_run_id() -> None:
    # When an object that the sales route takes is dry-run
    report = run(s3_object("sales/2026-11-21.csv", event_time="2026-11-21T02:00:00Z"))

    # Then that route matches, with its DAG, its conf (regex groups included) and its run id
    (match,) = report.matches
    assert (match.route, match.environment, match.dag_id) == ("sales-csv", "prod", "ingest_sales")
    assert match.verdict is Verdict.TRIGGER
    assert match.conf == {"key": "sales/2026-11-21.csv", "size": 42, "day": "2026-11-21"}
    assert match.dag_run_id is not None
    assert match.dag_run_id.startswith("dagtrigger__s3__sales-2026-11-21.csv__20261121T020000Z__")
    assert report.summary == "would start 1 DAG run"
    assert report.notes[0] == NOTHING_TRIGGERED


@pytest.mark.parametrize("version", ["3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH", "null"])
def test_the_ids_and_conf_are_those_the_s3_function_records_and_sends(
    deps: Dependencies, transport: Any, version: str
) -> None:
    # Given an object event as the s3 function receives it (versioned, or not: "null")
    key = "sales/2026-11-21.csv"
    body = eventbridge_body(key, version=version, size=48213)
    detail = json.loads(body)["detail"]["object"]

    # When the same object is dry-run, with the facts its event carries
    report = run(
        {
            "s3": {
                "bucket": "landing",
                "key": key,
                "size": 48213,
                "version_id": None if version == "null" else version,
                "etag": detail["etag"],
                "sequencer": detail["sequencer"],
                "event_time": "2026-11-21T02:00:00Z",
            }
        }
    )
    # And the real path processes the event
    handle_s3_message(body, deps)

    # Then the dry run named the record the real path wrote, and the run it started
    (match,) = report.matches
    record = deps.ledger.get(str(match.trigger_id))
    assert record is not None
    assert record["dag_run_id"] == match.dag_run_id
    (call,) = transport.calls
    assert (call.dag_id, call.dag_run_id, call.conf) == (
        match.dag_id,
        match.dag_run_id,
        match.conf,
    )


@pytest.mark.parametrize(
    ("event", "route", "reason"),
    [
        (s3_object("sales/a.csv", bucket="archive"), "sales-csv", "bucket 'archive' is not one"),
        (s3_object("salesforce/2026-11-21.csv"), "sales-csv", "does not start with prefix"),
        (s3_object("sales/2026-11-21.json"), "sales-csv", "does not end with suffix '.csv'"),
        (s3_object("sales/yesterday.csv"), "sales-csv", "does not match regex"),
        (s3_object("reports/2026/11/a.json"), "reports", "does not match glob"),
        (s3_object("sized/a.bin", size=99), "sized", "size 99 is below min_size 100"),
        (s3_object("sized/a.bin", size=1001), "sized", "size 1001 is above max_size 1000"),
        (s3_object("sized/a.bin", size=None), "sized", "the size is unknown"),
        (s3_object("sales/"), "sales-csv", "does not end with suffix"),
    ],
)
def test_each_filter_that_refuses_an_object_is_named(
    event: dict[str, Any], route: str, reason: str
) -> None:
    # When an object one filter of the route refuses is dry-run
    report = run(event)

    # Then the route does not match, and says which filter refused the object
    verdict = verdict_of(report, route)
    assert verdict.verdict is Verdict.NO_MATCH
    assert any(reason in text for text in verdict.reasons), verdict.reasons


def test_every_filter_that_refuses_an_object_is_listed_not_only_the_first() -> None:
    report = run(s3_object("data/a.json", bucket="archive"))

    reasons = verdict_of(report, "sales-csv").reasons
    assert [reason.split(" ")[0:4] for reason in reasons] == [
        ["bucket", "'archive'", "is", "not"],
        ["the", "key", "does", "not"],  # prefix
        ["the", "key", "does", "not"],  # suffix
        ["the", "key", "does", "not"],  # regex
    ]
    assert "prefix 'sales/'" in reasons[1]
    assert "suffix '.csv'" in reasons[2]


def test_a_folder_placeholder_matches_no_route_and_says_why() -> None:
    # When the console's empty "folder" object is dry-run
    report = run(s3_object("sales/", size=0))

    # Then no S3 route matches it, each for that reason
    assert report.matches == []
    s3_verdicts = [v for v in report.non_matches if v.kind == "s3"]
    assert len(s3_verdicts) == 5
    assert all(v.reasons == (FOLDER_PLACEHOLDER_REASON,) for v in s3_verdicts)
    assert report.summary == "no route would start a DAG run"


def test_a_paused_route_whose_filters_match_says_it_is_paused() -> None:
    report = run(s3_object("hold/a.csv"))

    verdict = verdict_of(report, "on-hold")
    assert verdict in report.non_matches
    assert (verdict.verdict, verdict.code) == (Verdict.PAUSED, "route_paused")
    assert verdict.reasons == ("route on-hold is paused",)


def test_a_conf_the_route_cannot_render_is_a_refused_match_as_the_s3_function_records_it(
    deps: Dependencies, transport: Any
) -> None:
    # When an object of the route whose conf is not an object is dry-run, then processed
    report = run(s3_object("broken/a.csv", event_time="2026-11-21T02:00:00Z"))
    handle_s3_message(eventbridge_body("broken/a.csv", version="v1"), deps)

    # Then the dry run shows the route refusing it, with the code and reason the record gets
    (match,) = report.matches
    assert (match.route, match.verdict, match.code) == (
        "bad-conf",
        Verdict.REJECT,
        "conf_not_object",
    )
    assert match.conf is None
    record = deps.ledger.get(str(match.trigger_id))
    assert record is not None
    assert (record["status"], record["reject_code"]) == ("REJECTED", match.code)
    assert record["reason"] == match.reason
    assert transport.calls == []


def test_the_conf_limit_of_the_deployment_applies() -> None:
    # Given a deployment that allows confs of 40 bytes
    limits = DryRunLimits(
        conf_max_bytes=40, webhook_max_body_bytes=1024, webhook_replay_window_seconds=300,
        region="eu-west-1",
    )  # fmt: skip

    # When an object whose conf is larger is dry-run
    report = run(s3_object("sales/2026-11-21.csv"), limits=limits)

    # Then the match is refused as too large, as the real path would refuse it
    (match,) = report.matches
    assert (match.verdict, match.code) == (Verdict.REJECT, "conf_too_large")
    assert "over the limit of 40 bytes" in match.reason


def test_routes_of_other_sources_say_the_event_is_not_theirs() -> None:
    report = run(s3_object("sales/2026-11-21.csv"))

    others = [v for v in report.non_matches if v.verdict is Verdict.OTHER_SOURCE]
    assert [(v.kind, v.route) for v in others] == [
        ("webhooks", "github-push"),
        ("webhooks", "payments"),
        ("schedules", "nightly"),
        ("schedules", "weekly"),
        ("schedules", "paused-schedule"),
    ]
    assert others[0].reasons == ("a webhook route, and the event is an S3 object",)


def test_what_the_event_does_not_say_is_assumed_and_said() -> None:
    # When an object is dry-run without its time, version, ETag or sequencer
    report = run({"s3": {"bucket": "landing", "key": "sales/2026-11-21.csv", "size": 1}})

    # Then the run id is for "now" (to the second), and the notes say both assumptions
    (match,) = report.matches
    assert "__20261121T101530Z__" in str(match.dag_run_id)
    assert any(
        note.startswith("event_time not given: 2026-11-21T10:15:30Z") for note in report.notes
    )
    assert any("no version_id" in note for note in report.notes)


def test_a_dry_run_triggers_nothing_and_writes_nothing(
    deps: Dependencies, transport: Any, table: Any
) -> None:
    # When objects, a webhook and a schedule fire are dry-run against the deployed routes
    for event in (
        s3_object("sales/2026-11-21.csv"),
        s3_object("broken/a.csv"),
        {"webhook": {"name": "github-push", "payload": {"ref": "refs/heads/main"}}},
        {"schedule": {"route": "nightly"}},
    ):
        report = dry_run_request(RoutesTestRequest.model_validate(event), deps)
        assert report.routes_source.startswith("the stack's routes file (file:")

    # Then Airflow was never called and the history table is still empty
    assert transport.calls == []
    assert table.scan()["Items"] == []


# ------------------------------------------------------------------------------- schedules


def test_a_schedule_fire_gets_the_ids_and_conf_the_schedules_function_records(
    deps: Dependencies, transport: Any
) -> None:
    # Given a fire of the nightly schedule, with the schedule's own conf
    fire = {"scheduled_time": "2026-11-21T01:00:00Z", "conf": {"region": "emea"}}

    # When it is dry-run, and the schedules function handles the same fire
    report = run({"schedule": {"route": "nightly", "schedule_arn": SCHEDULE_ARN, **fire}})
    result = handle_scheduled_trigger(
        {"route": "nightly", "schedule_arn": SCHEDULE_ARN, "execution_id": "e-1", **fire}, deps
    )

    # Then the dry run named that trigger and its run, with the conf Airflow received
    (match,) = report.matches
    assert (result.trigger_id, result.dag_run_id) == (match.trigger_id, match.dag_run_id)
    assert match.conf == {"day": "2026-11-21", "region": "emea"}
    (call,) = transport.calls
    assert call.conf == match.conf


def test_the_other_schedule_routes_say_which_route_the_fire_names() -> None:
    report = run({"schedule": {"route": "nightly", "schedule_arn": SCHEDULE_ARN}})

    weekly = verdict_of(report, "weekly")
    assert weekly.verdict is Verdict.NO_MATCH
    assert weekly.reasons == ("the schedule names route nightly",)
    assert not any(note.startswith("schedule_arn not given") for note in report.notes)


def test_a_fire_of_a_paused_schedule_route_starts_nothing() -> None:
    report = run({"schedule": {"route": "paused-schedule"}})

    assert report.matches == []
    verdict = verdict_of(report, "paused-schedule")
    assert (verdict.verdict, verdict.reasons) == (
        Verdict.PAUSED,
        ("route paused-schedule is paused",),
    )
    assert any(
        note.startswith("schedule_arn not given: arn:aws:scheduler:") for note in report.notes
    )


@pytest.mark.parametrize(
    ("route", "code"), [("no-such-route", "no_route"), ("sales-csv", "not_a_schedule_route")]
)
def test_a_fire_naming_a_route_it_cannot_use_would_be_rejected(route: str, code: str) -> None:
    report = run({"schedule": {"route": route}})

    assert report.matches == []
    assert any(
        note.startswith(f"the fire would be recorded REJECTED ({code})") for note in report.notes
    )


# -------------------------------------------------------------------------------- webhooks


def test_a_delivery_the_filter_refuses_does_not_match() -> None:
    report = run({"webhook": {"name": "github-push", "payload": {"ref": "refs/heads/dev"}}})

    verdict = verdict_of(report, "github-push")
    assert (verdict.verdict, verdict.code) == (Verdict.NO_MATCH, "filtered_out")
    assert verdict.reasons == ("the filter of route github-push is false for this delivery",)
    assert any("signatures are not checked" in note for note in report.notes)


def test_a_standard_webhooks_delivery_without_its_id_would_be_refused() -> None:
    # When a delivery to a Standard Webhooks route comes without the webhook-id header it signs
    report = run({"webhook": {"name": "payments", "body": '{"id": "evt_1"}'}})

    # Then the route refuses it (no run id can be named), saying which header is missing
    (match,) = report.matches
    assert (match.verdict, match.code) == (Verdict.REJECT, "unauthenticated")
    assert match.reasons == (
        "the webhook-id header is missing: the delivery would be refused (401)",
    )


def test_a_standard_webhooks_delivery_is_named_by_its_webhook_id() -> None:
    event = {"name": "payments", "body": '{"id": "evt_1"}', "headers": {"webhook-id": "msg_1"}}

    report = run({"webhook": event})

    (match,) = report.matches
    assert match.verdict is Verdict.TRIGGER
    assert match.conf is not None
    assert match.conf["delivery_id"] == "msg_1"
    assert "__payments-msg_1__20261121T101530Z__" in str(match.dag_run_id)


def test_a_body_over_the_deployment_limit_would_be_refused() -> None:
    limits = DryRunLimits(
        conf_max_bytes=1024, webhook_max_body_bytes=1024, webhook_replay_window_seconds=300,
        region="us-east-1",
    )  # fmt: skip
    body = json.dumps({"ref": "refs/heads/main", "pad": "x" * 1100})

    report = run({"webhook": {"name": "github-push", "body": body}}, limits=limits)

    (match,) = report.matches
    assert (match.verdict, match.code) == (Verdict.REJECT, "too_large")
    assert match.reason.endswith(
        "over the limit of 1024 bytes: the delivery would be refused (413)"
    )


def test_a_delivery_to_an_unknown_webhook_would_be_answered_404() -> None:
    report = run({"webhook": {"name": "nobody", "payload": {}}})

    assert report.matches == []
    assert "no webhook route is named 'nobody': the delivery would be answered 404" in report.notes


def test_a_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(MalformedRequestError, match="not valid UTF-8 JSON at line 1 column 1"):
        run({"webhook": {"name": "github-push", "body": "not json"}})


# ---------------------------------------------------------------------------------- events


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({}, "give exactly one of s3, webhook and schedule, not 0"),
        (
            {**s3_object("a"), "schedule": {"route": "nightly"}},
            "give exactly one of s3, webhook and schedule, not 2",
        ),
        (
            {"webhook": {"name": "github-push", "body": "{}", "payload": {}}},
            "give either body (the JSON text as sent) or payload, not both",
        ),
        ({"webhook": {"name": "github-push"}}, "give either body"),
        ({"s3": {"bucket": "landing", "key": "k" * 1025}}, "S3 keys are at most 1024"),
    ],
)
def test_an_event_that_is_not_one_event_is_refused_saying_why(
    event: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        DryRunEvent.model_validate(event)
