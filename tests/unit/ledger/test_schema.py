"""create_table(): the table the local stack and tests use, from the shared schema."""

from __future__ import annotations

from typing import Any

from dagtrigger.ledger.schema import (
    GLOBAL_SECONDARY_INDEXES,
    TABLE_KEY_SCHEMA,
    TTL_ATTRIBUTE,
)


def test_created_table_is_on_demand_with_every_index_and_ttl(dynamodb: Any, table: Any) -> None:
    # Given a table made by create_table (the `table` fixture)
    # When DynamoDB describes it
    description = dynamodb.describe_table(TableName=table.name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]

    # Then it has the key, the five indexes (all attributes projected), on-demand billing and TTL
    assert description["KeySchema"] == TABLE_KEY_SCHEMA
    indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"])
        for index in description["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        index["IndexName"]: (index["KeySchema"], index["Projection"])
        for index in GLOBAL_SECONDARY_INDEXES
    }
    assert set(indexes) == {
        "by_dag",
        "by_source",
        "by_status",
        "by_day",
        "by_pending_event",
        "by_set",
    }
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert ttl == {"AttributeName": TTL_ATTRIBUTE, "TimeToLiveStatus": "ENABLED"}
