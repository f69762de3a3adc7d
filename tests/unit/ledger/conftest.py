"""Fixtures for the ledger tests: a moto DynamoDB table, a settable clock, trigger factories."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from dagtrigger.ledger import NewTrigger, SourceType, TriggerLedger
from dagtrigger.ledger.schema import create_table

TABLE_NAME = "dagtrigger-history-test"
_table_numbers = itertools.count(1)
START = datetime(2026, 11, 21, 2, 0, 0, 123456, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    """A moto DynamoDB client, one per test module (creating clients is the slow part)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with mock_aws():
            yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture(scope="module")
def dynamodb_resource(dynamodb: Any) -> Any:
    return boto3.resource("dynamodb", region_name="us-east-1")


@pytest.fixture
def table(dynamodb: Any, dynamodb_resource: Any) -> Iterator[Any]:
    """A fresh, empty history table for each test."""
    name = f"{TABLE_NAME}-{next(_table_numbers)}"
    create_table(dynamodb, name)
    yield dynamodb_resource.Table(name)
    dynamodb.delete_table(TableName=name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(table: Any, clock: FakeClock) -> TriggerLedger:
    return TriggerLedger(table, clock=clock)


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make each mocked request atomic, as DynamoDB makes each single-item write.

    moto's DynamoDB backend reads, checks and writes an item without a lock (in process and
    in server mode alike), so concurrent conditional writes can interleave inside moto and
    lose updates. Real DynamoDB serialises writes to one item; this fixture restores that
    guarantee while leaving every interleaving *between* requests to the threads.
    """
    lock = threading.Lock()
    process_request = BotocoreStubber.process_request

    def serialised(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return process_request(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", serialised)


@pytest.fixture
def make_trigger() -> Callable[..., NewTrigger]:
    def factory(trigger_id: str = "trg-0001", **overrides: Any) -> NewTrigger:
        fields: dict[str, Any] = {
            "trigger_id": trigger_id,
            "source_type": SourceType.S3,
            "source_key": "s3://landing/sales/2026-11-21.csv",
            "source_identity": "s3://landing/sales/2026-11-21.csv#version=v1",
            "source_ref": {
                "bucket": "landing",
                "key": "sales/2026-11-21.csv",
                "version_id": "v1",
                "size": 1024,
                "ratio": 0.25,
            },
            "route": "sales",
            "environment": "prod",
            "dag_id": "ingest_sales",
            "dag_run_id": f"s3__{trigger_id}",
            "conf": {"bucket": "landing", "key": "sales/2026-11-21.csv"},
        }
        fields.update(overrides)
        return NewTrigger(**fields)

    return factory
