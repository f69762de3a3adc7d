"""GET /v1/sets/{id}: a file set's state, members and run, through the real resolver."""

from __future__ import annotations

from dagtrigger import ids
from dagtrigger.ledger.file_sets import CompletionReason, FileSetRef, SetMember
from tests.unit.http.conftest import ApiClient

GROUP = "exports/2026-12-03"


def member(key: str) -> SetMember:
    return SetMember(
        trigger_id=ids.trigger_id(ids.set_member_identity("landing", key, "e1"), "exports"),
        source_key=f"s3://landing/{key}",
        source_identity=ids.set_member_identity("landing", key, "e1"),
        source_ref={"bucket": "landing", "key": key, "size": 6, "etag": "e1"},
        size=6,
    )


def test_a_set_shows_its_state_members_and_completion(api: ApiClient) -> None:
    # Given a set of two parts, the first delivered twice, completed by its count
    sets = api.deps.file_sets
    assert sets is not None
    file_set = FileSetRef(
        set_id=ids.file_set_id("exports", GROUP),
        route="exports",
        group=GROUP,
        environment="prod",
        dag_id="load_export",
        limit=2,
    )
    for key in (f"{GROUP}/part-0.csv", f"{GROUP}/part-0.csv", f"{GROUP}/part-1.csv"):
        sets.join(file_set, member(key))
    assert sets.complete(file_set.set_id, CompletionReason.COUNT, at_least=2) is not None

    # When it is read
    answer = api.request("GET", f"/v1/sets/{file_set.set_id}")

    # Then it says how it completed, with each member and its deliveries; no run recorded yet
    assert answer.status == 200, answer.text
    body = answer.json
    assert (body["status"], body["completion_reason"], body["group"]) == (
        "SET_COMPLETE",
        "count",
        GROUP,
    )
    assert (body["member_count"], body["total_size"], body["generation"]) == (2, 12, 0)
    assert [(item["key"], item["deliveries"]) for item in body["members"]] == [
        (f"{GROUP}/part-0.csv", 2),
        (f"{GROUP}/part-1.csv", 1),
    ]
    assert body["run"] is None
    assert body["links"]["self"] == f"/v1/sets/{file_set.set_id}"


def test_an_unknown_set_is_404_and_a_malformed_id_422(api: ApiClient) -> None:
    missing = api.request("GET", f"/v1/sets/s-{'0' * 32}")
    assert missing.status == 404, missing.text
    assert "no file set" in missing.json["detail"]
    malformed = api.request("GET", f"/v1/sets/t-{'0' * 32}")
    assert malformed.status == 422, malformed.text
