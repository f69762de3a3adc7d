"""Shared Airflow REST semantics, over an in-memory carrier."""

from __future__ import annotations

from typing import Any

from dagtrigger.transports.airflow_api import AirflowApiTrigger, ApiReply, airflow_message


class PausedFlagCarrier:
    max_path_length = None

    def __init__(self) -> None:
        self.paused = True
        self.reads = 0

    def airflow_major(self) -> int:
        return 3

    def call(self, method: str, path: str, **_: Any) -> ApiReply:
        assert (method, path) == ("GET", "/dags/etl")
        self.reads += 1
        return ApiReply(200, {"dag_id": "etl", "is_paused": self.paused})


def test_paused_flag_is_reused_for_a_while_then_read_again(clock):
    # Given a DAG that is paused, then unpaused by its owner
    carrier = PausedFlagCarrier()
    api = AirflowApiTrigger(carrier, monotonic=clock, paused_cache_seconds=30)
    assert api.dag_paused("etl") is True
    carrier.paused = False

    # When asked again within 30 s, and after
    clock.advance(10)
    within = api.dag_paused("etl")
    clock.advance(25)
    after = api.dag_paused("etl")

    # Then the cached answer served the burst, and the change shows once it expired
    assert (within, after) == (True, False)
    assert carrier.reads == 2


def test_airflow_messages_keep_title_detail_and_validation_locations():
    assert airflow_message(
        {"title": "DAG not found", "detail": "DAG with dag_id: 'x' not found"}
    ) == ("DAG not found: DAG with dag_id: 'x' not found")
    assert airflow_message(
        {"detail": [{"loc": ["body", "conf"], "msg": "Input should be a valid dictionary"}]}
    ) == ("body.conf: Input should be a valid dictionary")
    assert airflow_message(
        {"detail": {"reason": "Unique constraint violation", "statement": "hidden"}}
    ) == ("Unique constraint violation")
