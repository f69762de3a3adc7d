"""The trigger history table: one definition shared by the code, template.yaml and local stack.

Only the partition key ``pk`` is on the table. Trigger items use ``pk = trigger_id``; other item
kinds (CLI locks ``lock#cli#ENV`` ...) share the table and, having no ``status``, ``dag_key`` or
``created_day``, stay out of the sparse indexes below.

``by_pending_event`` is sparse on purpose: a record carries ``pending_event`` only from the
write that ends its run until the run's "finished" event is delivered (normally the same
second), so reading it finds the undelivered events of crashed passes without reading the
records of every run that ever ended. File sets use it too: a set carries ``pending_event =
file_set`` while it is open or its run is not recorded (``ledger.file_sets``). ``by_set`` is
sparse as well: only the members of file sets carry ``set_id``.
"""

from __future__ import annotations

from typing import Any, Final

PARTITION_KEY: Final = "pk"
SORT_ATTRIBUTE: Final = "created_at"
TTL_ATTRIBUTE: Final = "expires_at"

INDEX_BY_DAG: Final = "by_dag"
INDEX_BY_SOURCE: Final = "by_source"
INDEX_BY_STATUS: Final = "by_status"
INDEX_BY_DAY: Final = "by_day"
INDEX_BY_PENDING_EVENT: Final = "by_pending_event"
INDEX_BY_SET: Final = "by_set"

#: partition attribute of each index; every index sorts on ``created_at``
INDEX_PARTITION_KEYS: Final[dict[str, str]] = {
    INDEX_BY_DAG: "dag_key",  # "<environment alias>#<dag_id>"
    INDEX_BY_SOURCE: "source_key",
    INDEX_BY_STATUS: "status",
    INDEX_BY_DAY: "created_day",  # "YYYY-MM-DD" (UTC)
    INDEX_BY_PENDING_EVENT: "pending_event",  # the kind of event waiting (ledger.PendingEvent)
    INDEX_BY_SET: "set_id",  # the members of a file set
}

TABLE_KEY_SCHEMA: Final[list[dict[str, str]]] = [
    {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
]

ATTRIBUTE_DEFINITIONS: Final[list[dict[str, str]]] = [
    {"AttributeName": name, "AttributeType": "S"}
    for name in (PARTITION_KEY, *INDEX_PARTITION_KEYS.values(), SORT_ATTRIBUTE)
]

GLOBAL_SECONDARY_INDEXES: Final[list[dict[str, Any]]] = [
    {
        "IndexName": index_name,
        "KeySchema": [
            {"AttributeName": partition_attribute, "KeyType": "HASH"},
            {"AttributeName": SORT_ATTRIBUTE, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    for index_name, partition_attribute in INDEX_PARTITION_KEYS.items()
]


def create_table(dynamodb_client: Any, name: str) -> None:
    """Create the table on demand with TTL enabled (tests and the local stack; SAM in AWS)."""
    dynamodb_client.create_table(
        TableName=name,
        KeySchema=TABLE_KEY_SCHEMA,
        AttributeDefinitions=ATTRIBUTE_DEFINITIONS,
        GlobalSecondaryIndexes=GLOBAL_SECONDARY_INDEXES,
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb_client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    dynamodb_client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
    )
