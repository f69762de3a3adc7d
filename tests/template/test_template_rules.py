"""Rules template.yaml must keep, read from the YAML itself (no AWS, no SAM CLI except for IAM).

Conditions and intrinsic functions are evaluated by a small resolver for a given set of parameter
values, so a rule is checked for each deployment shape (transport, routes location, buckets).
"""

from __future__ import annotations

import ast
import functools
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import functions.api.app  # noqa: F401 - assembles the resolver whose document openapi_json gives
from dagtrigger.health import _PROBE_KEY as HEALTH_PROBE_KEY
from dagtrigger.http.routers.openapi import openapi_json
from dagtrigger.ids import TRIGGER_ID_PATTERN, file_set_id, trigger_id
from dagtrigger.ledger import schema
from dagtrigger.ledger.records import OPEN_STATUSES, PendingEvent, TriggerStatus, dag_key
from dagtrigger.settings import Settings
from dagtrigger.sources.schedules.parse import build_target_input, read_target_input
from dagtrigger.transports.cli_lock import cli_lock_key
from dagtrigger.transports.rate_budget import rate_budget_key

pytestmark = pytest.mark.template

REPO_ROOT = Path(__file__).resolve().parents[2]

ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": "dagtrigger",
    "AWS::URLSuffix": "amazonaws.com",
}
# Resource types that have an ARN (or a name that stands for one) a user needs after deploying.
ARN_BEARING_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::Serverless::Function",
    "AWS::Lambda::Function",
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    "AWS::Events::Rule",
    "AWS::S3::Bucket",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::LogGroup",
    "AWS::SNS::Topic",
    "AWS::IAM::Role",
    "AWS::Serverless::HttpApi",
    "AWS::Scheduler::ScheduleGroup",
}
# Actions that support no resource-level permissions, for which Resource "*" is the only choice.
ACTIONS_WITHOUT_RESOURCE_SCOPE = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "scheduler:ListSchedules",
    # only with VpcSubnetIds: Lambda's view of the functions' network interfaces
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
}
SETTINGS_NOT_SET_BY_THE_TEMPLATE = {
    "aws_region",  # Lambda sets AWS_REGION
    "mwaa_inject_host_prefix",  # only false for the local MWAA emulator
}
REQUIRED_PARAMETERS = {"MwaaEnvironmentNames": "analytics-prod"}
# Where the import graph of a function's code is followed: the layer's package and the
# functions' own packages (anything else is a third-party library that reads no Settings).
PROJECT_PACKAGES = {
    "dagtrigger": REPO_ROOT / "layers" / "core" / "dagtrigger",
    "functions": REPO_ROOT / "functions",
}
# How a deployed resource's ARN looks, for values the template passes to Settings.
DEPLOYED_ARN_FORMATS = {
    "AWS::Serverless::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
}
WEBHOOK_ROUTE_KEY = "POST /v1/webhooks/{name}"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:airflow-AbCdEf"
TABLE_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LOGS_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5678efab-12ab-34cd-56ef-1234567890ab"
NO_VALUE = object()


# ---------------------------------------------------------------------------------------------
# A resolver for the intrinsic functions and conditions the template uses
# ---------------------------------------------------------------------------------------------


@dataclass
class ResolvedStack:
    """The template as CloudFormation would see it for one set of parameter values.

    References to resources resolve to placeholders: ``<Name>`` for Ref, ``<Name.Attr>`` for
    GetAtt (so tests can tell which resource a value points at).
    """

    template: dict[str, Any]
    overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.parameters: dict[str, Any] = {}
        for name, spec in self.template["Parameters"].items():
            raw = self.overrides.get(name, spec.get("Default"))
            if raw is None:
                raise AssertionError(f"parameter {name} has no default and no test value")
            raw = str(raw)
            self.parameters[name] = raw.split(",") if spec["Type"] == "CommaDelimitedList" else raw
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def exists(self, logical_id: str) -> bool:
        declared = self.template["Resources"][logical_id].get("Condition")
        return declared is None or self.condition(declared)

    def resources(self, *types: str) -> dict[str, dict[str, Any]]:
        """Resources of these types that this deployment creates, with properties resolved."""
        return {
            logical_id: {**resource, "Properties": self.resolve(resource.get("Properties", {}))}
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] in types and self.exists(logical_id)
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Condition":
                return self.condition(argument)
            if key == "Fn::GetAtt":
                return f"<{argument[0]}.{argument[1]}>"
            if key == "Fn::If":
                name, if_true, if_false = argument
                return self.resolve(if_true if self.condition(name) else if_false)
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in argument)
                return left == right
            if key == "Fn::Not":
                return not self.resolve(argument[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in argument)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in argument)
            if key == "Fn::Join":
                delimiter, items = argument
                return str(self.resolve(delimiter)).join(self.resolve(items))
            if key == "Fn::Split":
                delimiter, text = argument
                return self.resolve(text).split(delimiter)
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(index)]
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::FindInMap":
                mapping, top, second = (self.resolve(v) for v in argument)
                return self.template["Mappings"][mapping][top][second]
        return {
            k: resolved
            for k, resolved in ((k, self.resolve(v)) for k, v in value.items())
            if resolved is not NO_VALUE
        }

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO_PARAMETERS:
            # a test may deploy elsewhere: stack(template, **{"AWS::Partition": "aws-cn"})
            return self.overrides.get(name, PSEUDO_PARAMETERS[name])
        if name in self.parameters:
            return self.parameters[name]
        assert name in self.template["Resources"], f"Ref to unknown {name}"
        return f"<{name}>"

    def _sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        resolved_variables = {name: self.resolve(v) for name, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match[1]
            if name in resolved_variables:
                return str(resolved_variables[name])
            if "." in name and not name.startswith("AWS::"):
                return f"<{name}>"
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)


def stack(template: dict[str, Any], **overrides: str) -> ResolvedStack:
    return ResolvedStack(template, {**REQUIRED_PARAMETERS, **overrides})


def policy_documents(resolved: ResolvedStack) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy document in the deployment: role, function and resource policies."""
    for logical_id, role in resolved.resources("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            yield logical_id, policy["PolicyDocument"]
    for logical_id, resource in resolved.resources(
        "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"
    ).items():
        yield logical_id, resource["Properties"]["PolicyDocument"]
    for logical_id, resource in resolved.resources(
        "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"
    ).items():
        yield logical_id, resource["Properties"]["PolicyDocument"]
    for logical_id, function in resolved.resources("AWS::Serverless::Function").items():
        for policy in function["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "Statement" in policy:
                yield logical_id, policy


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_of_function(resolved: ResolvedStack, function_id: str) -> dict[str, Any]:
    role_reference = resolved.resources("AWS::Serverless::Function")[function_id]["Properties"][
        "Role"
    ]
    role_id = role_reference.strip("<>").removesuffix(".Arn")
    return resolved.resources("AWS::IAM::Role")[role_id]


def attached_policy_documents(
    resolved: ResolvedStack, role: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """The role's inline policies and the template's own managed policies attached to it."""
    for policy in role["Properties"].get("Policies", []):
        yield policy["PolicyDocument"]
    managed = resolved.resources("AWS::IAM::ManagedPolicy")
    for reference in role["Properties"].get("ManagedPolicyArns", []):
        logical_id = str(reference).strip("<>")
        assert logical_id in managed, f"{reference} is not a managed policy of this template"
        yield managed[logical_id]["Properties"]["PolicyDocument"]


def function_allowed_actions(resolved: ResolvedStack, function_id: str) -> dict[str, list[str]]:
    """action -> resources the function's role allows it on, over every policy it carries."""
    return allowed_actions(role_of_function(resolved, function_id), resolved)


def allowed_actions(role: dict[str, Any], resolved: ResolvedStack) -> dict[str, list[str]]:
    """action -> resources it is allowed on, over every policy of the role."""
    allowed: dict[str, list[str]] = {}
    for document in attached_policy_documents(resolved, role):
        for statement in statements(document):
            if statement["Effect"] != "Allow":
                continue
            for action in as_list(statement["Action"]):
                allowed.setdefault(action, []).extend(as_list(statement["Resource"]))
    return allowed


def function_timeout(resolved: ResolvedStack, function: dict[str, Any]) -> int:
    timeout = function["Properties"].get(
        "Timeout", resolved.template["Globals"]["Function"]["Timeout"]
    )
    return int(timeout)


def number_parameter_floor(resolved: ResolvedStack, value: Any) -> int:
    """The least a property can be: itself, or its Number parameter's MinValue or Default."""
    for name, spec in resolved.template["Parameters"].items():
        if value == resolved.parameters[name] and spec["Type"] == "Number" and "MinValue" in spec:
            return min(int(spec["MinValue"]), int(spec["Default"]))
    return int(value)


ALL_SHAPES = [
    pytest.param({}, id="defaults"),
    pytest.param({"MwaaTransport": "cli", "SourceBucketNames": "landing"}, id="cli"),
    pytest.param(
        {
            "MwaaTransport": "airflow_rest",
            "CreateSourceBucket": "true",
            "AirflowCredentialsSecretArn": SECRET_ARN,
            "RoutesLocation": "ssm:/dagtrigger/routes",
            "AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:ops",
        },
        id="airflow_rest-ssm",
    ),
    pytest.param(
        {
            "SourceBucketNames": "landing,archive",
            "RoutesLocation": "s3://config-bucket/routes.yaml",
        },
        id="s3-routes",
    ),
    pytest.param(
        {
            "MwaaTransport": "cli",
            "MwaaEnvironmentNames": "sales,finance,ops",
            "VpcSubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
            "VpcSecurityGroupIds": "sg-0123456789abcdef0",
        },
        id="vpc-three-environments",
    ),
]


# ---------------------------------------------------------------------------------------------
# Logs, queues, table
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", ALL_SHAPES)
def test_every_function_logs_to_its_own_log_group_with_retention(
    raw_template: dict[str, Any], overrides: dict[str, str]
) -> None:
    # Given a deployment shape
    resolved = stack(raw_template, **overrides)
    log_groups = resolved.resources("AWS::Logs::LogGroup")
    global_logging = resolved.resolve(raw_template["Globals"]["Function"].get("LoggingConfig", {}))
    functions = resolved.resources("AWS::Serverless::Function")
    assert functions

    for function_id, function in functions.items():
        # When we follow the function's LoggingConfig to its log group
        logging = {**global_logging, **function["Properties"].get("LoggingConfig", {})}
        log_group_id = logging.get("LogGroup", "").strip("<>")

        # Then it is a log group of this template with a retention, written as JSON
        assert log_group_id in log_groups, f"{function_id} has no log group of its own"
        assert int(log_groups[log_group_id]["Properties"]["RetentionInDays"]) > 0
        assert logging["LogFormat"] == "JSON"


def test_log_retention_parameter_offers_only_valid_cloudwatch_values(
    raw_template: dict[str, Any],
) -> None:
    valid = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557}
    valid |= {2922, 3288, 3653}
    spec = raw_template["Parameters"]["LogRetentionDays"]
    assert {int(days) for days in spec["AllowedValues"]} <= valid
    assert int(spec["Default"]) in valid


def test_queue_visibility_covers_six_function_timeouts_plus_the_batching_window(
    raw_template: dict[str, Any],
) -> None:
    # Given every SQS event source of every function
    resolved = stack(raw_template)
    queues = resolved.resources("AWS::SQS::Queue")
    sources = 0
    for function_id, function in resolved.resources("AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            sources += 1
            queue_id = event["Properties"]["Queue"].strip("<>").removesuffix(".Arn")
            needed = 6 * function_timeout(resolved, function) + int(
                event["Properties"].get("MaximumBatchingWindowInSeconds", 0)
            )

            # Then the queue hides a received message long enough for retries inside Lambda
            visibility = int(queues[queue_id]["Properties"]["VisibilityTimeout"])
            assert visibility >= needed, f"{queue_id} of {function_id}: {visibility} < {needed}"
    assert sources >= 1


def test_function_timeout_covers_a_full_batch_of_trigger_budgets(
    raw_template: dict[str, Any],
) -> None:
    # Given the trigger budget every function gets and each SQS event source's batch size
    resolved = stack(raw_template)
    variables = resolved.resolve(raw_template["Globals"]["Function"]["Environment"])["Variables"]
    budget = float(variables["TRIGGER_BUDGET_SECONDS"])
    for function_id, function in resolved.resources("AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            # Then a batch whose records all exhaust their budget still ends before the timeout
            worst_case = int(event["Properties"]["BatchSize"]) * budget
            assert function_timeout(resolved, function) > worst_case, function_id


def test_trigger_lease_outlasts_every_function_timeout(raw_template: dict[str, Any]) -> None:
    # Given the lease a claimed trigger keeps, When any function runs to its timeout
    resolved = stack(raw_template)
    variables = resolved.resolve(raw_template["Globals"]["Function"]["Environment"])["Variables"]
    lease = int(variables["TRIGGER_LEASE_SECONDS"])

    # Then no redelivery can take over a trigger its claimer may still be working on
    for function_id, function in resolved.resources("AWS::Serverless::Function").items():
        assert lease >= function_timeout(resolved, function), function_id


def logical_id_of(reference: Any) -> str:
    """The logical id behind a resolved ``<Id>`` or ``<Id.Attribute>`` placeholder."""
    return str(reference).strip("<>").split(".")[0]


def dead_letter_sources(resolved: ResolvedStack) -> dict[str, list[str]]:
    """Queue -> what sends it the messages or events that failed: a queue's redrive policy, a
    function's DeadLetterQueue (after Lambda's asynchronous retries), a Scheduler schedule's or
    an EventBridge rule target's DeadLetterConfig (deliveries that failed)."""
    sources: dict[str, list[str]] = {}

    def add(reference: Any, source: str) -> None:
        sources.setdefault(logical_id_of(reference), []).append(source)

    for queue_id, queue in resolved.resources("AWS::SQS::Queue").items():
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive is not None:
            add(redrive["deadLetterTargetArn"], f"{queue_id} RedrivePolicy")
    for function_id, function in resolved.resources("AWS::Serverless::Function").items():
        dead_letter_queue = function["Properties"].get("DeadLetterQueue")
        if dead_letter_queue is not None:
            assert dead_letter_queue["Type"] == "SQS", function_id
            add(dead_letter_queue["TargetArn"], f"{function_id} DeadLetterQueue")
        for event_id, event in function["Properties"].get("Events", {}).items():
            config = event["Properties"].get("DeadLetterConfig")
            if event["Type"] == "ScheduleV2" and config is not None:
                add(config["Arn"], f"{function_id} {event_id} DeadLetterConfig")
    for rule_id, rule in resolved.resources("AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            if "DeadLetterConfig" in target:
                add(target["DeadLetterConfig"]["Arn"], f"{rule_id} {target['Id']}")
    return sources


def test_consumed_queues_move_a_failing_message_to_the_dead_letter_queue_after_five_receives(
    raw_template: dict[str, Any],
) -> None:
    # Given every queue, the queues functions consume, and where failures are sent
    resolved = stack(raw_template, SourceBucketNames="landing")
    queues = resolved.resources("AWS::SQS::Queue")
    dead_letter_queues = dead_letter_sources(resolved)
    consumed = {
        logical_id_of(event["Properties"]["Queue"])
        for function in resolved.resources("AWS::Serverless::Function").values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    }

    # Then each consumed queue hands a message that keeps failing to a queue of this template
    assert consumed
    for queue_id in consumed:
        redrive = queues[queue_id]["Properties"].get("RedrivePolicy")
        assert redrive is not None, f"{queue_id} has no DLQ"
        assert logical_id_of(redrive["deadLetterTargetArn"]) in queues, queue_id
        assert number_parameter_floor(resolved, redrive["maxReceiveCount"]) >= 5

    # And every queue is either consumed or a dead-letter queue, never both, never neither
    assert set(dead_letter_queues) <= set(queues)
    assert consumed.isdisjoint(dead_letter_queues)
    assert set(queues) == consumed | set(dead_letter_queues)


def test_dead_letter_queues_accept_redrive_only_from_their_source_queues(
    raw_template: dict[str, Any],
) -> None:
    # Given each dead-letter queue and the queues that redrive into it
    resolved = stack(raw_template)
    queues = resolved.resources("AWS::SQS::Queue")
    redriven_from: dict[str, list[str]] = {}
    for queue_id, queue in queues.items():
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive is not None:
            redriven_from.setdefault(logical_id_of(redrive["deadLetterTargetArn"]), []).append(
                queue_id
            )
    dead_letter_queues = set(dead_letter_sources(resolved))
    assert {"S3EventsDeadLetterQueue", "SchedulesDeadLetterQueue"} <= dead_letter_queues

    for queue_id in dead_letter_queues:
        allowed = queues[queue_id]["Properties"].get("RedriveAllowPolicy")
        sources = redriven_from.get(queue_id, [])
        # Then a queue's DLQ admits exactly that queue, and one fed only by Lambda or
        # Scheduler admits no queue at all
        if sources:
            assert allowed == {
                "redrivePermission": "byQueue",
                "sourceQueueArns": [
                    f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queues[source]['Properties']['QueueName']}"
                    for source in sources
                ],
            }, queue_id
        else:
            assert allowed == {"redrivePermission": "denyAll"}, queue_id


def test_every_queue_keeps_messages_14_days_encrypted(raw_template: dict[str, Any]) -> None:
    queues = stack(raw_template).resources("AWS::SQS::Queue")
    assert queues
    for queue_id, queue in queues.items():
        assert int(queue["Properties"]["MessageRetentionPeriod"]) == 14 * 24 * 3600, queue_id
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, queue_id


def test_history_table_has_the_ledger_keys_and_is_protected(raw_template: dict[str, Any]) -> None:
    # Given the history table
    resource = raw_template["Resources"]["TriggerHistoryTable"]
    table = resource["Properties"]

    # Then its keys are the ones the ledger code uses
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    indexes = {
        index["IndexName"]: (
            [(key["AttributeName"], key["KeyType"]) for key in index["KeySchema"]],
            index["Projection"],
        )
        for index in table["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        name: ([(partition, "HASH"), ("created_at", "RANGE")], {"ProjectionType": "ALL"})
        for name, partition in {
            "by_dag": "dag_key",
            "by_source": "source_key",
            "by_status": "status",
            "by_day": "created_day",
            "by_pending_event": "pending_event",
            "by_set": "set_id",
        }.items()
    }
    assert all(attribute["AttributeType"] == "S" for attribute in table["AttributeDefinitions"])
    assert {attribute["AttributeName"] for attribute in table["AttributeDefinitions"]} == {
        "pk", "dag_key", "source_key", "status", "created_day", "pending_event", "set_id",
        "created_at",
    }  # fmt: skip

    # And it is on demand, expires records, can be restored and outlives the stack (encryption:
    # test_history_table_is_encrypted_with_the_customer_key_only_when_one_is_given)
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


# ---------------------------------------------------------------------------------------------
# IAM: least privilege, per function, per transport and routes location
# ---------------------------------------------------------------------------------------------
#
# A small evaluator of the template's Allow statements (actions and resources with IAM's "*" and
# "?" wildcards, and the condition operators the template uses) answers "may this function make
# this call?", so the rules below are written as the calls the code makes, with the keys the code
# builds (dagtrigger.ids.trigger_id, cli_lock_key, the health probe, the ledger's statuses).

#: every function of the template
FUNCTIONS = ["S3EventsFunction", "SchedulesFunction", "ApiFunction", "ReconcilerFunction"]
LEADING_KEYS = "dynamodb:LeadingKeys"
TABLE = "<TriggerHistoryTable.Arn>"
TRIGGER_KEY = trigger_id("s3://landing/sales/2026-11-21.csv#v1", "sales-csv")
#: a file set's own record
SET_KEY = file_set_id("exports", "exports/2026-12-03")
LOCK_KEY = cli_lock_key(REQUIRED_PARAMETERS["MwaaEnvironmentNames"])
OTHER_LOCK_KEY = cli_lock_key("someone-elses-environment")
RATE_KEY = rate_budget_key(REQUIRED_PARAMETERS["MwaaEnvironmentNames"], 1_795_000_000)
OTHER_RATE_KEY = rate_budget_key("someone-elses-environment", 1_795_000_000)
#: one partition value of each index, as the ledger writes it
INDEX_PARTITIONS = {
    schema.INDEX_BY_DAG: [dag_key("prod", "ingest_sales")],
    schema.INDEX_BY_SOURCE: ["s3://landing/sales/2026-11-21.csv"],
    schema.INDEX_BY_STATUS: [str(status) for status in TriggerStatus],
    schema.INDEX_BY_DAY: ["2026-11-21"],
    schema.INDEX_BY_PENDING_EVENT: [str(event) for event in PendingEvent],
    schema.INDEX_BY_SET: [SET_KEY],
}
#: the indexes history reads use (the api function's); the reconciler's own are below
HISTORY_INDEXES = [
    schema.INDEX_BY_DAG, schema.INDEX_BY_SOURCE, schema.INDEX_BY_STATUS, schema.INDEX_BY_DAY,
]  # fmt: skip
ITEM_KEYS = [
    TRIGGER_KEY,
    SET_KEY,
    LOCK_KEY,
    OTHER_LOCK_KEY,
    RATE_KEY,
    OTHER_RATE_KEY,
    HEALTH_PROBE_KEY,
    "config#anything",
    "x",
]
DYNAMODB_ACTIONS = [
    f"dynamodb:{name}"
    for name in (
        "GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem", "BatchGetItem",
        "BatchWriteItem", "Query", "Scan", "PartiQLSelect", "PartiQLInsert", "PartiQLUpdate",
        "PartiQLDelete", "DescribeTable", "UpdateTable", "DeleteTable",
    )
]  # fmt: skip
QUEUES = ["S3EventsQueue", "S3EventsDeadLetterQueue", "SchedulesDeadLetterQueue"]
SQS_ACTIONS = [
    f"sqs:{name}"
    for name in (
        "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes",
        "GetQueueUrl", "SendMessage", "PurgeQueue", "DeleteQueue", "SetQueueAttributes",
        "StartMessageMoveTask",
    )
]  # fmt: skip


@dataclass(frozen=True)
class Call:
    """One request as IAM sees it: action, resource and the request's condition keys."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def values(self, key: str) -> tuple[str, ...]:
        return dict(self.context).get(key, ())


def item_call(action: str, key: str) -> Call:
    """A call on one history item (or, for a Query, one partition of the table)."""
    return Call(action, TABLE, ((LEADING_KEYS, (key,)),))


def index_call(action: str, index: str, partition: str) -> Call:
    """A call on one partition of an index (its LeadingKeys are the index's partition key)."""
    return Call(action, f"{TABLE}/index/{index}", ((LEADING_KEYS, (partition,)),))


@functools.cache
def _wildcard(pattern: str) -> re.Pattern[str]:
    """IAM's wildcards: "*" any run of characters, "?" one character; nothing else is special."""
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.DOTALL)


def wildcard_match(pattern: str, value: str) -> bool:
    return _wildcard(str(pattern)).fullmatch(value) is not None


_COMPARISONS = {
    "StringEquals": lambda expected, value: expected == value,
    "StringLike": wildcard_match,
    "ArnEquals": lambda expected, value: expected == value,
    "ArnLike": wildcard_match,
    "Bool": lambda expected, value: expected.lower() == value.lower(),
}


def condition_holds(condition: dict[str, Any], call: Call) -> bool:
    """IAM's condition semantics for the operators the template uses (others fail the test)."""
    for operator_name, tests in condition.items():
        qualifier, _, base = operator_name.rpartition(":")
        assert base in _COMPARISONS, f"the evaluator does not know {operator_name}"
        compare = _COMPARISONS[base]
        for key, expected in tests.items():
            accepted = [str(value) for value in as_list(expected)]
            matching = [
                any(compare(option, value) for option in accepted) for value in call.values(key)
            ]
            if qualifier == "ForAllValues":
                holds = all(matching)  # vacuously true when the request has no such key
            elif qualifier == "ForAnyValue":
                holds = any(matching)
            else:
                assert qualifier == "", operator_name
                holds = matching == [True]  # a single-valued key: present, and matching
            if not holds:
                return False
    return True


def statement_allows(statement: dict[str, Any], call: Call) -> bool:
    return (
        statement["Effect"] == "Allow"
        and any(wildcard_match(action, call.action) for action in as_list(statement["Action"]))
        and any(
            wildcard_match(resource, call.resource) for resource in as_list(statement["Resource"])
        )
        and condition_holds(statement.get("Condition", {}), call)
    )


def function_statements(resolved: ResolvedStack, function_id: str) -> list[dict[str, Any]]:
    """Every statement of every policy the function's role carries."""
    role = role_of_function(resolved, function_id)
    return [
        statement
        for document in attached_policy_documents(resolved, role)
        for statement in statements(document)
    ]


def may(resolved: ResolvedStack, function_id: str, call: Call) -> bool:
    """Whether the function's role allows ``call`` (no Deny statement is attached to a role)."""
    return allows(function_statements(resolved, function_id), call)


def allows(policy: list[dict[str, Any]], call: Call) -> bool:
    return any(statement_allows(statement, call) for statement in policy)


def history_universe() -> list[Call]:
    """Every DynamoDB call on the history table and its indexes worth asking about."""
    calls = [item_call(action, key) for action in DYNAMODB_ACTIONS for key in ITEM_KEYS]
    # DynamoDB sets LeadingKeys on every call that names an item or a partition; these name none
    calls += [
        Call(f"dynamodb:{action}", TABLE)
        for action in ("Scan", "DescribeTable", "UpdateTable", "DeleteTable")
    ]
    calls += [
        index_call(action, index, partition)
        for action in DYNAMODB_ACTIONS
        for index, partitions in INDEX_PARTITIONS.items()
        for partition in [*partitions, "x"]
    ]
    return calls


RECORD_ACTIONS = ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem")
#: what each function's code does with the history table: claims and status changes (conditional
#: put, read-back, conditional update) of trigger records (and, for a marker's listing, a batch
#: read of which members are recorded), the API's health probe and history
#: reads, the reconciler's reads of open records by status and its conditional updates
HISTORY_CALLS = {
    "S3EventsFunction": {
        item_call(action, key) for action in RECORD_ACTIONS for key in (TRIGGER_KEY, SET_KEY)
    }
    | {item_call("dynamodb:BatchGetItem", TRIGGER_KEY)}
    | {index_call("dynamodb:Query", schema.INDEX_BY_SET, SET_KEY)}
    | {index_call("dynamodb:Query", schema.INDEX_BY_SOURCE, "s3://landing/sales/2026-11-21.csv")},
    "SchedulesFunction": {item_call(action, TRIGGER_KEY) for action in RECORD_ACTIONS},
    "ApiFunction": {item_call(action, TRIGGER_KEY) for action in RECORD_ACTIONS}
    | {item_call("dynamodb:GetItem", HEALTH_PROBE_KEY), item_call("dynamodb:GetItem", SET_KEY)}
    | {index_call("dynamodb:Query", schema.INDEX_BY_SET, SET_KEY)}
    | {
        index_call("dynamodb:Query", index, partition)
        for index in HISTORY_INDEXES
        for partition in [*INDEX_PARTITIONS[index], "x"]
    },
    "ReconcilerFunction": {
        item_call(action, key)
        for action in ("dynamodb:UpdateItem", "dynamodb:PutItem")
        for key in (TRIGGER_KEY, SET_KEY)
    }
    | {index_call("dynamodb:Query", schema.INDEX_BY_SET, SET_KEY)}
    | {index_call("dynamodb:Query", schema.INDEX_BY_PENDING_EVENT, PendingEvent.FILE_SET)}
    | {
        index_call("dynamodb:Query", schema.INDEX_BY_STATUS, str(status))
        for status in {TriggerStatus.RECEIVED, *OPEN_STATUSES}
    }
    | {index_call("dynamodb:Query", schema.INDEX_BY_PENDING_EVENT, PendingEvent.RUN_FINISHED)},
}
#: what the transport keeps in the table: the CLI transport's lease on the stack's environment
#: (a conditional put, a conditional delete); the REST transports' shared per-second budget of
#: calls to the environment (one conditional update of the second's counter per call)
TRANSPORT_CALLS = {
    "cli": {item_call("dynamodb:PutItem", LOCK_KEY), item_call("dynamodb:DeleteItem", LOCK_KEY)},
    "invoke_rest_api": {item_call("dynamodb:UpdateItem", RATE_KEY)},
    "airflow_rest": {item_call("dynamodb:UpdateItem", RATE_KEY)},
}


@pytest.mark.parametrize(
    "overrides",
    [
        *ALL_SHAPES,
        pytest.param(
            {"HistoryTableKmsKeyArn": TABLE_KEY_ARN, "LogsKmsKeyArn": LOGS_KEY_ARN}, id="kms-keys"
        ),
    ],
)
def test_no_allow_statement_has_a_wildcard_action_or_an_unscoped_resource(
    raw_template: dict[str, Any], overrides: dict[str, str]
) -> None:
    resolved = stack(raw_template, **overrides)
    checked = 0
    for owner, document in policy_documents(resolved):
        for statement in statements(document):
            if statement["Effect"] != "Allow":
                continue  # Deny statements (deny insecure transport) may be broad on purpose
            checked += 1
            actions = as_list(statement["Action"])
            assert not [a for a in actions if "*" in a or "?" in a], (
                f"{owner} {statement.get('Sid')}: {actions}"
            )
            resources = as_list(statement.get("Resource", []))
            if "*" in resources:
                assert set(actions) <= ACTIONS_WITHOUT_RESOURCE_SCOPE, f"{owner}: {statement}"
    assert checked > 0


@pytest.mark.parametrize("overrides", ALL_SHAPES)
def test_resource_wildcards_stand_only_for_names_made_at_run_time(
    raw_template: dict[str, Any], overrides: dict[str, str]
) -> None:
    # Given every resource pattern of every Allow statement
    resolved = stack(raw_template, **overrides)
    wildcards = {
        str(resource)
        for _, document in policy_documents(resolved)
        for statement in statements(document)
        if statement["Effect"] == "Allow"
        for resource in as_list(statement.get("Resource", []))
        if "*" in str(resource) or "?" in str(resource)
    }

    # Then the only ones are: actions without resource types, secrets' random ARN suffix, and
    # the schedules the API creates in the stack's group (no more "index/*": each index by name);
    # in a VPC, the network interfaces Lambda makes (and the subnets and security groups it
    # makes them in) in the stack's account and Region
    vpc = [
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/*"
        for kind in ("network-interface", "subnet", "security-group")
    ]
    assert wildcards == {
        "*",
        webhook_secrets_arn(resolved),
        f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/<ScheduleGroup>/*",
        *(vpc if resolved.condition("AttachToVpc") else []),
    }


def test_sam_adds_no_managed_policy_to_the_function_roles(
    translated_template: dict[str, Any],
) -> None:
    # Given the template after the SAM transform
    roles = {
        logical_id: resource
        for logical_id, resource in translated_template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    }

    # Then SAM generated no role (which would carry AWSLambdaSQSQueueExecutionRole, Resource "*")
    # and no role has an AWS managed policy: only the template's own managed policies, some of
    # them only when a condition holds
    own_policies = {
        logical_id
        for logical_id, resource in translated_template["Resources"].items()
        if resource["Type"] == "AWS::IAM::ManagedPolicy"
    }
    assert roles
    for logical_id, role in roles.items():
        for reference in role["Properties"].get("ManagedPolicyArns", []):
            if "Fn::If" in reference:
                _, reference, otherwise = reference["Fn::If"]
                assert otherwise == {"Ref": "AWS::NoValue"}, (logical_id, otherwise)
            assert reference == {"Ref": reference.get("Ref")}, (logical_id, reference)
            assert reference["Ref"] in own_policies, (logical_id, reference)
    functions = [
        resource
        for resource in translated_template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
    ]
    assert functions
    for function in functions:
        assert function["Properties"]["Role"]["Fn::GetAtt"][0] in roles


def test_every_function_has_a_role_of_its_own(raw_template: dict[str, Any]) -> None:
    resolved = stack(raw_template)
    roles = [
        logical_id_of(function["Properties"]["Role"])
        for function in resolved.resources("AWS::Serverless::Function").values()
    ]
    assert sorted(resolved.resources("AWS::Serverless::Function")) == sorted(FUNCTIONS)
    assert len(set(roles)) == len(roles) == len(FUNCTIONS)


@pytest.mark.parametrize("key_arn", ["", TABLE_KEY_ARN])
def test_every_function_carries_the_airflow_policy_and_the_table_key_policy_when_there_is_a_key(
    raw_template: dict[str, Any], key_arn: str
) -> None:
    # Given a deployment with or without a customer managed key on the history table
    resolved = stack(raw_template, HistoryTableKmsKeyArn=key_arn)

    for function_id in resolved.resources("AWS::Serverless::Function"):
        # When we list the managed policies of the function's role
        attached = role_of_function(resolved, function_id)["Properties"]["ManagedPolicyArns"]

        # Then each function reaches Airflow and the routes through the shared policy, and
        # uses the table's key only when the table has one
        expected = ["<AirflowAccessPolicy>", *(["<HistoryTableKeyPolicy>"] if key_arn else [])]
        assert attached == expected, function_id


@pytest.fixture(params=FUNCTIONS)
def function_id(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("transport", ["invoke_rest_api", "cli", "airflow_rest"])
def test_each_function_reaches_exactly_the_history_items_and_indexes_its_code_uses(
    raw_template: dict[str, Any], function_id: str, transport: str
) -> None:
    # Given a deployment with this transport (it keeps a lock, or rate counters, in the table)
    resolved = stack(raw_template, MwaaTransport=transport)
    expected = HISTORY_CALLS[function_id] | TRANSPORT_CALLS[transport]

    # When we ask, for every DynamoDB action on every item, key prefix and index partition,
    # whether the function's role allows it
    policy = function_statements(resolved, function_id)
    allowed = {call for call in history_universe() if allows(policy, call)}

    # Then it may make exactly the calls its code makes: trigger records by their "t-" keys,
    # the CLI lock of the stack's environment only, no scan, no batch, no PartiQL, no delete
    # of a record; the reconciler queries open statuses and updates, the s3 and schedules
    # functions never query, only the api function reads history
    assert allowed == expected


def test_no_function_may_delete_a_trigger_record_whatever_the_transport(
    raw_template: dict[str, Any],
) -> None:
    # The CLI transport used to be granted DeleteItem on the whole table, to release its lock.
    for transport in ("invoke_rest_api", "cli", "airflow_rest"):
        resolved = stack(raw_template, MwaaTransport=transport)
        for function_id in FUNCTIONS:
            assert not may(resolved, function_id, item_call("dynamodb:DeleteItem", TRIGGER_KEY))
            assert may(resolved, function_id, item_call("dynamodb:DeleteItem", LOCK_KEY)) is (
                transport == "cli"
            )


def test_the_template_key_prefixes_are_the_ones_the_code_writes(
    raw_template: dict[str, Any],
) -> None:
    # Given the LeadingKeys the roles name, with the CLI transport and with a REST one
    leading = {
        str(value)
        for transport in ("cli", "invoke_rest_api")
        for _, document in policy_documents(stack(raw_template, MwaaTransport=transport))
        for statement in statements(document)
        for tests in statement.get("Condition", {}).values()
        for value in as_list(tests.get(LEADING_KEYS, []))
    }
    rate_pattern = f"rate#{REQUIRED_PARAMETERS['MwaaEnvironmentNames']}#*"

    # Then each is a key (or prefix) the code builds: trigger ids, file set ids, the stack
    # environment's CLI lock and rate counters, the health probe, the statuses the reconciler
    # reads, the outbox of undelivered "DAG Run Finished" events and the sets in progress
    assert leading == {
        "t-*",
        "s-*",
        "s3://*",  # the history of S3 objects, by source (a backfill's lookup)
        str(PendingEvent.FILE_SET),
        LOCK_KEY,
        rate_pattern,
        HEALTH_PROBE_KEY,
        *(str(status) for status in {TriggerStatus.RECEIVED, *OPEN_STATUSES}),
        str(PendingEvent.RUN_FINISHED),
    }
    assert re.fullmatch(TRIGGER_ID_PATTERN, TRIGGER_KEY)
    assert TRIGGER_ID_PATTERN.startswith("^t-")
    assert wildcard_match(rate_pattern, RATE_KEY)
    assert not wildcard_match(rate_pattern, OTHER_RATE_KEY)
    # And no prefix reaches another kind of item
    assert wildcard_match("s-*", SET_KEY)
    for other_kind in (HEALTH_PROBE_KEY, LOCK_KEY, RATE_KEY):
        assert not wildcard_match("t-*", other_kind)
        assert not wildcard_match("s-*", other_kind)
    assert not wildcard_match(rate_pattern, TRIGGER_KEY)


def test_only_the_s3_function_consumes_its_queue_and_only_the_schedules_function_dead_letters(
    raw_template: dict[str, Any], function_id: str
) -> None:
    # Given every SQS action on every queue of the stack
    resolved = stack(raw_template, SourceBucketNames="landing")
    universe = [Call(action, f"<{queue}.Arn>") for action in SQS_ACTIONS for queue in QUEUES]

    # When we ask which of them the function may make
    allowed = {
        (call.action, call.resource) for call in universe if may(resolved, function_id, call)
    }

    # Then the s3 events function consumes its own queue (the event source mapping) and changes
    # a failed message's visibility there (the retry backoff); the schedules function sends its
    # failed events to its dead-letter queue (Lambda does, as the function); the api function
    # and the reconciler touch no queue
    expected = {
        "S3EventsFunction": {
            (action, "<S3EventsQueue.Arn>")
            for action in (
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
            )
        },
        "SchedulesFunction": {("sqs:SendMessage", "<SchedulesDeadLetterQueue.Arn>")},
        "ApiFunction": set(),
        "ReconcilerFunction": set(),
    }
    assert allowed == expected[function_id]


@pytest.mark.parametrize(
    ("transport", "expected_actions"),
    [
        ("invoke_rest_api", {"airflow:GetEnvironment", "airflow:InvokeRestApi"}),
        ("cli", {"airflow:GetEnvironment", "airflow:CreateCliToken"}),
        ("airflow_rest", set()),
    ],
)
def test_airflow_permissions_follow_the_transport(
    raw_template: dict[str, Any], function_id: str, transport: str, expected_actions: set[str]
) -> None:
    # Given a deployment with this transport
    resolved = stack(raw_template, MwaaTransport=transport)

    # When we list what the function may do on Airflow
    allowed = function_allowed_actions(resolved, function_id)
    transport_actions = {
        action: resources for action, resources in allowed.items() if action.startswith("airflow:")
    }

    # Then exactly the transport's calls are allowed, each on this environment only
    assert set(transport_actions) == expected_actions
    environment_arn = f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/analytics-prod"
    for action in {"airflow:GetEnvironment", "airflow:CreateCliToken"} & set(transport_actions):
        assert transport_actions[action] == [environment_arn]


def test_invoke_rest_api_is_granted_on_the_user_airflow_role_only(
    raw_template: dict[str, Any],
    function_id: str,
) -> None:
    resolved = stack(raw_template, MwaaTransport="invoke_rest_api")
    allowed = function_allowed_actions(resolved, function_id)
    resources = allowed["airflow:InvokeRestApi"]
    assert resources == [f"arn:aws:airflow:{REGION}:{ACCOUNT}:role/analytics-prod/User"]
    assert all(resource.endswith("/User") for resource in resources)


#: MWAA's default quota of environments per account and Region: the most the template can grant
MAX_ENVIRONMENTS = 10
ENVIRONMENT_LISTS = [
    pytest.param(["analytics-prod"], id="one"),
    pytest.param(["sales", "finance", "ops_2"], id="three"),
    pytest.param([f"env-{n}" for n in range(MAX_ENVIRONMENTS)], id="ten"),
]


def airflow_grants(resolved: ResolvedStack, function_id: str) -> dict[str, list[str]]:
    """The function's airflow:* actions and the resources each is allowed on."""
    allowed = function_allowed_actions(resolved, function_id)
    return {
        action: sorted(map(str, r))
        for action, r in allowed.items()
        if action.startswith("airflow:")
    }


def leading_keys(resolved: ResolvedStack, sid: str) -> list[str]:
    """The LeadingKeys of one statement of the Airflow access policy."""
    policy = resolved.resources("AWS::IAM::ManagedPolicy")["AirflowAccessPolicy"]
    (statement,) = [
        s for s in statements(policy["Properties"]["PolicyDocument"]) if s["Sid"] == sid
    ]
    (tests,) = statement["Condition"].values()
    return sorted(map(str, as_list(tests[LEADING_KEYS])))


@pytest.mark.parametrize("names", ENVIRONMENT_LISTS)
@pytest.mark.parametrize("transport", ["invoke_rest_api", "cli"])
def test_airflow_is_granted_on_exactly_the_listed_environments(
    raw_template: dict[str, Any], function_id: str, names: list[str], transport: str
) -> None:
    # Given a deployment listing one, three or ten environments
    resolved = stack(raw_template, MwaaTransport=transport, MwaaEnvironmentNames=",".join(names))

    # When we list what the function may do on Airflow
    grants = airflow_grants(resolved, function_id)

    # Then each action names exactly those environments' ARNs: no other, none twice, no wildcard
    environments = sorted(f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{n}" for n in names)
    user_roles = sorted(f"arn:aws:airflow:{REGION}:{ACCOUNT}:role/{n}/User" for n in names)
    expected = {"airflow:GetEnvironment": environments}
    if transport == "cli":
        expected["airflow:CreateCliToken"] = environments
    else:
        expected["airflow:InvokeRestApi"] = user_roles
    assert grants == expected
    assert not [arn for arns in grants.values() for arn in arns if "*" in arn or "?" in arn]


@pytest.mark.parametrize("names", ENVIRONMENT_LISTS)
def test_the_rate_budget_and_the_cli_lock_are_granted_per_listed_environment(
    raw_template: dict[str, Any], names: list[str]
) -> None:
    joined = ",".join(names)
    rest = stack(raw_template, MwaaTransport="invoke_rest_api", MwaaEnvironmentNames=joined)
    cli = stack(raw_template, MwaaTransport="cli", MwaaEnvironmentNames=joined)

    # Then each environment has its rate counters and its CLI lock, as the code names them
    assert leading_keys(rest, "ShareAirflowRateBudget") == sorted(f"rate#{n}#*" for n in names)
    assert leading_keys(cli, "HoldMwaaCliLock") == sorted(cli_lock_key(n) for n in names)
    for name in names:
        assert any(
            wildcard_match(p, rate_budget_key(name, 1_795_000_000))
            for p in leading_keys(rest, "ShareAirflowRateBudget")
        )
    # And another environment's are not
    for pattern in leading_keys(rest, "ShareAirflowRateBudget"):
        assert not wildcard_match(pattern, OTHER_RATE_KEY)
    assert OTHER_LOCK_KEY not in leading_keys(cli, "HoldMwaaCliLock")


@pytest.mark.parametrize("names", ENVIRONMENT_LISTS)
def test_the_functions_refuse_routes_naming_an_environment_iam_does_not_grant(
    raw_template: dict[str, Any], names: list[str]
) -> None:
    # Given a deployment listing these environments
    resolved = stack(raw_template, MwaaEnvironmentNames=",".join(names))

    # Then every function is told exactly those (its routes loader refuses any other), and
    # they are the environments the IAM policy grants
    shared, _ = function_variables(resolved, "S3EventsFunction")
    told = Settings(table_name="t" * 3, mwaa_environment_names=shared["MWAA_ENVIRONMENT_NAMES"])
    assert list(told.mwaa_environment_names) == names
    granted = airflow_grants(resolved, "S3EventsFunction")["airflow:GetEnvironment"]
    assert sorted(arn.rsplit("/", 1)[1] for arn in granted) == sorted(names)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("analytics-prod", True),
        ("Sales_2", True),
        ("a" * 80, True),
        ("a" * 81, False),
        ("2fast", False),
        ("-env", False),
        ("my env", False),
        ("", False),
        ("*", False),
    ],
)
def test_each_environment_name_must_be_one_mwaa_accepts(
    raw_template: dict[str, Any], value: str, accepted: bool
) -> None:
    # CloudFormation matches a CommaDelimitedList's pattern against each of its values
    spec = raw_template["Parameters"]["MwaaEnvironmentNames"]
    assert spec["Type"] == "CommaDelimitedList"
    assert "Default" not in spec  # at least one name, always given
    assert bool(re.fullmatch(spec["AllowedPattern"], value)) is accepted


def test_the_environment_list_conditions_cover_the_most_names_the_template_grants(
    raw_template: dict[str, Any],
) -> None:
    # One condition for each name after the first, up to MWAA's quota
    conditions = {
        name for name in raw_template["Conditions"] if name.startswith("HasMwaaEnvironment")
    }
    assert conditions == {f"HasMwaaEnvironment{n}" for n in range(2, MAX_ENVIRONMENTS + 1)}
    eleven = [f"env-{n}" for n in range(MAX_ENVIRONMENTS + 1)]
    resolved = stack(raw_template, MwaaEnvironmentNames=",".join(eleven))
    granted = airflow_grants(resolved, "ApiFunction")["airflow:GetEnvironment"]
    # Past the tenth nothing is granted, and the functions are not told the name either
    assert len(granted) == MAX_ENVIRONMENTS
    shared, _ = function_variables(resolved, "ApiFunction")
    assert shared["MWAA_ENVIRONMENT_NAMES"] == ",".join(eleven[:MAX_ENVIRONMENTS])


# ---------------------------------------------------------------------------------------------
# Private networks (VPC)
# ---------------------------------------------------------------------------------------------

SUBNETS = "subnet-0123456789abcdef0,subnet-0fedcba9876543210"
SECURITY_GROUPS = "sg-0123456789abcdef0"


@pytest.mark.parametrize("in_vpc", [False, True], ids=["no-vpc", "vpc"])
def test_every_function_runs_in_the_vpc_only_when_subnets_are_given(
    raw_template: dict[str, Any], in_vpc: bool
) -> None:
    # Given a deployment with or without subnets
    overrides = {"VpcSubnetIds": SUBNETS, "VpcSecurityGroupIds": SECURITY_GROUPS} if in_vpc else {}
    resolved = stack(raw_template, **overrides)

    # When we resolve the functions' VpcConfig (Globals; no function sets its own)
    vpc_config = resolved.resolve({"v": raw_template["Globals"]["Function"]["VpcConfig"]})
    functions = resolved.resources("AWS::Serverless::Function")
    assert sorted(functions) == sorted(FUNCTIONS)
    assert all("VpcConfig" not in f["Properties"] for f in functions.values())

    # Then every function (each calls Airflow) joins those subnets with those security groups,
    # or none joins a VPC
    if in_vpc:
        assert vpc_config["v"] == {
            "SubnetIds": SUBNETS.split(","),
            "SecurityGroupIds": SECURITY_GROUPS.split(","),
        }
    else:
        assert vpc_config == {}

    # And each role may manage network interfaces only then
    for function_id in FUNCTIONS:
        attached = role_of_function(resolved, function_id)["Properties"]["ManagedPolicyArns"]
        assert ("<VpcNetworkInterfacePolicy>" in attached) is in_vpc, function_id
        actions = function_allowed_actions(resolved, function_id)
        ec2 = {action for action in actions if action.startswith("ec2:")}
        assert ec2 == (
            {
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
            }
            if in_vpc
            else set()
        )
        for action in ec2 - ACTIONS_WITHOUT_RESOURCE_SCOPE:
            assert all(r.startswith(f"arn:aws:ec2:{REGION}:{ACCOUNT}:") for r in actions[action]), (
                action
            )


def test_sam_gives_every_function_the_globals_vpc_config(
    translated_template: dict[str, Any],
) -> None:
    # Given the template after the SAM transform, Then each Lambda function carries the
    # conditional VpcConfig of Globals
    functions = {
        logical_id: resource
        for logical_id, resource in translated_template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert sorted(functions) == sorted(FUNCTIONS)
    for logical_id, function in functions.items():
        vpc_config = function["Properties"]["VpcConfig"]
        condition, given, otherwise = vpc_config["Fn::If"]
        assert condition == "AttachToVpc", logical_id
        assert given == {
            "SubnetIds": {"Ref": "VpcSubnetIds"},
            "SecurityGroupIds": {"Ref": "VpcSecurityGroupIds"},
        }
        assert otherwise == {"Ref": "AWS::NoValue"}


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("VpcSubnetIds", "", True),
        ("VpcSubnetIds", "subnet-0123456789abcdef0", True),
        ("VpcSubnetIds", "subnet-12345678", True),
        ("VpcSubnetIds", "sg-0123456789abcdef0", False),
        ("VpcSubnetIds", "subnet-XYZ", False),
        ("VpcSecurityGroupIds", "", True),
        ("VpcSecurityGroupIds", "sg-0123456789abcdef0", True),
        ("VpcSecurityGroupIds", "subnet-0123456789abcdef0", False),
    ],
)
def test_vpc_parameters_accept_ids_of_their_kind_or_nothing(
    raw_template: dict[str, Any], name: str, value: str, accepted: bool
) -> None:
    spec = raw_template["Parameters"][name]
    assert spec["Type"] == "CommaDelimitedList"
    assert spec["Default"] == ""
    assert bool(re.fullmatch(spec["AllowedPattern"], value)) is accepted


def test_subnets_without_security_groups_fail_the_deployment(raw_template: dict[str, Any]) -> None:
    # A rule CloudFormation checks before creating anything: subnets need security groups
    (rule,) = raw_template["Rules"].values()
    assert rule["RuleCondition"] == {
        "Fn::Not": [{"Fn::EachMemberEquals": [{"Ref": "VpcSubnetIds"}, ""]}]
    }
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Not": [{"Fn::EachMemberEquals": [{"Ref": "VpcSecurityGroupIds"}, ""]}]
    }


@pytest.mark.parametrize(
    ("routes_location", "expected"),
    [
        ("bundled:routes.yaml", {}),
        (
            "ssm:/dagtrigger/routes",
            {"ssm:GetParameter": [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/dagtrigger/routes"]},
        ),
        (
            "s3://config-bucket/dagtrigger/routes.yaml",
            {"s3:GetObject": ["arn:aws:s3:::config-bucket/dagtrigger/routes.yaml"]},
        ),
    ],
)
def test_routes_location_grants_read_on_that_parameter_or_object_only(
    raw_template: dict[str, Any],
    function_id: str,
    routes_location: str,
    expected: dict[str, list[str]],
) -> None:
    resolved = stack(raw_template, RoutesLocation=routes_location)
    allowed = function_allowed_actions(resolved, function_id)
    routes_reads = {a: r for a, r in allowed.items() if a.split(":")[0] in {"ssm", "s3"}}
    assert routes_reads == expected


@pytest.mark.parametrize("secret_arn", ["", SECRET_ARN])
def test_airflow_credentials_secret_is_readable_only_when_named(
    raw_template: dict[str, Any], function_id: str, secret_arn: str
) -> None:
    # Given a deployment on the airflow_rest transport, with or without a credentials secret
    resolved = stack(
        raw_template, MwaaTransport="airflow_rest", AirflowCredentialsSecretArn=secret_arn
    )

    # When we list the secrets the function may read
    allowed = function_allowed_actions(resolved, function_id)
    secrets = {a: r for a, r in allowed.items() if a.startswith("secretsmanager:")}
    assert set(secrets) <= {"secretsmanager:GetSecretValue"}
    readable = secrets.get("secretsmanager:GetSecretValue", [])

    # Then the credentials secret is among them only when named, and the rest are webhook
    # secrets (the api function's, checked below)
    assert (secret_arn in readable) is bool(secret_arn)
    assert set(readable) - {secret_arn} <= {webhook_secrets_arn(resolved)}


def webhook_secrets_arn(resolved: ResolvedStack) -> str:
    prefix = resolved.parameters["WebhookSecretNamePrefix"]
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{prefix}*"


def test_only_the_api_function_reads_webhook_secrets_and_only_under_the_prefix(
    raw_template: dict[str, Any],
) -> None:
    # Given a deployment with its own webhook secret prefix
    resolved = stack(raw_template, WebhookSecretNamePrefix="team-a/hooks/")
    readers = {
        function_id: function_allowed_actions(resolved, function_id).get(
            "secretsmanager:GetSecretValue", []
        )
        for function_id in resolved.resources("AWS::Serverless::Function")
    }

    # Then the api function reads the secrets whose names start with the prefix, nobody else
    # reads any (the wildcard stands for the random suffix of a secret's ARN)
    assert readers.pop("ApiFunction") == [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:team-a/hooks/*"
    ]
    assert all(resources == [] for resources in readers.values()), readers


@pytest.mark.parametrize("bus", ["default", "data-pipelines"])
def test_only_the_reconciler_puts_run_events_and_only_on_the_named_bus(
    raw_template: dict[str, Any], bus: str
) -> None:
    # Given a deployment that names the bus of "DAG Run Finished" events
    resolved = stack(raw_template, RunEventBusName=bus)
    putters = {
        function_id: function_allowed_actions(resolved, function_id).get("events:PutEvents", [])
        for function_id in resolved.resources("AWS::Serverless::Function")
    }

    # Then the reconciler may put events on that bus of this account and region, nobody else
    # on any, and the reconciler is told which bus it is
    assert putters.pop("ReconcilerFunction") == [
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}"
    ]
    assert all(resources == [] for resources in putters.values()), putters
    _, own = function_variables(resolved, "ReconcilerFunction")
    assert own["RUN_EVENT_BUS_NAME"] == bus


@pytest.mark.parametrize("topic", ["", f"arn:aws:sns:{REGION}:{ACCOUNT}:dag-failures"])
def test_run_failures_are_published_only_to_the_named_topic_and_only_when_there_is_one(
    raw_template: dict[str, Any], topic: str
) -> None:
    # Given a deployment with or without a run failure topic
    resolved = stack(raw_template, RunFailureTopicArn=topic)
    publishers = {
        function_id: function_allowed_actions(resolved, function_id).get("sns:Publish", [])
        for function_id in resolved.resources("AWS::Serverless::Function")
    }

    # Then only the reconciler may publish, to that topic only, and only when it is given
    assert publishers.pop("ReconcilerFunction") == ([topic] if topic else [])
    assert all(resources == [] for resources in publishers.values()), publishers
    _, own = function_variables(resolved, "ReconcilerFunction")
    assert own["RUN_FAILURE_TOPIC_ARN"] == topic
    assert Settings(table_name="history", run_failure_topic_arn=topic).run_failure_topic_arn == (
        topic or None
    )


# --- encryption keys and concurrency ---------------------------------------------------------


def test_history_table_is_encrypted_with_the_customer_key_only_when_one_is_given(
    raw_template: dict[str, Any],
) -> None:
    # Without a key: an AWS owned key (SSE "disabled" means DynamoDB's default, AWS owned key)
    table = stack(raw_template).resources("AWS::DynamoDB::Table")["TriggerHistoryTable"]
    assert table["Properties"]["SSESpecification"] == {"SSEEnabled": False}

    # With one: that key
    table = stack(raw_template, HistoryTableKmsKeyArn=TABLE_KEY_ARN).resources(
        "AWS::DynamoDB::Table"
    )["TriggerHistoryTable"]
    assert table["Properties"]["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": TABLE_KEY_ARN,
    }


def test_functions_use_the_table_key_only_through_dynamodb_and_only_when_there_is_one(
    raw_template: dict[str, Any], function_id: str
) -> None:
    through_dynamodb = (("kms:ViaService", (f"dynamodb.{REGION}.amazonaws.com",)),)
    through_s3 = (("kms:ViaService", (f"s3.{REGION}.amazonaws.com",)),)
    kms_actions = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]

    # Without a key on the table, no KMS permission at all
    without = stack(raw_template)
    assert not [
        action
        for action in function_allowed_actions(without, function_id)
        if action.startswith("kms:")
    ]

    # With one: Decrypt and DescribeKey of that key, through DynamoDB, nothing else
    resolved = stack(raw_template, HistoryTableKmsKeyArn=TABLE_KEY_ARN)
    allowed = {
        (action, key, via)
        for action in kms_actions
        for key in (TABLE_KEY_ARN, LOGS_KEY_ARN)
        for via in (through_dynamodb, through_s3, ())
        if may(resolved, function_id, Call(action, key, via))
    }
    assert allowed == {
        ("kms:Decrypt", TABLE_KEY_ARN, through_dynamodb),
        ("kms:DescribeKey", TABLE_KEY_ARN, through_dynamodb),
    }


@pytest.mark.parametrize("key_arn", ["", LOGS_KEY_ARN])
def test_every_log_group_is_encrypted_with_the_logs_key_when_one_is_given(
    raw_template: dict[str, Any], key_arn: str
) -> None:
    log_groups = stack(raw_template, LogsKmsKeyArn=key_arn).resources("AWS::Logs::LogGroup")
    assert len(log_groups) == len(FUNCTIONS) + 1  # each function's, and the HTTP API's access logs
    for log_group_id, log_group in log_groups.items():
        assert log_group["Properties"].get("KmsKeyId", "") == key_arn, log_group_id


@pytest.mark.parametrize("parameter", ["HistoryTableKmsKeyArn", "LogsKmsKeyArn"])
@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        (TABLE_KEY_ARN, True),
        (
            f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT}:key/mrk-1234abcd12ab34cd56ef1234567890ab",
            True,
        ),
        # IAM grants name the key itself: an alias ARN or a bare key id cannot be scoped to
        (f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/dagtrigger", False),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", False),
        (f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*", False),
    ],
)
def test_kms_key_parameters_accept_key_arns_only(
    raw_template: dict[str, Any], parameter: str, value: str, accepted: bool
) -> None:
    pattern = raw_template["Parameters"][parameter]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


def test_api_function_reserves_its_concurrency_from_a_parameter(
    raw_template: dict[str, Any],
) -> None:
    # Given the api function and the parameter that sizes it
    spec = raw_template["Parameters"]["ApiReservedConcurrency"]
    function = raw_template["Resources"]["ApiFunction"]["Properties"]

    # Then its reservation is the parameter, at least 1 (0 would stop the API), by default a
    # handful of instances: well under the stage's burst, and no more callers at once than
    # MWAA's ~10 TPS can serve
    assert function["ReservedConcurrentExecutions"] == {"Ref": "ApiReservedConcurrency"}
    assert spec["Type"] == "Number"
    assert int(spec["MinValue"]) >= 1
    default = int(spec["Default"])
    assert 1 <= default <= 10
    resolved = stack(raw_template)
    assert (
        int(
            resolved.resources("AWS::Serverless::Function")["ApiFunction"]["Properties"][
                "ReservedConcurrentExecutions"
            ]
        )
        == default
    )
    assert default <= int(resolved.parameters["ApiThrottlingBurstLimit"])


def test_reconciler_runs_one_pass_at_a_time(raw_template: dict[str, Any]) -> None:
    function = raw_template["Resources"]["ReconcilerFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == 1


# ---------------------------------------------------------------------------------------------
# Event path: buckets, rule, queue policies, event source
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "create", "expected_names"),
    [
        ("landing,archive", "false", ["landing", "archive"]),
        ("", "true", ["<SourceBucket>"]),
        ("landing", "true", ["landing", "<SourceBucket>"]),
        ("", "false", None),
    ],
)
def test_rule_matches_object_created_in_the_configured_buckets(
    raw_template: dict[str, Any], existing: str, create: str, expected_names: list[str] | None
) -> None:
    # Given a combination of existing and created buckets
    resolved = stack(raw_template, SourceBucketNames=existing, CreateSourceBucket=create)

    # When we look at the rule this deployment creates
    rules = resolved.resources("AWS::Events::Rule")

    # Then it matches Object Created in exactly those buckets (and there is no rule without buckets)
    if expected_names is None:
        assert rules == {}
        return
    pattern = rules["S3ObjectCreatedRule"]["Properties"]["EventPattern"]
    assert pattern == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": expected_names}},
    }
    assert resolved.exists("SourceBucket") is (create == "true")


def test_rule_delivers_to_the_queue_with_retries_and_a_dead_letter_queue(
    raw_template: dict[str, Any],
) -> None:
    resolved = stack(raw_template, SourceBucketNames="landing")
    (target,) = resolved.resources("AWS::Events::Rule")["S3ObjectCreatedRule"]["Properties"][
        "Targets"
    ]
    assert target["Arn"] == "<S3EventsQueue.Arn>"
    assert target["DeadLetterConfig"] == {"Arn": "<S3EventsDeadLetterQueue.Arn>"}
    assert int(target["RetryPolicy"]["MaximumRetryAttempts"]) > 0
    assert int(target["RetryPolicy"]["MaximumEventAgeInSeconds"]) >= 3600


def test_queues_accept_messages_from_eventbridge_only_for_the_rule(
    raw_template: dict[str, Any],
) -> None:
    # Given a deployment with a bucket, and the queues the rule delivers to
    resolved = stack(raw_template, SourceBucketNames="landing")
    policies = resolved.resources("AWS::SQS::QueuePolicy")
    granted: dict[str, dict[str, Any]] = {}
    for policy in policies.values():
        for queue in policy["Properties"]["Queues"]:
            for statement in statements(policy["Properties"]["PolicyDocument"]):
                if statement["Effect"] == "Allow":
                    granted[queue.strip("<>")] = statement

    # Then each grants events.amazonaws.com SendMessage, on condition the sender is the rule
    assert set(granted) == {"S3EventsQueue", "S3EventsDeadLetterQueue"}
    for queue_id, statement in granted.items():
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}, queue_id
        assert statement["Action"] == "sqs:SendMessage", queue_id
        assert statement["Resource"] == f"<{queue_id}.Arn>"
        assert statement["Condition"] == {
            "ArnEquals": {"aws:SourceArn": "<S3ObjectCreatedRule.Arn>"}
        }


def test_without_buckets_no_one_outside_the_account_may_send_to_the_queues(
    raw_template: dict[str, Any],
) -> None:
    resolved = stack(raw_template, SourceBucketNames="", CreateSourceBucket="false")
    for policy in resolved.resources("AWS::SQS::QueuePolicy").values():
        effects = {s["Effect"] for s in statements(policy["Properties"]["PolicyDocument"])}
        assert effects == {"Deny"}


def test_s3_event_source_reports_partial_failures_and_caps_concurrency(
    raw_template: dict[str, Any],
) -> None:
    resolved = stack(raw_template)
    function = resolved.resources("AWS::Serverless::Function")["S3EventsFunction"]
    (event,) = function["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    properties = event["Properties"]
    assert properties["Queue"] == "<S3EventsQueue.Arn>"
    assert properties["BatchSize"] == 10
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert 0 < int(properties["MaximumBatchingWindowInSeconds"]) <= 300
    assert function["Properties"]["Handler"] == "app.lambda_handler"
    assert function["Properties"]["CodeUri"] == "functions/s3_events/"


def test_created_bucket_is_private_encrypted_versioned_and_notifies_eventbridge(
    raw_template: dict[str, Any],
) -> None:
    resolved = stack(raw_template, CreateSourceBucket="true")
    bucket = resolved.resources("AWS::S3::Bucket")["SourceBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"] == {
        "EventBridgeEnabled": True
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}


def test_every_dead_letter_queue_alarms_on_its_first_message(raw_template: dict[str, Any]) -> None:
    # Given a deployment with an alarm topic, its dead-letter queues and its alarms
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:ops"
    resolved = stack(raw_template, AlarmTopicArn=topic, SourceBucketNames="landing")
    alarms = resolved.resources("AWS::CloudWatch::Alarm")
    dead_letter_queues = dead_letter_sources(resolved)
    assert dead_letter_queues

    for queue_id in dead_letter_queues:
        # Then exactly one alarm watches the queue and fires on its first visible message
        watching = [
            alarm["Properties"]
            for alarm in alarms.values()
            if alarm["Properties"]["Dimensions"]
            == [{"Name": "QueueName", "Value": f"<{queue_id}.QueueName>"}]
            and alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        ]
        assert len(watching) == 1, queue_id
        (alarm,) = watching
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert float(alarm["Threshold"]) == 0
        assert alarm["AlarmActions"] == [topic]


def test_every_function_has_an_errors_alarm(raw_template: dict[str, Any]) -> None:
    resolved = stack(raw_template)
    alarmed = {
        logical_id_of(alarm["Properties"]["Dimensions"][0]["Value"])
        for alarm in resolved.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["Namespace"] == "AWS/Lambda"
        and alarm["Properties"]["MetricName"] == "Errors"
    }
    assert alarmed == set(resolved.resources("AWS::Serverless::Function"))


def test_alarms_notify_nobody_when_no_topic_is_given(raw_template: dict[str, Any]) -> None:
    alarms = stack(raw_template, AlarmTopicArn="").resources("AWS::CloudWatch::Alarm")
    assert alarms
    for alarm in alarms.values():
        assert not alarm["Properties"].get("AlarmActions")


# ---------------------------------------------------------------------------------------------
# Schedule path: schedule group, the role Scheduler assumes, schedules
# ---------------------------------------------------------------------------------------------


def roles_trusting(resolved: ResolvedStack, service: str) -> dict[str, list[dict[str, Any]]]:
    """Role -> the trust statements that let ``service`` assume it."""
    trusting: dict[str, list[dict[str, Any]]] = {}
    for role_id, role in resolved.resources("AWS::IAM::Role").items():
        for statement in statements(role["Properties"]["AssumeRolePolicyDocument"]):
            services = as_list(statement.get("Principal", {}).get("Service", []))
            if service in services:
                trusting.setdefault(role_id, []).append(statement)
    return trusting


def test_scheduler_may_assume_only_its_role_and_only_for_this_stacks_schedule_group(
    raw_template: dict[str, Any],
) -> None:
    # Given the roles EventBridge Scheduler may assume
    resolved = stack(raw_template)
    trusting = roles_trusting(resolved, "scheduler.amazonaws.com")

    # Then there is one, it trusts Scheduler alone, on behalf of this account's schedule group
    # only (the confused-deputy conditions)
    assert set(trusting) == {"SchedulerInvokeRole"}
    (statement,) = trusting["SchedulerInvokeRole"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "StringEquals": {
            "aws:SourceAccount": ACCOUNT,
            "aws:SourceArn": "<ScheduleGroup.Arn>",
        }
    }
    document = resolved.resources("AWS::IAM::Role")["SchedulerInvokeRole"]["Properties"][
        "AssumeRolePolicyDocument"
    ]
    assert len(statements(document)) == 1


def test_scheduler_role_may_only_invoke_the_schedules_function_and_dead_letter(
    raw_template: dict[str, Any],
) -> None:
    resolved = stack(raw_template)
    role = resolved.resources("AWS::IAM::Role")["SchedulerInvokeRole"]
    assert allowed_actions(role, resolved) == {
        "lambda:InvokeFunction": ["<SchedulesFunction.Arn>"],
        "sqs:SendMessage": ["<SchedulesDeadLetterQueue.Arn>"],
    }
    assert role["Properties"].get("ManagedPolicyArns", []) == []


def test_schedules_in_the_stacks_group_invoke_through_the_scheduler_role_with_retries(
    raw_template: dict[str, Any],
) -> None:
    # Given the ScheduleV2 events placed in the stack's schedule group
    resolved = stack(raw_template)
    grouped = {
        (function_id, event_id): event["Properties"]
        for function_id, function in resolved.resources("AWS::Serverless::Function").items()
        for event_id, event in function["Properties"].get("Events", {}).items()
        if event["Type"] == "ScheduleV2"
        and event["Properties"].get("GroupName") == "<ScheduleGroup>"
    }

    # Then each targets the schedules function through the Scheduler role, retries a failed
    # delivery and dead-letters it, and names a time zone
    assert [function_id for function_id, _ in grouped] == ["SchedulesFunction"]
    for key, schedule in grouped.items():
        assert schedule["RoleArn"] == "<SchedulerInvokeRole.Arn>", key
        assert schedule["DeadLetterConfig"] == {"Arn": "<SchedulesDeadLetterQueue.Arn>"}, key
        assert int(schedule["RetryPolicy"]["MaximumRetryAttempts"]) > 0, key
        assert schedule["ScheduleExpressionTimezone"], key


@pytest.mark.parametrize(("state", "expected"), [(None, "DISABLED"), ("ENABLED", "ENABLED")])
def test_example_schedule_stays_disabled_unless_asked_for(
    raw_template: dict[str, Any], state: str | None, expected: str
) -> None:
    resolved = stack(raw_template, **({"ExampleScheduleState": state} if state else {}))
    function = resolved.resources("AWS::Serverless::Function")["SchedulesFunction"]
    example = function["Properties"]["Events"]["NightlySales"]["Properties"]
    assert example["State"] == expected
    assert example["FlexibleTimeWindow"]["Mode"] == "FLEXIBLE"


def test_example_schedule_input_is_what_schedule_management_writes(
    raw_template: dict[str, Any],
) -> None:
    # Given the example schedule's Input
    resolved = stack(raw_template)
    function = resolved.resources("AWS::Serverless::Function")["SchedulesFunction"]
    written = function["Properties"]["Events"]["NightlySales"]["Properties"]["Input"]

    # Then it is the one Input format: what build_target_input writes for the same target,
    # with every Scheduler context attribute the function reads
    target = read_target_input(written)
    assert target is not None
    assert target.route == "nightly-sales"
    assert json.loads(written) == json.loads(build_target_input(target))


def test_schedules_function_retries_asynchronously_then_dead_letters(
    raw_template: dict[str, Any],
) -> None:
    resolved = stack(raw_template)
    properties = resolved.resources("AWS::Serverless::Function")["SchedulesFunction"]["Properties"]
    assert properties["DeadLetterQueue"] == {
        "Type": "SQS",
        "TargetArn": "<SchedulesDeadLetterQueue.Arn>",
    }
    assert int(properties["EventInvokeConfig"]["MaximumRetryAttempts"]) >= 1
    allowed = function_allowed_actions(resolved, "SchedulesFunction")
    assert allowed["sqs:SendMessage"] == ["<SchedulesDeadLetterQueue.Arn>"]


# ---------------------------------------------------------------------------------------------
# HTTP path: routes and their authorization, stage settings, the api function's grants
# ---------------------------------------------------------------------------------------------


def http_routes(resolved: ResolvedStack) -> dict[str, str]:
    """ "METHOD /path" -> the authorizer API Gateway applies (the route's, else the API's)."""
    apis = resolved.resources("AWS::Serverless::HttpApi")
    routes: dict[str, str] = {}
    for function in resolved.resources("AWS::Serverless::Function").values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            properties = event["Properties"]
            api = apis[logical_id_of(properties["ApiId"])]["Properties"]
            default = api.get("Auth", {}).get("DefaultAuthorizer", "NONE")
            key = f"{properties['Method'].upper()} {properties['Path']}"
            assert key not in routes, f"route {key} is declared twice"
            routes[key] = properties.get("Auth", {}).get("Authorizer", default)
    return routes


def test_management_routes_need_iam_signatures_and_only_the_webhook_route_is_open(
    raw_template: dict[str, Any],
) -> None:
    # Given every route of the HTTP API and the authorizer it ends up with
    resolved = stack(raw_template)
    routes = http_routes(resolved)
    (api,) = resolved.resources("AWS::Serverless::HttpApi").values()

    # Then IAM is the API's default, and every route but the webhook one uses it
    assert api["Properties"]["Auth"]["EnableIamAuthorizer"] is True
    assert api["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert "POST /v1/dags/{dag_id}/runs" in routes
    assert {key for key, authorizer in routes.items() if authorizer != "AWS_IAM"} == {
        WEBHOOK_ROUTE_KEY
    }
    # And the webhook route is open to the world (its signature is checked by the function)
    assert routes[WEBHOOK_ROUTE_KEY] == "NONE"
    assert not [key for key in routes if key.startswith(("ANY ", "$default"))]


def test_http_api_routes_are_exactly_the_routes_the_api_documents(
    raw_template: dict[str, Any],
) -> None:
    # Given the routes the api function's OpenAPI document describes
    document = json.loads(openapi_json())
    documented = {
        f"{method.upper()} {path}"
        for path, methods in document["paths"].items()
        for method in methods
    }

    # Then the HTTP API wires each of them to the function, and nothing else
    assert set(http_routes(stack(raw_template))) == documented


def test_api_stage_is_throttled_and_writes_access_logs_without_payloads(
    raw_template: dict[str, Any],
) -> None:
    # Given the HTTP API's stage settings
    resolved = stack(raw_template)
    (api,) = resolved.resources("AWS::Serverless::HttpApi").values()
    properties = api["Properties"]

    # Then every route is throttled
    throttling = properties["DefaultRouteSettings"]
    assert number_parameter_floor(resolved, throttling["ThrottlingBurstLimit"]) >= 1
    assert number_parameter_floor(resolved, throttling["ThrottlingRateLimit"]) >= 1

    # And access logs go to a log group of this template with a retention, as JSON that names
    # the caller and the outcome but carries no headers, query strings or bodies
    access_logs = properties["AccessLogSettings"]
    log_group_id = logical_id_of(access_logs["DestinationArn"])
    log_group = resolved.resources("AWS::Logs::LogGroup")[log_group_id]["Properties"]
    assert int(log_group["RetentionInDays"]) > 0
    fields = json.loads(access_logs["Format"])
    assert {"requestId", "routeKey", "status", "caller"} <= set(fields)
    variables = " ".join(fields.values())
    for forbidden in ("$context.requestOverride", "$input", "header", "querystring", "body"):
        assert forbidden.lower() not in variables.lower(), forbidden


def test_api_function_answers_within_the_http_api_integration_timeout(
    raw_template: dict[str, Any],
) -> None:
    resolved = stack(raw_template)
    function = resolved.resources("AWS::Serverless::Function")["ApiFunction"]
    shared, own = function_variables(resolved, "ApiFunction")
    budget = float({**shared, **own}["TRIGGER_BUDGET_SECONDS"])
    # An HTTP API waits 30 s at most; the trigger's retries end well before the function does.
    assert budget < function_timeout(resolved, function) < 30


def test_api_function_manages_schedules_of_the_stacks_group_only(
    raw_template: dict[str, Any],
) -> None:
    # Given what the api function may do with EventBridge Scheduler and IAM
    resolved = stack(raw_template)
    allowed = function_allowed_actions(resolved, "ApiFunction")
    scheduler = {a: r for a, r in allowed.items() if a.startswith("scheduler:")}

    # Then it writes and reads schedules in the stack's group only (listing has no resource)
    in_group = [f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/<ScheduleGroup>/*"]
    assert scheduler == {
        "scheduler:CreateSchedule": in_group,
        "scheduler:GetSchedule": in_group,
        "scheduler:UpdateSchedule": in_group,
        "scheduler:DeleteSchedule": in_group,
        "scheduler:ListSchedules": ["*"],
    }
    # And no other function may touch schedules
    for function_id in resolved.resources("AWS::Serverless::Function"):
        if function_id != "ApiFunction":
            others = function_allowed_actions(resolved, function_id)
            assert not [a for a in others if a.startswith("scheduler:")], function_id


def test_only_the_api_function_passes_a_role_and_only_the_scheduler_role_to_scheduler(
    raw_template: dict[str, Any],
) -> None:
    # Given every iam:PassRole grant in the template
    resolved = stack(raw_template)
    grants = [
        (owner, statement)
        for owner, document in policy_documents(resolved)
        for statement in statements(document)
        if statement["Effect"] == "Allow" and "iam:PassRole" in as_list(statement["Action"])
    ]

    # Then there is one: the api function's role may pass the Scheduler role, to Scheduler
    assert len(grants) == 1
    ((owner, statement),) = grants
    assert owner == logical_id_of(
        resolved.resources("AWS::Serverless::Function")["ApiFunction"]["Properties"]["Role"]
    )
    assert as_list(statement["Action"]) == ["iam:PassRole"]
    assert as_list(statement["Resource"]) == ["<SchedulerInvokeRole.Arn>"]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }


def test_api_url_is_an_output(raw_template: dict[str, Any]) -> None:
    resolved = stack(raw_template)
    outputs = raw_template["Outputs"]
    assert resolved.resolve(outputs["ApiUrl"]["Value"]) == (
        f"https://<HttpApi>.execute-api.{REGION}.amazonaws.com"
    )


# ---------------------------------------------------------------------------------------------
# Layer, settings, parameters, outputs
# ---------------------------------------------------------------------------------------------


def test_layer_is_built_by_its_makefile_for_the_function_runtime(
    raw_template: dict[str, Any],
) -> None:
    layer = raw_template["Resources"]["CoreLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/core/"
    assert layer["Properties"]["RetentionPolicy"] == "Retain"
    # layers/core/Makefile installs the wheels and compiles bytecode for the functions' runtime
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert raw_template["Globals"]["Function"]["Runtime"] == "python3.12"
    makefile = (REPO_ROOT / "layers" / "core" / "Makefile").read_text(encoding="utf-8")
    assert "build-CoreLayer:" in makefile
    assert "--python-version 3.12" in makefile
    assert {"python3.12", "python3.13"} <= set(layer["Properties"]["CompatibleRuntimes"])
    assert raw_template["Globals"]["Function"]["Layers"] == [{"Ref": "CoreLayer"}]


# --- which settings a function's code reads -------------------------------------------------
#
# The rule: a function's environment (Globals plus its own) sets every setting its code reads;
# a function sets on its own only settings its code reads (no dead configuration); Globals hold
# only settings some function reads. "Its code" is the handler module and every project module
# it imports, transitively (imports inside functions too); "reads" is an attribute access
# ``.<field>`` of a Settings field. So the s3 events function need not carry the API's
# schedule and webhook settings, and the moment it starts reading one, this check asks for it.


def project_module_file(module: str) -> Path | None:
    head, *rest = module.split(".")
    root = PROJECT_PACKAGES.get(head)
    if root is None:
        return None
    base = root.joinpath(*rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def project_module_name(path: Path) -> str:
    for head, root in PROJECT_PACKAGES.items():
        if path.is_relative_to(root):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts and parts[-1] == "__init__":
                parts.pop()
            return ".".join([head, *parts])
    raise AssertionError(f"{path} is not in a project package")


def imported_modules(path: Path) -> Iterator[str]:
    """Every module name ``path`` may load: its imports (``from a import b``: a, a.b), and
    project modules named in strings (the transport registry imports its modules by name)."""
    name = project_module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"dagtrigger(?:\.\w+)+", node.value):
                yield node.value
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*parent, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def code_of_function(resolved: ResolvedStack, function_id: str) -> set[Path]:
    """The handler module and every project module it imports, transitively."""
    properties = resolved.resources("AWS::Serverless::Function")[function_id]["Properties"]
    module = properties["Handler"].rpartition(".")[0]
    handler = REPO_ROOT / properties["CodeUri"] / (module.replace(".", "/") + ".py")
    assert handler.is_file(), f"{function_id}: no handler file {handler}"
    code: set[Path] = set()
    pending = [handler]
    while pending:
        path = pending.pop()
        if path in code:
            continue
        code.add(path)
        for imported in imported_modules(path):
            parts = imported.split(".")
            # importing a.b.c runs a/__init__ and a/b/__init__ too
            for depth in range(1, len(parts) + 1):
                found = project_module_file(".".join(parts[:depth]))
                if found is not None and found not in code:
                    pending.append(found)
    return code


def settings_read_by(code: set[Path]) -> set[str]:
    fields = set(Settings.model_fields)
    return {
        node.attr
        for path in code
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr in fields
    }


def deployed_value(resolved: ResolvedStack, value: Any) -> str:
    """A resolved value as it would be deployed: ``<Queue.Arn>`` becomes an SQS ARN."""
    text = str(value)
    match = re.fullmatch(r"<([A-Za-z0-9]+)(?:\.([A-Za-z]+))?>", text)
    if match is None:
        return text
    logical_id, attribute = match.groups()
    name = f"dagtrigger-{logical_id}"
    if attribute is None:
        return name
    assert attribute == "Arn", f"no deployed form for {text}"
    resource_type = resolved.template["Resources"][logical_id]["Type"]
    return DEPLOYED_ARN_FORMATS[resource_type].format(region=REGION, account=ACCOUNT, name=name)


def function_variables(resolved: ResolvedStack, function_id: str) -> tuple[dict, dict]:
    """(Globals' variables, the function's own variables), resolved."""
    shared = resolved.resolve(resolved.template["Globals"]["Function"]["Environment"])
    function = resolved.resources("AWS::Serverless::Function")[function_id]["Properties"]
    return shared["Variables"], function.get("Environment", {}).get("Variables", {})


def settings_names(variables: dict[str, Any]) -> set[str]:
    return {name.lower() for name in variables} & set(Settings.model_fields)


def test_each_function_sets_every_setting_its_code_reads_and_only_those(
    raw_template: dict[str, Any],
) -> None:
    resolved = stack(raw_template)
    functions = resolved.resources("AWS::Serverless::Function")
    read_somewhere: set[str] = set()
    for function_id in functions:
        # Given the settings the function's code reads and the variables it gets
        read = settings_read_by(code_of_function(resolved, function_id))
        read_somewhere |= read
        shared, own = function_variables(resolved, function_id)
        variables = {**shared, **own}

        # Then each setting it reads is set (the history table at the very least)
        assert "table_name" in read, f"{function_id}: its code was not followed"
        unset = read - SETTINGS_NOT_SET_BY_THE_TEMPLATE - settings_names(variables)
        assert unset == set(), f"{function_id} reads {sorted(unset)} but does not set them"

        # And it sets on its own only settings it reads
        dead = settings_names(own) - read
        assert dead == set(), f"{function_id} sets {sorted(dead)} but never reads them"

        # And the values pass the settings' own validation, as deployed
        values = {
            name: deployed_value(resolved, variables[name.upper()])
            for name in read - SETTINGS_NOT_SET_BY_THE_TEMPLATE
        }
        settings = Settings(**values)
        assert settings.table_name == "dagtrigger-TriggerHistoryTable"

    # And the shared Globals hold only settings some function reads
    shared, _ = function_variables(resolved, next(iter(functions)))
    assert settings_names(shared) - read_somewhere == set()
    assert {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    } <= set(shared)


def test_only_the_api_function_carries_the_api_settings(raw_template: dict[str, Any]) -> None:
    # Given the settings only the HTTP API reads (schedule management, webhooks, Retry-After)
    resolved = stack(raw_template)
    api_only = settings_read_by(code_of_function(resolved, "ApiFunction"))
    for function_id in resolved.resources("AWS::Serverless::Function"):
        if function_id != "ApiFunction":
            api_only -= settings_read_by(code_of_function(resolved, function_id))
    assert {"schedule_group_name", "webhook_max_body_bytes", "retry_after_seconds"} <= api_only

    # Then the api function sets them to the stack's own schedule resources and limits
    _, own = function_variables(resolved, "ApiFunction")
    assert settings_names(own) >= api_only
    assert own["SCHEDULE_GROUP_NAME"] == "<ScheduleGroup>"
    assert own["SCHEDULE_TARGET_ARN"] == "<SchedulesFunction.Arn>"
    assert own["SCHEDULER_ROLE_ARN"] == "<SchedulerInvokeRole.Arn>"
    assert own["SCHEDULE_DLQ_ARN"] == "<SchedulesDeadLetterQueue.Arn>"


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("bundled:routes.yaml", True),
        ("ssm:/dagtrigger/routes", True),
        ("s3://config-bucket/dagtrigger/routes.yaml", True),
        ("file:/etc/passwd", False),
        ("ssm:dagtrigger/routes", False),
        ("s3://config-bucket", False),
    ],
)
def test_routes_location_parameter_accepts_only_deployable_forms(
    raw_template: dict[str, Any], value: str, accepted: bool
) -> None:
    pattern = raw_template["Parameters"]["RoutesLocation"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


def test_every_parameter_default_passes_its_own_constraints(raw_template: dict[str, Any]) -> None:
    for name, spec in raw_template["Parameters"].items():
        if "Default" not in spec:
            continue
        default = str(spec["Default"])
        if "AllowedPattern" in spec and spec["Type"] == "String":
            assert re.fullmatch(spec["AllowedPattern"], default), name
        if "AllowedValues" in spec:
            assert default in {str(v) for v in spec["AllowedValues"]}, name
        if "MinValue" in spec:
            assert float(spec["MinValue"]) <= float(default) <= float(spec["MaxValue"]), name


@pytest.mark.parametrize("overrides", ALL_SHAPES)
def test_every_arn_bearing_resource_has_an_output(
    raw_template: dict[str, Any], overrides: dict[str, str]
) -> None:
    # Given a deployment shape and the outputs it shows
    resolved = stack(raw_template, **overrides)
    shown = set()
    for output in raw_template["Outputs"].values():
        if "Condition" in output and not resolved.condition(output["Condition"]):
            continue
        value = resolved.resolve(output["Value"])
        shown.update(re.findall(r"<([A-Za-z0-9]+)[.>]", str(value)))

    # Then each resource with an ARN, URL or name a user needs is among them
    created = resolved.resources(*ARN_BEARING_TYPES)
    assert created
    assert set(created) - shown == set()


def test_samconfig_deploys_with_iam_capability_and_known_parameters(
    raw_template: dict[str, Any],
) -> None:
    # Given samconfig.toml
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    deploy = config["default"]["deploy"]["parameters"]

    # Then it names the stack, can create the function roles and validates with the linter
    assert config["default"]["global"]["parameters"]["stack_name"]
    assert "CAPABILITY_IAM" in deploy["capabilities"]
    assert deploy["confirm_changeset"] is True
    assert config["default"]["validate"]["parameters"]["lint"] is True

    # And its example overrides name real parameters, including every one without a default
    names = {override.split("=", 1)[0] for override in as_list(deploy["parameter_overrides"])}
    parameters = raw_template["Parameters"]
    assert names <= set(parameters)
    assert {name for name, spec in parameters.items() if "Default" not in spec} <= names
