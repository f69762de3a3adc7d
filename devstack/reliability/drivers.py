"""Events for the local stack's routes (devstack/demo/routes.yaml), and where each one's runs show.

* an object under ``sales/`` ending ``.csv`` starts ``ingest_sales``, its key in the run's conf;
* a GitHub push to main, signed for webhook ``github-push``, starts ``echo_conf`` with the
  commit in the conf;
* a fire of schedule ``nightly-sales`` starts ``ingest_sales`` with the scheduled time in the conf.

Signing is done here, not with dagtrigger's signer: a test's sender must not share the code it
tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Final

from devstack.reliability.accounting import ScenarioEvent

S3_DAG: Final = "ingest_sales"
WEBHOOK_ROUTE: Final = "github-push"
WEBHOOK_DAG: Final = "echo_conf"
WEBHOOK_PATH: Final = f"/v1/webhooks/{WEBHOOK_ROUTE}"
#: the Secrets Manager name (not a secret) of the route's signing secret
WEBHOOK_SECRET_NAME: Final = "dagtrigger/webhooks/github-push"  # noqa: S105
SCHEDULE_NAME: Final = "nightly-sales"
SCHEDULE_DAG: Final = "ingest_sales"


def s3_event(bucket: str, key: str) -> ScenarioEvent:
    return ScenarioEvent(f"s3://{bucket}/{key}", S3_DAG, "key", key)


def webhook_event(commit: str) -> ScenarioEvent:
    return ScenarioEvent(f"webhook:{WEBHOOK_ROUTE}", WEBHOOK_DAG, "commit", commit)


def schedule_event(schedule_arn: str, scheduled_time: datetime) -> ScenarioEvent:
    return ScenarioEvent(schedule_arn, SCHEDULE_DAG, "scheduled_time", iso_z(scheduled_time))


def github_push(commit: str, *, branch: str = "main") -> bytes:
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "after": commit,
            "repository": {"full_name": "acme/sales-pipelines"},
            "pusher": {"name": "octocat"},
        }
    ).encode()


def github_headers(body: bytes, *, secret: str, delivery_id: str | None) -> dict[str, str]:
    """The headers GitHub sends with a push: X-Hub-Signature-256 is HMAC-SHA256 of the body
    (the delivery id is not signed, so a replay may carry any id, or none)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": f"sha256={digest}",
    }
    if delivery_id is not None:
        headers["X-GitHub-Delivery"] = delivery_id
    return headers


def iso_z(moment: datetime) -> str:
    """``2026-11-21T02:00:00Z``: how a scheduled time is written into the run's conf."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
