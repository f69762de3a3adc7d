"""template.yaml must declare the history table exactly as dagtrigger.ledger.schema defines it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dagtrigger.ledger.schema import (
    ATTRIBUTE_DEFINITIONS,
    GLOBAL_SECONDARY_INDEXES,
    INDEX_BY_DAG,
    TABLE_KEY_SCHEMA,
    TTL_ATTRIBUTE,
)

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
GSI_FIELDS = ("IndexName", "KeySchema", "Projection")


class CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that reads short-form intrinsics (!Ref, !Sub, !GetAtt ...) as plain data."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def history_table() -> dict[str, Any]:
    if not TEMPLATE.exists():
        pytest.skip(f"{TEMPLATE} does not exist yet (template.yaml is being written)")
    template = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=CloudFormationLoader)
    tables = {
        name: resource.get("Properties", {})
        for name, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") == "AWS::DynamoDB::Table"
    }
    history = {
        name: properties
        for name, properties in tables.items()
        if any(
            index.get("IndexName") == INDEX_BY_DAG
            for index in properties.get("GlobalSecondaryIndexes") or []
        )
    } or tables
    assert len(history) == 1, (
        f"expected one AWS::DynamoDB::Table for the trigger history in {TEMPLATE.name}, "
        f"found {sorted(history) or 'none'}"
    )
    return next(iter(history.values()))


def _by_name(definitions: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {definition[key]: definition for definition in definitions}


def test_table_key_is_pk_only(history_table: dict[str, Any]) -> None:
    # Given the template's table / Then its key schema is the ledger's
    assert history_table.get("KeySchema") == TABLE_KEY_SCHEMA


def test_attribute_definitions_match(history_table: dict[str, Any]) -> None:
    declared = _by_name(history_table.get("AttributeDefinitions") or [], "AttributeName")
    assert declared == _by_name(ATTRIBUTE_DEFINITIONS, "AttributeName")


def test_global_secondary_indexes_match(history_table: dict[str, Any]) -> None:
    declared = {
        index["IndexName"]: {field: index.get(field) for field in GSI_FIELDS}
        for index in history_table.get("GlobalSecondaryIndexes") or []
    }
    expected = {index["IndexName"]: index for index in GLOBAL_SECONDARY_INDEXES}
    assert declared == expected


def test_ttl_is_enabled_on_expires_at(history_table: dict[str, Any]) -> None:
    assert history_table.get("TimeToLiveSpecification") == {
        "AttributeName": TTL_ATTRIBUTE,
        "Enabled": True,
    }


def test_loader_reads_short_form_intrinsics() -> None:
    # Given YAML with CloudFormation short-form tags
    text = "A: !Ref Table\nB: !GetAtt Table.Arn\nC: !Sub\n  - '${X}'\n  - X: !Ref Y\n"

    # When it is loaded / Then each tag becomes its long form
    assert yaml.load(text, Loader=CloudFormationLoader) == {
        "A": {"Ref": "Table"},
        "B": {"Fn::GetAtt": "Table.Arn"},
        "C": {"Fn::Sub": ["${X}", {"X": {"Ref": "Y"}}]},
    }
